"""PNG figures of a run: solution, pointwise error, training history and KAN activations.

Every function takes plain numpy arrays (or a :class:`kanpde.io.ResultsFile`, so reports draw
what a run wrote to disk, never re-running anything), writes one PNG atomically and returns
its path.  Figures are built as :class:`matplotlib.figure.Figure` objects rendered by the Agg
backend, never through :mod:`matplotlib.pyplot`, so no global figure state is created or
leaked and no display is needed.

Image sizes are deterministic: ``figsize`` is fixed by the number of panels, the layout is
"constrained" (no tight bounding box), so a PNG is exactly ``figsize * dpi`` pixels.

This module imports neither :mod:`kanpde.training` nor :mod:`kanpde.models`;
:func:`plot_activations` duck-types a model's ``activation_curves``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from matplotlib.tri import Triangulation

from kanpde.io import ResultsFile, atomic_path

__all__ = ["plot_solution", "plot_history", "plot_unknowns", "plot_activations", "plot_results"]

_DPI = 100
_PANEL = (4.0, 3.2)          # inches per colour-map / curve panel
_MAX_EDGES = 16              # activation panels per layer and direction
_METRIC_KEYS = ("rel_l2", "rel_h1", "mse", "linf", "l2", "h1")


# --------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------

def _numpy(value: Any, what: str) -> np.ndarray:
    """Float numpy copy of an array-like; torch tensors are detached and moved to the CPU."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    arr = np.asarray(value)
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must be a numeric array, got dtype {arr.dtype}")
    return arr.astype(float)


def _save(fig: Figure, path: str | os.PathLike, dpi: int) -> Path:
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", dpi=dpi)
    finally:
        fig.clear()
    return Path(path)


def _axis_labels(d: int, time_axis: int | None) -> list[str]:
    """Names of the input columns: spatial axes x, y, z (x1, x2 ... beyond three), time t."""
    if time_axis is not None and not (0 <= time_axis < d):
        raise ValueError(f"time_axis must be None or an input column in [0, {d - 1}], got {time_axis!r}")
    n_space = d - (time_axis is not None)
    space = ["x", "y", "z"][:n_space] if n_space <= 3 else [f"x{i + 1}" for i in range(n_space)]
    labels, it = [], iter(space)
    for axis in range(d):
        labels.append("t" if axis == time_axis else next(it))
    return labels


def _field_arrays(field: Mapping[str, Any] | ResultsFile):
    if isinstance(field, ResultsFile):
        field = field.field
    if not isinstance(field, Mapping):
        raise TypeError(f"field must be a dict with 'x' and 'u_pred' or a ResultsFile, got {type(field).__name__}")
    for key in ("x", "u_pred"):
        if field.get(key) is None:
            raise ValueError(f"field needs {key!r}, got keys {sorted(field)}")
    x = _numpy(field["x"], "field 'x'")
    u_pred = _numpy(field["u_pred"], "field 'u_pred'")
    u_exact = field.get("u_exact")
    u_exact = None if u_exact is None else _numpy(u_exact, "field 'u_exact'")
    if x.ndim == 1:
        x = x[:, None]
    if u_pred.ndim == 1:
        u_pred = u_pred[:, None]
    if u_exact is not None and u_exact.ndim == 1:
        u_exact = u_exact[:, None]
    if x.ndim != 2 or x.shape[0] == 0:
        raise ValueError(f"field 'x' must have shape (N, d) with N > 0, got {x.shape}")
    if u_pred.ndim != 2 or u_pred.shape[0] != x.shape[0]:
        raise ValueError(f"field 'u_pred' must have shape (N, m) with N = {x.shape[0]}, got {u_pred.shape}")
    if u_exact is not None and u_exact.shape != u_pred.shape:
        raise ValueError(f"field 'u_exact' must have the shape of 'u_pred' {u_pred.shape}, got {u_exact.shape}")
    return x, u_pred, u_exact


