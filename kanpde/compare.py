"""``kanpde-compare``: the runs of one or more sweeps read back and compared, KAN against MLP.

    kanpde-compare multirun/2026-12-07/10-00-00 [more folders ...] [--out DIR]

Every ``results.h5`` under the folders is one run.  Runs are grouped by (problem, model family,
recipe, size) -- the family is the model class with what changes its behaviour (an MLP's
activation, input features), the recipe the optimisers of its stages in order, the size the
final widths and grid -- and each group is aggregated over its seeds: median, minimum and
maximum of the final relative L2 and H1 errors, the median wall time and step count, and the
median time at which the evaluated rel_l2 first reached 1e-2 and 1e-3 (``never`` when half
the seeds or more did not reach it).  Written into ``--out`` (default: the first folder):

- ``comparison.csv`` and ``comparison.md``: one row per group, the best group of each problem
  (lowest median rel_l2) marked, and the runs that could not be used listed by path with why
  (failed or diverged, a run folder without ``results.h5``, an unreadable file);
- ``scaling_params.png`` (rel_l2 and rel_h1 against the parameter count, log-log, one line per
  family and recipe, the seeds' spread as error bars: the form of the KAN paper's Figure 3.3),
  ``scaling_time.png`` (the same errors against wall time) and ``curves.png`` (rel_l2 during
  training against time, the best run of each family), each with a JSON sidecar of the same
  name holding the plotted data (:mod:`kanpde.compare_plots`).

Running it again on the same folders writes the same files.
"""
from __future__ import annotations

import argparse
import csv
import io as _io
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from kanpde.io import atomic_path, read_results

__all__ = ["RunRecord", "Group", "Skipped", "collect_runs", "group_runs", "write_report", "main",
           "THRESHOLDS", "USABLE_STATUSES"]

RESULTS = "results.h5"
#: rel_l2 levels whose first-reached time is reported
THRESHOLDS = (1e-2, 1e-3)
#: run statuses whose final errors mean what they say (a diverged run kept its last good state)
USABLE_STATUSES = ("completed", "time_limit", "target_reached", "plateau")


@dataclass
class RunRecord:
    """One finished run, as read from its ``results.h5``."""

    path: Path
    problem: str
    family: str
    recipe: str
    size: str
    params: int
    seed: int
    status: str
    rel_l2: float
    rel_h1: float
    wall_time_s: float
    steps: int
    time_s: np.ndarray = field(repr=False)      # evaluation times during training
    rel_l2_history: np.ndarray = field(repr=False)

    def time_to(self, level: float) -> float:
        """Training time at which rel_l2 was first <= level (``inf`` if never)."""
        hit = np.flatnonzero(self.rel_l2_history <= level)
        return float(self.time_s[hit[0]]) if hit.size else math.inf


@dataclass
class Skipped:
    """A run that could not be used, with the reason."""

    path: Path
    reason: str


@dataclass
class Group:
    """The runs of one (problem, family, recipe, size), aggregated over their seeds."""

    problem: str
    family: str
    recipe: str
    size: str
    runs: list[RunRecord]
    best: bool = False

    @property
    def params(self) -> int:
        return self.runs[0].params

    def stats(self, name: str) -> tuple[float, float, float]:
        """(median, min, max) over the seeds of a run attribute."""
        values = np.array([getattr(r, name) for r in self.runs], dtype=float)
        return float(np.median(values)), float(values.min()), float(values.max())

    def time_to(self, level: float) -> float:
        """Median over the seeds of the time to reach ``level`` (``inf``: half or more never did)."""
        return float(np.median([r.time_to(level) for r in self.runs]))

    def row(self) -> dict[str, Any]:
        l2, h1 = self.stats("rel_l2"), self.stats("rel_h1")
        row = {"problem": self.problem, "family": self.family, "recipe": self.recipe, "size": self.size,
               "params": self.params, "seeds": len(self.runs),
               "rel_l2_median": l2[0], "rel_l2_min": l2[1], "rel_l2_max": l2[2],
               "rel_h1_median": h1[0], "rel_h1_min": h1[1], "rel_h1_max": h1[2],
               "wall_s_median": self.stats("wall_time_s")[0]}
        for level in THRESHOLDS:
            row[f"time_to_{level:.0e}_s"] = self.time_to(level)
        row["steps_median"] = self.stats("steps")[0]
        row["best"] = self.best
        return row


# ------------------------------------------------------------------------------ reading
def _model_config(config_yaml: str) -> tuple[dict, dict]:
    """The (model, optim) sections of a run's saved configuration (empty when absent)."""
    import yaml

    try:
        cfg = yaml.safe_load(config_yaml) if config_yaml else {}
    except yaml.YAMLError:
        cfg = {}
    cfg = cfg if isinstance(cfg, dict) else {}
    model, optim = cfg.get("model") or {}, cfg.get("optim") or {}
    return (model if isinstance(model, dict) else {}), (optim if isinstance(optim, dict) else {})


