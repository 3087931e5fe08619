"""The figures of ``kanpde-compare``: error against parameters, against wall time, and during
training, each written with a JSON sidecar of the plotted data.

Every figure ``<name>.png`` comes with ``<name>.json``: its panels, each with the axis labels
and scales and the series drawn (label, x, y and, for the scaling plots, the seeds' min and max
as ``y_min`` / ``y_max``), so a report or a test reads back what a figure shows.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.figure import Figure

from kanpde.io import atomic_path
from kanpde.plotting import _save

if TYPE_CHECKING:
    from kanpde.compare import Group

__all__ = ["plot_scaling", "plot_curves"]

_DPI = 110


def _by_problem(groups: list["Group"]) -> dict[str, dict[str, list["Group"]]]:
    """problem -> line label -> its groups: one line per (family, recipe), sizes along it."""
    out: dict[str, dict[str, list]] = {}
    for g in groups:
        out.setdefault(g.problem, {}).setdefault(f"{g.family} {g.recipe}", []).append(g)
    return out


def _write_figure(fig: Figure, panels: list[dict], path: Path) -> list[Path]:
    _save(fig, path, _DPI)
    sidecar = path.with_suffix(".json")
    with atomic_path(sidecar) as tmp:
        Path(tmp).write_text(json.dumps({"figure": path.name, "panels": panels}, indent=1, sort_keys=True))
    return [path, sidecar]


def _scaling_figure(groups: list["Group"], x_of, xlabel: str, title: str, path: Path) -> list[Path]:
    problems = _by_problem(groups)
    fig = Figure(figsize=(11, 0.6 + 3.8 * max(1, len(problems))), layout="constrained")
    axes = np.atleast_2d(fig.subplots(max(1, len(problems)), 2, squeeze=False))
    panels = []
    for row, (problem, lines) in zip(axes, problems.items()):
        for ax, metric, name in zip(row, ("rel_l2", "rel_h1"), ("relative L2 error", "relative H1 error")):
            series = []
            for label, line in lines.items():
                line = sorted(line, key=x_of)
                x = np.array([x_of(g) for g in line], dtype=float)
                stats = np.array([g.stats(metric) for g in line], dtype=float)  # (n, 3): median, min, max
                y, lo, hi = stats[:, 0], stats[:, 1], stats[:, 2]
                keep = (x > 0) & (lo > 0) & np.isfinite(hi)
                if keep.any():
                    ax.errorbar(x[keep], y[keep], yerr=[y[keep] - lo[keep], hi[keep] - y[keep]], marker="o", ms=4,
                                capsize=3, lw=1.2, label=label)
                series.append({"label": label, "x": x.tolist(), "y": y.tolist(), "y_min": lo.tolist(),
                               "y_max": hi.tolist(), "sizes": [g.size for g in line]})
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel(xlabel)
            ax.set_ylabel(name)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
            ax.set_title(f"{problem}: median over seeds, bars min-max", fontsize=9)
            panels.append({"problem": problem, "metric": metric, "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                           "xscale": ax.get_xscale(), "yscale": ax.get_yscale(), "series": series})
    fig.suptitle(title, fontsize=10)
    return _write_figure(fig, panels, path)


def plot_scaling(groups: list["Group"], out: Path) -> list[Path]:
    """``scaling_params.png`` (errors vs parameter count) and ``scaling_time.png`` (errors vs
    median wall time), with their sidecars; returns the paths written."""
    files = _scaling_figure(groups, lambda g: g.params, "parameters", "error vs model size",
                            out / "scaling_params.png")
    files += _scaling_figure(groups, lambda g: g.stats("wall_time_s")[0], "wall time (s)",
                             "error vs wall-clock time", out / "scaling_time.png")
    return files


def plot_curves(groups: list["Group"], out: Path) -> list[Path]:
    """``curves.png``: rel_l2 during training against time for the best run (lowest final
    rel_l2) of each family and recipe, one panel per problem; returns the paths written."""
    problems = _by_problem(groups)
    fig = Figure(figsize=(7, 0.6 + 3.9 * max(1, len(problems))), layout="constrained")
    axes = fig.subplots(max(1, len(problems)), 1, squeeze=False)[:, 0]
    panels: list[dict[str, Any]] = []
    for ax, (problem, lines) in zip(axes, problems.items()):
        series = []
        for label, line in lines.items():
            best = min((r for g in line for r in g.runs), key=lambda r: r.rel_l2)
            t, e = best.time_s, best.rel_l2_history
            keep = np.isfinite(t) & np.isfinite(e) & (e > 0)
            if keep.any():
                ax.plot(t[keep], e[keep], lw=1.3, label=f"{label} {best.size}")
            series.append({"label": label, "size": best.size, "run": str(best.path), "x": t.tolist(),
                           "y": e.tolist()})
        ax.set_yscale("log")
        ax.set_xlabel("training time (s)")
        ax.set_ylabel("relative L2 error")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
        ax.set_title(f"{problem}: error during training, best run of each family", fontsize=9)
        panels.append({"problem": problem, "metric": "rel_l2", "xlabel": ax.get_xlabel(), "ylabel": ax.get_ylabel(),
                       "xscale": ax.get_xscale(), "yscale": ax.get_yscale(), "series": series})
    return _write_figure(fig, panels, out / "curves.png")