def _tensor_grid(x2: np.ndarray):
    """If the (N, 2) points are exactly a full tensor grid, return ``(xs, ys, ix, iy)``.

    ``xs``/``ys`` are the sorted distinct coordinates and ``(iy[k], ix[k])`` the grid cell of
    point ``k``; returns ``None`` for scattered points (or a grid with holes or repeats).
    """
    xs, ix = np.unique(x2[:, 0], return_inverse=True)
    ys, iy = np.unique(x2[:, 1], return_inverse=True)
    n = x2.shape[0]
    if len(xs) < 2 or len(ys) < 2 or len(xs) * len(ys) != n:
        return None
    if len(np.unique(iy * len(xs) + ix)) != n:
        return None
    return xs, ys, ix.ravel(), iy.ravel()


def _slice_to_2d(x: np.ndarray, plot_axes: Sequence[int], labels: Sequence[str]):
    """Select the points on the mid-plane of every non-plotted axis (d >= 3).

    For a grid-like axis (repeated coordinates) the distinct value nearest the middle of
    its range is chosen exactly; for scattered points a slab of +-5% of the range around the
    middle is taken, widened (up to the whole range) until it holds at least 3 points.
    Returns the boolean mask and a caption such as ``"z = 0.5"``.
    """
    mask = np.ones(x.shape[0], dtype=bool)
    captions = []
    for axis in range(x.shape[1]):
        if axis in plot_axes:
            continue
        col = x[:, axis]
        lo, hi = float(col.min()), float(col.max())
        mid = 0.5 * (lo + hi)
        values = np.unique(col[mask])
        nearest = values[np.argmin(np.abs(values - mid))]
        exact = mask & (col == nearest)
        if exact.sum() >= 3:
            mask = exact
            captions.append(f"{labels[axis]} = {nearest:.3g}")
            continue
        half = 0.05 * (hi - lo)
        while True:
            slab = mask & (np.abs(col - mid) <= half)
            if slab.sum() >= 3 or half >= hi - lo:
                break
            half *= 2
        mask = slab
        captions.append(f"|{labels[axis]} - {mid:.3g}| <= {half:.2g}")
    return mask, ", ".join(captions)


def _color_panel(fig: Figure, ax, x2: np.ndarray, values: np.ndarray, labels, title: str,
                 vmin: float, vmax: float, cmap: str = "viridis"):
    """One colour map of ``values`` at points ``x2`` (N, 2): pcolormesh on a tensor grid,
    tricontourf on scattered points (scatter if they cannot be triangulated)."""
    if not np.isfinite(vmin) or not np.isfinite(vmax):
        vmin, vmax = 0.0, 1.0
    if vmax <= vmin:
        pad = 1e-12 + 1e-6 * abs(vmin)
        vmin, vmax = vmin - pad, vmax + pad
    grid = _tensor_grid(x2)
    mappable = None
    if grid is not None:
        xs, ys, ix, iy = grid
        img = np.full((len(ys), len(xs)), np.nan)
        img[iy, ix] = values
        mappable = ax.pcolormesh(xs, ys, img, shading="nearest", cmap=cmap, vmin=vmin, vmax=vmax)
    else:
        finite = np.isfinite(values)
        try:
            tri = Triangulation(x2[finite, 0], x2[finite, 1])
            levels = MaxNLocator(nbins=40).tick_values(vmin, vmax)
            mappable = ax.tricontourf(tri, np.clip(values[finite], vmin, vmax), levels=levels, cmap=cmap)
        except (ValueError, RuntimeError):
            # fewer than 3 points, or all on one line: nothing to triangulate
            mappable = ax.scatter(x2[:, 0], x2[:, 1], c=values, s=12, cmap=cmap, vmin=vmin, vmax=vmax)
    fig.colorbar(mappable, ax=ax)
    ax.set_xlabel(labels[0])
    ax.set_ylabel(labels[1])
    ax.set_title(title, fontsize=10)
    return mappable