def _family(model_name: str, model_cfg: dict) -> str:
    """``KAN``, ``ChebyKAN``, ``MLP(tanh)``, ``MLP(sin)+fourier`` ...: the model class inside any
    wrappers, an MLP's activation, and the kind of input features."""
    inner = model_name.split("[", 1)[0]
    while "(" in inner:  # ConstrainedOutput(FourierFeatures(MLP)) -> MLP
        inner = inner[inner.index("(") + 1:].rstrip(")")
    family = inner or "model"
    if family == "MLP":
        family += f"({model_cfg.get('activation', 'tanh')})"
    features = model_cfg.get("features")
    if isinstance(features, dict) and features.get("kind"):
        family += f"+{features['kind']}"
    return family


def _recipe(optim_cfg: dict, model_name: str) -> str:
    """The optimisers of the training stages in order, repeats folded, and ``+hard`` for
    hard-constrained boundary conditions: ``lbfgs``, ``adam>lbfgs+hard``."""
    names = [str(s.get("optimizer", "?")) for s in optim_cfg.get("stages") or [] if isinstance(s, dict)]
    folded = [n for i, n in enumerate(names) if i == 0 or n != names[i - 1]]
    return (">".join(folded) or "-") + ("+hard" if model_name.startswith("ConstrainedOutput(") else "")


def _size(model_name: str) -> str:
    """The widths and grid of the final model: ``[2,10,1] G=20``."""
    if "[" not in model_name:
        return model_name
    size = model_name[model_name.index("["):]
    widths, _, rest = size.partition("]")
    grid = rest.strip("()")
    return f"{widths}]" + (f" {grid}" if grid else "")


def load_run(path: Path) -> RunRecord:
    """A :class:`RunRecord` from one ``results.h5`` (raises on an unreadable or partial file)."""
    res = read_results(path)
    attrs, metrics, history = res.attrs, res.metrics, res.history
    missing = [k for k in ("problem", "model", "n_params") if k not in attrs] + \
        [k for k in ("rel_l2", "rel_h1") if k not in metrics] + \
        [f"history/{k}" for k in ("time_s", "rel_l2") if k not in history]
    if missing:
        raise ValueError(f"incomplete results file: {', '.join(missing)} missing")
    model_cfg, optim_cfg = _model_config(str(attrs.get("config_yaml", "")))
    model_name = str(attrs["model"])
    return RunRecord(
        path=Path(path), problem=str(attrs["problem"]), family=_family(model_name, model_cfg),
        recipe=_recipe(optim_cfg, model_name), size=_size(model_name), params=int(attrs["n_params"]),
        seed=int(attrs.get("seed", -1)), status=str(attrs.get("status", "completed")),
        rel_l2=float(metrics["rel_l2"]), rel_h1=float(metrics["rel_h1"]),
        wall_time_s=float(attrs.get("wall_time_s", math.nan)), steps=int(attrs.get("steps", -1)),
        time_s=np.asarray(history["time_s"], dtype=float), rel_l2_history=np.asarray(history["rel_l2"], dtype=float))


def _run_folders_without_results(root: Path) -> Iterable[Path]:
    """Hydra job folders (they hold ``.hydra/config.yaml``) that have no ``results.h5``."""
    for cfg in sorted(root.rglob(".hydra/config.yaml")):
        folder = cfg.parent.parent
        if not (folder / RESULTS).exists():
            yield folder


def collect_runs(folders: Sequence[str | Path]) -> tuple[list[RunRecord], list[Skipped]]:
    """Every usable run under ``folders`` and every run that is not, each found once."""
    runs, skipped, seen = [], [], set()
    for folder in folders:
        root = Path(folder)
        if not root.is_dir():
            raise FileNotFoundError(f"kanpde-compare: {str(root)!r} is not a folder")
        for path in sorted(root.rglob(RESULTS)):
            key = path.resolve()
            if key in seen:
                continue
            seen.add(key)
            try:
                run = load_run(path)
            except Exception as exc:  # any unreadable file is reported, never fatal
                skipped.append(Skipped(path, f"unreadable: {type(exc).__name__}: {exc}"))
                continue
            if run.status not in USABLE_STATUSES:
                skipped.append(Skipped(path, f"status {run.status!r}"))
            elif not (math.isfinite(run.rel_l2) and math.isfinite(run.rel_h1)):
                skipped.append(Skipped(path, f"non-finite errors (rel_l2 = {run.rel_l2}, rel_h1 = {run.rel_h1})"))
            else:
                runs.append(run)
        for folder_ in _run_folders_without_results(root):
            if folder_.resolve() not in seen:
                seen.add(folder_.resolve())
                skipped.append(Skipped(folder_, f"no {RESULTS} (the job failed or has not finished)"))
    return runs, skipped


