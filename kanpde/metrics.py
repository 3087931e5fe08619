r"""Error norms of a predicted solution against the exact one.

Errors are measured on a dedicated evaluation set, ``x, w = domain.evaluation_points(n)``
(a uniform grid inside the domain with quadrature weights ``w`` summing to the domain measure),
never on the training points.  With ``e = u - u*`` and the quadrature norm

.. math::

    \|f\|^2 = \sum_i w_i\, |f_i|^2 \;\approx\; \int_\Omega |f|^2 \,dx

(``|f_i|^2`` sums over output components; for gradients also over input coordinates),
:func:`errors` reports

=========  =====================================================================
``l2``     :math:`\|e\|`
``rel_l2`` :math:`\|e\| / \|u^*\|`
``h1``     :math:`\sqrt{\|e\|^2 + \|\nabla e\|^2}`
``rel_h1`` :math:`\sqrt{\|e\|^2 + \|\nabla e\|^2} / \sqrt{\|u^*\|^2 + \|\nabla u^*\|^2}`
``mse``    plain mean of :math:`|e|^2` over points and components (the paper's and pykan's
           "l2"; no weights)
``linf``   :math:`\max |e|` over points and components
=========  =====================================================================

With ``weights=None`` every point weighs ``1/N`` (a mean), so ``l2`` is the root mean square
error and the relative norms equal the continuous ones up to quadrature error on any uniform
point set.  The paper's "L2-squared" and "H1-squared" errors are ``l2**2`` and ``h1**2``.

Space-time problems: the gradient is taken over **all** input columns, time included (the H1
norm of the space-time domain).  This is well defined for every problem and is what
:meth:`kanpde.problem.Problem.exact_grad` returns.

Undefined values are ``NaN``, never an exception: ``h1``/``rel_h1`` without gradients, the
relative errors when the exact solution is identically zero, and every metric when the
problem has no exact solution (see :func:`evaluate_errors`).
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np
import torch

from kanpde import operators as op

__all__ = ["METRICS", "errors", "evaluate_errors", "nan_metrics"]

#: names of the metrics :func:`errors` returns, in reporting order
METRICS = ("rel_l2", "rel_h1", "mse", "linf", "l2", "h1")


def nan_metrics() -> dict[str, float]:
    """Every metric set to NaN (for problems without an exact solution)."""
    return {k: math.nan for k in METRICS}


def _array(a: Any, arg: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    try:
        return np.asarray(a, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"errors: {arg} must be a tensor or array of numbers, got {type(a).__name__}") from None


def _rows(a: np.ndarray, n: int, arg: str) -> np.ndarray:
    """``a`` as ``(N, -1)``: one row per point."""
    if a.ndim == 0 or a.shape[0] != n:
        raise ValueError(f"errors: {arg} must have one row per point (N = {n}), got shape {a.shape}")
    return a.reshape(n, -1)


def _ratio(num: float, den: float) -> float:
    return num / den if den > 0 else math.nan


def errors(u_pred: Any, u_exact: Any, grad_pred: Any = None, grad_exact: Any = None,
           weights: Any = None) -> dict[str, float]:
    """Error metrics of ``u_pred`` against ``u_exact`` (see the module docstring for formulas).

    - ``u_pred``, ``u_exact``: ``(N,)`` or ``(N, m)`` (tensors or arrays, same size).
    - ``grad_pred``, ``grad_exact``: gradients at the same points, ``(N, d)`` or ``(N, m, d)``
      (same size); both or neither.  Without them ``h1`` and ``rel_h1`` are NaN.
    - ``weights``: quadrature weights ``(N,)`` (non-negative, positive sum), or ``None`` for
      ``1/N`` each.

    Returns ``{"rel_l2", "rel_h1", "mse", "linf", "l2", "h1"}`` as Python floats, computed in
    float64.
    """
    u = _array(u_pred, "u_pred")
    u_star = _array(u_exact, "u_exact")
    if u_star.ndim == 0 or u_star.ndim > 2:
        raise ValueError(f"errors: u_exact must have shape (N,) or (N, m), got {u_star.shape}")
    n = u_star.shape[0]
    if n == 0:
        raise ValueError("errors: got no points (u_exact has 0 rows)")
    u, u_star = _rows(u, n, "u_pred"), _rows(u_star, n, "u_exact")
    if u.shape != u_star.shape:
        raise ValueError(f"errors: u_pred and u_exact must have the same shape, got "
                         f"{_array(u_pred, 'u_pred').shape} and {_array(u_exact, 'u_exact').shape}")
    if weights is None:
        w = np.full(n, 1.0 / n)
    else:
        w = _array(weights, "weights").reshape(-1)
        if w.shape[0] != n:
            raise ValueError(f"errors: weights must have shape ({n},) like the points, got "
                             f"{_array(weights, 'weights').shape}")
        if not np.all(np.isfinite(w)) or np.any(w < 0) or w.sum() <= 0:
            raise ValueError("errors: weights must be finite, non-negative and not all zero")
    if (grad_pred is None) != (grad_exact is None):
        raise ValueError("errors: pass both grad_pred and grad_exact (for the H1 errors) or neither")

    e = u - u_star
    e_sq = float(w @ np.sum(e**2, axis=1))
    u_sq = float(w @ np.sum(u_star**2, axis=1))
    out = {
        "l2": math.sqrt(e_sq),
        "rel_l2": _ratio(math.sqrt(e_sq), math.sqrt(u_sq)),
        "mse": float(np.mean(e**2)),
        "linf": float(np.max(np.abs(e))),
        "h1": math.nan,
        "rel_h1": math.nan,
    }
    if grad_pred is not None:
        g = _rows(_array(grad_pred, "grad_pred"), n, "grad_pred")
        g_star = _rows(_array(grad_exact, "grad_exact"), n, "grad_exact")
        if g.shape != g_star.shape:
            raise ValueError(f"errors: grad_pred and grad_exact must have the same size per point, "
                             f"got shapes {_array(grad_pred, 'grad_pred').shape} and "
                             f"{_array(grad_exact, 'grad_exact').shape}")
        ge_sq = float(w @ np.sum((g - g_star) ** 2, axis=1))
        gu_sq = float(w @ np.sum(g_star**2, axis=1))
        out["h1"] = math.sqrt(e_sq + ge_sq)
        out["rel_h1"] = _ratio(math.sqrt(e_sq + ge_sq), math.sqrt(u_sq + gu_sq))
    return {k: out[k] for k in METRICS}


def exact_arrays(problem: Any, x: Any, batch_size: int = 8192,
                 gradients: bool = True) -> tuple[np.ndarray, np.ndarray | None] | None:
    """``problem``'s exact solution ``(N, m)`` and gradient ``(N, m, d)`` (``None`` without
    ``gradients``) at ``x`` ``(N, d)`` as float64 arrays, in chunks; ``None`` if the problem has
    no exact solution.  The trainer computes them once per evaluation set and passes them to
    :func:`evaluate_errors` (``exact=``), since a reference solution may be costly."""
    if not problem.has_exact:
        return None
    x64 = torch.as_tensor(x).detach().to(device="cpu", dtype=torch.float64)
    ue, ge = [], []
    for start in range(0, x64.shape[0], batch_size):
        xe = x64[start:start + batch_size]
        ue.append(problem.exact_values(xe).detach().to("cpu", torch.float64).numpy())
        if gradients:
            ge.append(problem.exact_grad(xe).detach().to("cpu", torch.float64).numpy())
    return np.concatenate(ue, axis=0), np.concatenate(ge, axis=0) if gradients else None


def evaluate_errors(problem: Any, u_fn: Callable[[torch.Tensor], torch.Tensor], x: Any,
                    weights: Any = None, batch_size: int = 8192, dtype: torch.dtype | None = None,
                    device: Any = None, gradients: bool = True,
                    exact: tuple[np.ndarray, np.ndarray | None] | None = None,
                    ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """Evaluate the network on the evaluation set and compare it with ``problem.exact``.

    - ``u_fn(x)``: the network (output transform included) at points ``x`` ``(n, d)``, returning
      ``(n, m)``; it is called on chunks of ``batch_size`` points cast to ``dtype``/``device``
      (default: those of ``x``) that require grad, and the predicted gradient comes from
      :func:`kanpde.operators.grad`.  Each chunk is detached before the next, so memory stays
      bounded.
    - ``x``, ``weights``: the evaluation points ``(N, d)`` and quadrature weights ``(N,)``, e.g.
      from ``problem.domain.evaluation_points(n)``.
    - ``gradients=False`` skips all gradients (``h1``/``rel_h1`` are then NaN).
    - ``exact``: the exact solution and gradient at ``x`` from :func:`exact_arrays`, when already
      computed (else they are computed here).

    The exact solution and its gradient (``problem.exact_values``/``problem.exact_grad``) are
    evaluated in float64.

    For vector outputs (``m > 1``) the metrics measure the outputs ``problem.error_outputs``
    (all by default), and ``rel_l2_<name>`` is added for each output (names from
    ``problem.component_names``).

    Returns ``(metrics, arrays)``: the dict of :func:`errors`, and float64 numpy arrays
    ``{"x": (N, d), "u_pred": (N, m), "u_exact": (N, m)}`` for writing results.  If the problem
    has no exact solution, every metric is NaN and ``"u_exact"`` is absent from ``arrays``.
    """
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor) or x.dim() != 2 or x.shape[1] != problem.input_dim:
        shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
        raise ValueError(f"evaluate_errors: x must have shape (N, {problem.input_dim}) for problem "
                         f"{problem.name!r}, got {shape}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"evaluate_errors: batch_size must be a positive integer, got {batch_size!r}")
    dtype = x.dtype if dtype is None else dtype
    device = x.device if device is None else device
    n, m = x.shape[0], problem.output_dim
    time_axis = problem.time_axis
    x64 = x.detach().to(device="cpu", dtype=torch.float64)

    u_chunks, g_chunks = [], []
    for start in range(0, n, batch_size):
        xc = x[start:start + batch_size].detach().to(dtype=dtype, device=device)
        if gradients:
            xc.requires_grad_(True)
        if time_axis is not None:
            op.with_time_axis(xc, time_axis)
        with torch.set_grad_enabled(gradients):
            u = u_fn(xc)
            if not isinstance(u, torch.Tensor):
                raise TypeError(f"evaluate_errors: u_fn(x) must return a tensor, got {type(u).__name__}")
            if u.dim() == 1:
                u = u.unsqueeze(1)
            if tuple(u.shape) != (xc.shape[0], m):
                raise ValueError(f"evaluate_errors: u_fn(x) returned shape {tuple(u.shape)} for x of "
                                 f"shape {tuple(xc.shape)}; problem {problem.name!r} expects "
                                 f"({xc.shape[0]}, {m})")
            if gradients:
                g_chunks.append(op.grad(u, xc).detach().to("cpu", torch.float64).numpy())
        u_chunks.append(u.detach().to("cpu", torch.float64).numpy())
        del u

    arrays = {"x": x64.numpy(), "u_pred": np.concatenate(u_chunks, axis=0)}
    if exact is None:
        exact = exact_arrays(problem, x64, batch_size, gradients)
    if exact is None:
        return nan_metrics(), arrays
    arrays["u_exact"] = exact[0]
    grad_pred = np.concatenate(g_chunks, axis=0) if gradients else None
    grad_exact = exact[1] if gradients else None
    # the headline errors measure the outputs problem.error_outputs (all by default)
    cols = slice(None) if m == 1 or problem.error_outputs is None else list(problem.error_outputs)
    metrics = errors(arrays["u_pred"][:, cols], arrays["u_exact"][:, cols],
                     None if grad_pred is None else grad_pred[:, cols],
                     None if grad_exact is None else grad_exact[:, cols], weights)
    if m > 1:
        names = problem.component_names
        for c in range(m):  # each output on its own: rel_l2_<name>
            metrics[f"rel_l2_{names[c]}"] = errors(arrays["u_pred"][:, c], arrays["u_exact"][:, c],
                                                   weights=weights)["rel_l2"]
    return metrics, arrays