def _finite_range(*arrays: np.ndarray) -> tuple[float, float]:
    vals = np.concatenate([a[np.isfinite(a)].ravel() for a in arrays]) if arrays else np.array([])
    if vals.size == 0:
        return float("nan"), float("nan")
    return float(vals.min()), float(vals.max())


def _annotate_empty(ax, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, fontsize=11, wrap=True)
    ax.set_xticks([])
    ax.set_yticks([])


# --------------------------------------------------------------------------------------
# solution and error
# --------------------------------------------------------------------------------------

def plot_solution(
    field: Mapping[str, Any] | ResultsFile,
    path_solution: str | os.PathLike,
    path_error: str | os.PathLike | None,
    *,
    time_axis: int | None = None,
    title: str | None = None,
    name: str | None = None,
    dpi: int = _DPI,
) -> tuple[Path, Path | None]:
    """Draw the predicted (and exact) solution and the pointwise error ``|u - u*|``.

    ``field`` is a dict (or the ``field`` of a :class:`~kanpde.io.ResultsFile`) with ``x``
    (N, d), ``u_pred`` (N, m) and optionally ``u_exact`` (N, m); 1-D arrays are read as one
    column.  One row of panels per output component.  By input dimension:

    - ``d == 1``: ``solution.png`` overlays prediction (solid) and exact (dashed) curves;
      ``error.png`` is the curve ``|u - u*|`` on a log scale (linear if it is all zero).
    - ``d == 2``: colour maps, ``pcolormesh`` when the points form a full tensor grid and
      ``tricontourf`` otherwise; ``solution.png`` shows prediction and exact side by side with
      one shared colour scale, ``error.png`` the map of ``|u - u*|``.
    - ``d >= 3``: the first two non-time axes are drawn as for ``d == 2`` on the mid-plane of
      every other axis (the distinct value nearest the middle of its range for grid points, a
      thin slab for scattered points); the slice is named in the title.

    ``time_axis`` (the input column holding time, e.g. 1 for space-time ``(x, t)``) only
    changes the axis labels (``t`` instead of ``y``) and, for ``d >= 3``, makes time a sliced
    axis.  Without ``u_exact`` the solution figure shows the prediction only and the error
    figure holds a note saying no exact solution is available; pass ``path_error=None`` to
    skip the error figure.  ``name``: what the panels call the field (default ``u``).  Returns
    ``(path_solution, path_error)``.
    """
    x, u_pred, u_exact = _field_arrays(field)
    n, d = x.shape
    m = u_pred.shape[1]
    labels = _axis_labels(d, time_axis)
    base = name or "u"
    names = [base] if m == 1 else [f"{base}[{k}]" for k in range(m)]
    err = None if u_exact is None else np.abs(u_pred - u_exact)
    caption = ""

    if d == 1:
        order = np.argsort(x[:, 0], kind="stable")
        xs = x[order, 0]
        fig = Figure(figsize=(_PANEL[0] * 1.25, _PANEL[1] * m), layout="constrained")
        axes = fig.subplots(m, 1, squeeze=False)[:, 0]
        for k, ax in enumerate(axes):
            ax.plot(xs, u_pred[order, k], "-", label="prediction", lw=1.6)
            if u_exact is not None:
                ax.plot(xs, u_exact[order, k], "--", label="exact", lw=1.2, color="k")
            ax.set_xlabel(labels[0])
            ax.set_ylabel(names[k])
            ax.legend(fontsize=8)
        if title:
            fig.suptitle(title)
        _save(fig, path_solution, dpi)

        if path_error is None:
            return Path(path_solution), None
        fig = Figure(figsize=(_PANEL[0] * 1.25, _PANEL[1] * m), layout="constrained")
        axes = fig.subplots(m, 1, squeeze=False)[:, 0]
        for k, ax in enumerate(axes):
            if err is None:
                _annotate_empty(ax, "no exact solution:\npointwise error not available")
                continue
            e = err[order, k]
            ax.plot(xs, e, "-", color="C3", lw=1.2)
            if np.any(e[np.isfinite(e)] > 0):
                ax.set_yscale("log")
            ax.set_xlabel(labels[0])
            ax.set_ylabel(f"|{names[k]} - {names[k]}*|")
        if title:
            fig.suptitle(f"{title}: pointwise error")
        return Path(path_solution), _save(fig, path_error, dpi)

    plot_axes = [a for a in range(d) if a != time_axis][:2]
    if len(plot_axes) < 2:          # d == 2 with time: draw (x, t)
        plot_axes = [0, 1]
    if d >= 3:
        mask, caption = _slice_to_2d(x, plot_axes, labels)
        x, u_pred = x[mask], u_pred[mask]
        u_exact = None if u_exact is None else u_exact[mask]
        err = None if err is None else err[mask]
    x2 = x[:, plot_axes]
    axis_labels = [labels[a] for a in plot_axes]
    suffix = f" ({caption})" if caption else ""

    n_cols = 1 if u_exact is None else 2
    fig = Figure(figsize=(_PANEL[0] * n_cols, _PANEL[1] * m), layout="constrained")
    axes = fig.subplots(m, n_cols, squeeze=False)
    for k in range(m):
        vmin, vmax = _finite_range(u_pred[:, k], *(() if u_exact is None else (u_exact[:, k],)))
        _color_panel(fig, axes[k, 0], x2, u_pred[:, k], axis_labels, f"{names[k]} prediction{suffix}", vmin, vmax)
        if u_exact is not None:
            _color_panel(fig, axes[k, 1], x2, u_exact[:, k], axis_labels, f"{names[k]} exact{suffix}", vmin, vmax)
    if title:
        fig.suptitle(title)
    _save(fig, path_solution, dpi)

    if path_error is None:
        return Path(path_solution), None
    fig = Figure(figsize=(_PANEL[0], _PANEL[1] * m), layout="constrained")
    axes = fig.subplots(m, 1, squeeze=False)[:, 0]
    for k, ax in enumerate(axes):
        if err is None:
            _annotate_empty(ax, "no exact solution:\npointwise error not available")
            continue
        vmin, vmax = _finite_range(err[:, k])
        _color_panel(fig, ax, x2, err[:, k], axis_labels, f"|{names[k]} - {names[k]}*|{suffix}",
                     vmin, vmax, cmap="magma")
    if title:
        fig.suptitle(f"{title}: pointwise error")
    return Path(path_solution), _save(fig, path_error, dpi)