def group_runs(runs: Iterable[RunRecord]) -> list[Group]:
    """Runs grouped by (problem, family, recipe, size), sorted by problem, family, recipe and
    parameter count; the group with the lowest median rel_l2 of each problem is ``best``."""
    groups: dict[tuple, Group] = {}
    for run in runs:
        key = (run.problem, run.family, run.recipe, run.size)
        groups.setdefault(key, Group(*key, runs=[])).runs.append(run)
    out = sorted(groups.values(), key=lambda g: (g.problem, g.family, g.recipe, g.params, g.size))
    for g in out:
        g.runs.sort(key=lambda r: (r.seed, str(r.path)))
    for problem in {g.problem for g in out}:
        mine = [g for g in out if g.problem == problem]
        min(mine, key=lambda g: g.stats("rel_l2")[0]).best = True
    return out


# ------------------------------------------------------------------------------ writing
def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else ""
    if isinstance(value, float):
        if math.isinf(value):
            return "never"
        return f"{value:.3g}" if abs(value) >= 1e-2 or value == 0 else f"{value:.2e}"
    return str(value)


def _markdown(groups: list[Group], skipped: list[Skipped]) -> str:
    lines = ["| problem | model | recipe | size | params | seeds | rel_l2 median [min, max] | rel_h1 median "
             "[min, max] | wall s | to 1e-2 s | to 1e-3 s | steps | best |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in groups:
        r = g.row()
        lines.append(
            f"| {g.problem} | {g.family} | {g.recipe} | {g.size} | {g.params} | {len(g.runs)} | "
            f"{r['rel_l2_median']:.2e} [{r['rel_l2_min']:.1e}, {r['rel_l2_max']:.1e}] | "
            f"{r['rel_h1_median']:.2e} [{r['rel_h1_min']:.1e}, {r['rel_h1_max']:.1e}] | "
            f"{r['wall_s_median']:.0f} | {_fmt(r['time_to_1e-02_s'])} | {_fmt(r['time_to_1e-03_s'])} | "
            f"{r['steps_median']:.0f} | {'**best**' if g.best else ''} |")
    if skipped:
        lines += ["", f"Runs not used ({len(skipped)}):", ""]
        lines += [f"- `{s.path}`: {s.reason}" for s in skipped]
    return "\n".join(lines) + "\n"


def _csv(groups: list[Group]) -> str:
    buf = _io.StringIO()
    rows = [g.row() for g in groups]
    header = list(rows[0]) if rows else ["problem", "family", "recipe", "size", "params", "seeds"]
    writer = csv.DictWriter(buf, fieldnames=header, lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})
    return buf.getvalue()


def _write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        Path(tmp).write_text(text)


def write_report(folders: Sequence[str | Path], out: str | Path | None = None) -> dict[str, Any]:
    """Read the runs under ``folders`` and write the comparison into ``out`` (default: the first
    folder); returns ``{"groups", "skipped", "files"}``."""
    from kanpde.compare_plots import plot_curves, plot_scaling

    if not folders:
        raise ValueError("kanpde-compare: give at least one folder of runs")
    runs, skipped = collect_runs(folders)
    out = Path(out if out is not None else folders[0])
    out.mkdir(parents=True, exist_ok=True)
    groups = group_runs(runs)
    files = [out / "comparison.csv", out / "comparison.md"]
    _write_text(files[0], _csv(groups))
    _write_text(files[1], _markdown(groups, skipped))
    files += plot_scaling(groups, out)
    files += plot_curves(groups, out)
    return {"groups": groups, "skipped": skipped, "files": files}


def main(argv: Sequence[str] | None = None) -> int:
    """Console entry point ``kanpde-compare``."""
    ap = argparse.ArgumentParser(prog="kanpde-compare", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("folders", nargs="+", help="folders holding run folders (a sweep's folder, several sweeps)")
    ap.add_argument("--out", default=None, help="where to write the report (default: the first folder)")
    args = ap.parse_args(argv)
    try:
        report = write_report(args.folders, args.out)
    except (FileNotFoundError, ValueError, PermissionError) as exc:
        print(f"kanpde-compare: error: {exc}", file=sys.stderr)
        return 2
    groups, skipped = report["groups"], report["skipped"]
    n_runs = sum(len(g.runs) for g in groups)
    print(_markdown(groups, skipped), end="")
    print(f"kanpde-compare: {n_runs} runs in {len(groups)} groups, {len(skipped)} not used; wrote "
          + ", ".join(str(p) for p in report["files"]))
    if not groups:
        print("kanpde-compare: error: no usable results.h5 under " + ", ".join(map(str, args.folders)),
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
