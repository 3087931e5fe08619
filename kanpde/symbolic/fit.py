"""Fitting one edge function to a candidate ``c * f(a * x + b) + d``.

A grid search over ``(a, b)`` with ``c, d`` by linear least squares at every grid point (the
model is linear in them), then a nonlinear least-squares refinement of all four from the best
grid point (scipy).  The goodness of fit is R^2 over the edge's samples.  Among the candidates
the best R^2 wins unless a simpler one (lower complexity) leaves at most ten times its residual,
the KAN paper's preference for simple formulas.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .library import Candidate

__all__ = ["EdgeFit", "fit_candidate", "fit_edge", "choose"]

#: grid of the search: |a| from 10^-1.5 to 10^1.5 (both signs), b over one period and more
_A_GRID = np.concatenate([-np.logspace(1.5, -1.5, 31), np.logspace(-1.5, 1.5, 31)])
_B_GRID = np.linspace(-np.pi, np.pi, 33)
#: a simpler candidate wins if its residual is at most this factor above the best one's
SIMPLER_FACTOR = 10.0


@dataclass
class EdgeFit:
    """The fit of one candidate: ``name``, ``a, b, c, d`` and ``r2`` (1 - residual / variance)."""

    name: str
    a: float
    b: float
    c: float
    d: float
    r2: float
    complexity: int

    @property
    def params(self) -> list[float]:
        return [self.a, self.b, self.c, self.d]


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    total = float(((y - y.mean()) ** 2).sum())
    residual = float(((y - pred) ** 2).sum())
    if total <= 1e-300:
        return 1.0 if residual <= 1e-300 else 0.0
    return 1.0 - residual / total


def _linear(f: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Best ``c, d`` of ``c f + d`` for each row of ``f`` ``(K, N)``, and the residual sums."""
    fm, ym = f.mean(1, keepdims=True), y.mean()
    fc, yc = f - fm, y - ym
    var = (fc ** 2).sum(1)
    c = np.where(var > 1e-300, (fc * yc).sum(1) / np.maximum(var, 1e-300), 0.0)
    d = ym - c * fm[:, 0]
    residual = ((c[:, None] * f + d[:, None] - y) ** 2).sum(1)
    return c, d, residual


def fit_candidate(x: np.ndarray, y: np.ndarray, candidate: Candidate) -> EdgeFit:
    """The best ``c * f(a x + b) + d`` for samples ``(x, y)`` (1-D arrays)."""
    x, y = np.asarray(x, dtype=np.float64).ravel(), np.asarray(y, dtype=np.float64).ravel()
    if candidate.name == "0":
        return EdgeFit("0", 0.0, 0.0, 0.0, float(y.mean()), _r2(y, np.full_like(y, y.mean())), 0)
    if candidate.name == "x":  # linear: exact by least squares
        c, d, _ = _linear(x[None, :], y)
        return EdgeFit("x", 1.0, 0.0, float(c[0]), float(d[0]), _r2(y, c[0] * x + d[0]), candidate.complexity)
    a, b = np.meshgrid(_A_GRID, _B_GRID, indexing="ij")
    a, b = a.ravel(), b.ravel()
    with np.errstate(all="ignore"):
        f = candidate.numpy_fn(a[:, None] * x[None, :] + b[:, None])
    f = np.where(np.isfinite(f), f, 0.0)
    c, d, residual = _linear(f, y)
    residual = np.where(np.isfinite(residual), residual, np.inf)
    best = int(np.argmin(residual))
    start = np.array([a[best], b[best], c[best], d[best]])

    def misfit(p):
        with np.errstate(all="ignore"):
            r = p[2] * candidate.numpy_fn(p[0] * x + p[1]) + p[3] - y
        return np.where(np.isfinite(r), r, 1e10)

    from scipy.optimize import least_squares

    try:
        p = least_squares(misfit, start, method="lm", xtol=1e-15, ftol=1e-15, gtol=1e-15, max_nfev=2000).x
    except (ValueError, RuntimeError):  # pragma: no cover - a degenerate start
        p = start
    if (misfit(p) ** 2).sum() > (misfit(start) ** 2).sum():
        p = start
    with np.errstate(all="ignore"):
        pred = p[2] * candidate.numpy_fn(p[0] * x + p[1]) + p[3]
    r2 = _r2(y, pred) if np.all(np.isfinite(pred)) else -np.inf
    return EdgeFit(candidate.name, *(float(v) for v in p), r2=float(r2), complexity=candidate.complexity)


def choose(fits: list[EdgeFit]) -> EdgeFit:
    """The candidate to use: the simplest whose residual (1 - R^2) is within
    :data:`SIMPLER_FACTOR` of the best one's; an edge that no candidate fits
    well becomes ``0`` (an edge the rest of the network can do without, fine-tuning then
    compensates)."""
    best = max(fits, key=lambda f: f.r2)
    limit = SIMPLER_FACTOR * max(1.0 - best.r2, 1e-15)
    good = [f for f in fits if 1.0 - f.r2 <= limit]
    return min(good, key=lambda f: (f.complexity, -f.r2))


def fit_edge(x: np.ndarray, y: np.ndarray, candidates: list[Candidate]) -> tuple[EdgeFit, list[EdgeFit]]:
    """Every candidate fitted to ``(x, y)``; returns the chosen fit and all of them."""
    fits = [fit_candidate(x, y, c) for c in candidates]
    return choose(fits), fits