# --------------------------------------------------------------------------------------
# training history
# --------------------------------------------------------------------------------------

def _log_series(ax, x: np.ndarray, y: np.ndarray, label: str, **kw) -> bool:
    """Plot the finite, positive part of ``y`` (a log axis cannot show the rest)."""
    keep = np.isfinite(x) & np.isfinite(y) & (y > 0)
    if not keep.any():
        return False
    ax.plot(x[keep], y[keep], label=label, **kw)
    return True


def _series_panel(ax, xvals, series: Mapping[str, np.ndarray], xlabel: str, ylabel: str | None, empty: str,
                  title: str, lw: float) -> None:
    """One panel of log-scaled series against ``xvals`` (or the note ``empty`` if nothing is
    finite and positive)."""
    drawn = False
    for name, values in series.items():
        drawn |= _log_series(ax, xvals, values, name, lw=lw, marker=".", ms=3)
    if drawn:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.set_xlabel(xlabel)
        if ylabel:
            ax.set_ylabel(ylabel)
    else:
        _annotate_empty(ax, empty)
    ax.set_title(title, fontsize=10)


#: history columns written by the training methods' plugins (drawn in a panel of their own)
_METHOD_PREFIXES = ("weight_", "attention_", "causal_", "collocation_points")


def plot_history(
    history: Mapping[str, Any] | ResultsFile,
    path: str | os.PathLike,
    *,
    title: str | None = None,
    dpi: int = _DPI,
) -> Path:
    """Draw the training history: losses and error metrics on log axes.

    Panels: (1) ``loss`` and every ``loss_<term>`` against ``step``; (2) the error metrics
    present (``rel_l2``, ``rel_h1``, ``mse``, ``linf``, ``l2``, ``h1``) against ``step``;
    (3) the same metrics against wall time ``time_s`` (only when ``time_s`` is present);
    (4) the training methods' columns (``weight_*``, ``attention_*``, ``causal_*``,
    ``collocation_points``), when there are any.
    Without ``step`` the row index is used.  NaN, infinite and non-positive values are
    skipped (metrics are typically NaN between evaluations); a panel with nothing to show
    says so.  ``history`` is a dict of equal-length 1-D arrays or a ResultsFile.
    """
    if isinstance(history, ResultsFile):
        history = history.history
    if not isinstance(history, Mapping):
        raise TypeError(f"history must be a dict of 1-D arrays or a ResultsFile, got {type(history).__name__}")
    arrays = {}
    for name, values in history.items():
        arr = _numpy(values, f"history {name!r}")
        if arr.ndim != 1:
            raise ValueError(f"history {name!r} must be 1-D, got shape {arr.shape}")
        arrays[name] = arr
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"history arrays must have equal lengths, got {lengths}")
    n = next(iter(lengths.values()), 0)
    step = arrays.get("step", np.arange(n, dtype=float))
    loss_keys = [k for k in arrays if k == "loss" or k.startswith("loss_")]
    metric_keys = [k for k in _METRIC_KEYS if k in arrays]
    method_keys = [k for k in arrays if k.startswith(_METHOD_PREFIXES)]
    has_time = "time_s" in arrays

    n_panels = (3 if has_time else 2) + bool(method_keys)
    fig = Figure(figsize=(_PANEL[0] * n_panels, _PANEL[1]), layout="constrained")
    axes = fig.subplots(1, n_panels, squeeze=False)[0]

    ax = axes[0]
    drawn = False
    for k in loss_keys:
        style = dict(lw=2.0, color="k") if k == "loss" else dict(lw=1.2)
        drawn |= _log_series(ax, step, arrays[k], "total" if k == "loss" else k[len("loss_"):], **style)
    if drawn:
        ax.set_yscale("log")
        ax.legend(fontsize=8)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
    else:
        _annotate_empty(ax, "no finite positive loss values")
    ax.set_title("loss", fontsize=10)

    panels = [(axes[1], step, "step")]
    if has_time:
        panels.append((axes[2], arrays["time_s"], "wall time [s]"))
    for ax, xvals, xlabel in panels:
        _series_panel(ax, xvals, {k: arrays[k] for k in metric_keys}, xlabel, "error",
                      "no error metrics recorded", f"error vs {xlabel.split(' [')[0]}", lw=1.4)
    if method_keys:  # what the training methods did: loss weights, causal weights, points
        _series_panel(axes[-1], step, {k: arrays[k] for k in method_keys}, "step", None,
                      "no finite positive values", "training methods", lw=1.2)
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)


