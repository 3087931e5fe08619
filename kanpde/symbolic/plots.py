"""``symbolic_fits.png``: each snapped edge's samples with the candidate fitted to them."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from .library import LIBRARY

__all__ = ["plot_fits"]


def plot_fits(records, path, dpi: int = 100) -> Path:
    """One panel per edge: the edge's samples (dots) and ``c f(a h + b) + d`` of its chosen
    candidate (line), titled with the candidate and its R^2."""
    n = max(len(records), 1)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = Figure(figsize=(3.0 * cols, 2.4 * rows), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, r in zip(axes, records):
        h, y = r.samples
        order = np.argsort(h)
        step = max(1, len(h) // 400)
        ax.plot(h[order][::step], y[order][::step], ".", ms=2, color="0.5", label="edge")
        f = r.chosen
        hs = np.linspace(h.min(), h.max(), 200)
        with np.errstate(all="ignore"):
            ys = np.full_like(hs, f.d) if f.name == "0" else f.c * LIBRARY[f.name].numpy_fn(f.a * hs + f.b) + f.d
        ax.plot(hs, ys, "-", lw=1.2, color="C3", label=f.name)
        ax.set_title(f"layer {r.l}: {r.p}->{r.q}  {f.name}  1-R²={max(1 - f.r2, 0):.1e}", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(records):]:
        ax.set_axis_off()
    path = Path(path)
    fig.savefig(path, dpi=dpi)
    return path