# --------------------------------------------------------------------------------------
# Unknowns of inverse problems
# --------------------------------------------------------------------------------------

def plot_unknowns(
    history: Mapping[str, Any],
    field: Mapping[str, Any],
    truths: Mapping[str, Any],
    path: str | os.PathLike,
    *,
    time_axis: int | None = None,
    dpi: int = _DPI,
) -> list[Path]:
    """Draw what an inverse problem learned about its unknowns.

    ``path`` (``unknowns.png``): one panel per scalar unknown, its value at every evaluation
    (``history["unknown_<name>"]`` against ``step``) with the true value as a dashed line
    where ``truths`` has it.  Each field unknown (``field["unknown_<name>"]`` on ``field["x"]``,
    with ``field["unknown_<name>_exact"]`` where known) is drawn like a solution into
    ``unknown_<name>.png`` beside ``path``, and its error into ``unknown_<name>_error.png``.
    Returns the paths written."""
    path = Path(path)
    written = []
    scalars = [k[len("unknown_"):] for k in history if k.startswith("unknown_")]
    if scalars:
        step = _numpy(history["step"], "history 'step'") if "step" in history else None
        fig = Figure(figsize=(_PANEL[0] * len(scalars), _PANEL[1]), layout="constrained")
        for ax, name in zip(fig.subplots(1, len(scalars), squeeze=False)[0], scalars):
            values = _numpy(history[f"unknown_{name}"], f"history 'unknown_{name}'")
            xs = np.arange(len(values)) if step is None else step
            ok = np.isfinite(values)
            ax.plot(xs[ok], values[ok], "o-", ms=3, lw=1.4, label="learned")
            if name in truths and not callable(truths[name]):
                ax.axhline(float(truths[name]), ls="--", color="k", lw=1.0, label="true")
            ax.set_xlabel("step")
            ax.set_title(name, fontsize=10)
            ax.legend(fontsize=8)
        written.append(_save(fig, path, dpi))
    for key in field:
        if not key.startswith("unknown_") or key.endswith("_exact"):
            continue
        sub = {"x": field["x"], "u_pred": field[key], "u_exact": field.get(f"{key}_exact")}
        error = path.parent / f"{key}_error.png" if sub["u_exact"] is not None else None
        label = key[len("unknown_"):]
        written += [p for p in plot_solution(sub, path.parent / f"{key}.png", error, time_axis=time_axis,
                                             title=f"unknown {label}", name=label, dpi=dpi) if p]
    return written


# --------------------------------------------------------------------------------------
# KAN activations
# --------------------------------------------------------------------------------------

def plot_activations(
    model: Any,
    path: str | os.PathLike,
    n: int = 200,
    *,
    max_edges: int = _MAX_EDGES,
    title: str | None = None,
    dpi: int = _DPI,
) -> Path:
    """Draw every learned edge function ``phi_{l,q,p}`` of a KAN, one small panel per edge.

    ``model.activation_curves(n)`` must return a list with one dict per layer holding
    ``"x"`` (n, in) sample inputs and ``"phi"`` (n, in, out) the edge outputs (tensors or
    arrays).  Each layer becomes a block of cells with one row per output node ``q`` and one
    column per input node ``p`` (the KAN paper's interpretability view); blocks are stacked
    from the first layer (top) to the last.  Each curve is min-max scaled to fill its cell, so
    shapes are comparable, and its opacity is proportional to the edge's output range relative
    to the largest in its layer (as in the paper), so inactive edges fade.  At most
    ``max_edges`` inputs and outputs per layer are shown; a truncated layer says how many it
    shows in its heading.
    """
    curves_fn = getattr(model, "activation_curves", None)
    if not callable(curves_fn):
        raise TypeError(f"plot_activations needs a model with activation_curves(n) (a KAN); "
                        f"{type(model).__name__} has none")
    if int(max_edges) < 1:
        raise ValueError(f"max_edges must be a positive integer, got {max_edges!r}")
    curves = curves_fn(n)
    layers = []
    for l, layer in enumerate(curves):
        if not isinstance(layer, Mapping) or "x" not in layer or "phi" not in layer:
            raise ValueError(f"activation_curves: layer {l} must be a dict with 'x' and 'phi'")
        xs = _numpy(layer["x"], f"layer {l} 'x'")
        phi = _numpy(layer["phi"], f"layer {l} 'phi'")
        if xs.ndim != 2 or phi.ndim != 3 or phi.shape[:2] != xs.shape:
            raise ValueError(f"activation_curves: layer {l} needs x (n, in) and phi (n, in, out), "
                             f"got x {xs.shape} and phi {phi.shape}")
        layers.append((xs, phi))
    if not layers:
        raise ValueError(f"activation_curves returned no layers for {type(model).__name__}")

    cell = 0.6   # inches per edge panel
    shown = [(min(p.shape[1], max_edges), min(p.shape[2], max_edges)) for _, p in layers]
    n_cols = max(c for c, _ in shown)
    heights = [r + 0.9 for _, r in shown]   # extra room for the heading and tick labels
    fig = Figure(figsize=(max(3.0, cell * n_cols + 0.8), cell * sum(heights) + (0.4 if title else 0.0)),
                 layout="constrained")
    axes = fig.subplots(len(layers), 1, squeeze=False, height_ratios=heights)[:, 0]
    # One Axes per layer with every edge drawn in its own unit cell: hundreds of separate
    # Axes would make wide layers take seconds to render.
    for l, ((xs, phi), ax, (n_in, n_out)) in enumerate(zip(layers, axes, shown)):
        total_in, total_out = phi.shape[1], phi.shape[2]
        spans = np.ptp(phi[:, :n_in, :n_out], axis=0)            # (n_in, n_out)
        finite_spans = spans[np.isfinite(spans)]
        largest = float(finite_spans.max()) if finite_spans.size else 0.0
        segments, colors = [], []
        for p in range(n_in):
            order = np.argsort(xs[:, p], kind="stable")
            xp = xs[order, p]
            x_lo, x_span = np.nanmin(xp), np.ptp(xp)
            u = (xp - x_lo) / x_span if x_span > 0 else np.full_like(xp, 0.5)
            for q in range(n_out):
                yq = phi[order, p, q]
                span = spans[p, q]
                v = (yq - np.nanmin(yq)) / span if np.isfinite(span) and span > 0 else np.full_like(yq, 0.5)
                # cell (q, p): column p from the left, row q from the top
                segments.append(np.column_stack([p + 0.08 + 0.84 * u, q + 0.92 - 0.84 * v]))
                strength = span / largest if largest > 0 and np.isfinite(span) else 0.0
                colors.append((0.12, 0.35, 0.65, 0.15 + 0.85 * strength))
        ax.add_collection(LineCollection(segments, colors=colors, linewidths=1.0))
        ax.set_xlim(0, n_cols)
        ax.set_ylim(n_out, 0)
        ax.set_xticks(np.arange(n_in) + 0.5, [f"in {p}" for p in range(n_in)], fontsize=6)
        ax.set_yticks(np.arange(n_out) + 0.5, [f"out {q}" for q in range(n_out)], fontsize=6)
        ax.tick_params(length=0, pad=1)
        for p in range(n_in + 1):
            ax.axvline(p, color="0.8", lw=0.6)
        for q in range(n_out + 1):
            ax.axhline(q, xmax=n_in / n_cols, color="0.8", lw=0.6)
        for side in ax.spines.values():
            side.set_visible(False)
        heading = f"layer {l}: {total_in} -> {total_out}"
        if (n_in, n_out) != (total_in, total_out):
            heading += f" (showing {n_in} of {total_in} inputs, {n_out} of {total_out} outputs)"
        ax.set_title(heading, fontsize=8)
    if title:
        fig.suptitle(title)
    return _save(fig, path, dpi)


# --------------------------------------------------------------------------------------
# everything for one run
# --------------------------------------------------------------------------------------

def plot_results(
    results: ResultsFile,
    folder: str | os.PathLike,
    *,
    time_axis: int | None = None,
    title: str | None = None,
) -> dict[str, Path]:
    """Write ``solution.png``, ``error.png`` and ``history.png`` for one read results file.

    Figures whose data the file lacks (no field, empty history) are skipped.  Returns a dict
    from figure name (``"solution"``, ``"error"``, ``"history"``) to the written path.
    """
    folder = Path(folder)
    if title is None:
        parts = [str(results.attrs[k]) for k in ("problem", "model") if k in results.attrs]
        title = " / ".join(parts) or None
    written: dict[str, Path] = {}
    if results.field:
        sol, err = plot_solution(results.field, folder / "solution.png", folder / "error.png",
                                 time_axis=time_axis, title=title)
        written["solution"], written["error"] = sol, err
    if results.history and any(len(v) for v in results.history.values()):
        written["history"] = plot_history(results.history, folder / "history.png", title=title)
    return written
