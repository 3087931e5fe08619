"""Differential operators for PDE residuals.

Write residuals the way the mathematics reads::

    from kanpde import operators as op
    op.laplacian(u, x) - f(x)              # Poisson
    op.dt(u, x) - nu * op.laplacian(u, x)  # heat equation on a space-time domain

``u`` is the ``(N, m)`` network output evaluated at the points ``x`` ``(N, d)``.  Every operator
works for vector-valued outputs by component (``component=i``; ``None`` means "all components"
for vector outputs and is the natural choice for scalar ones).

Two ways to get the derivatives, chosen per tensor, never by user code:

* **Forward path.** :func:`evaluate` asks a model that supports it (``model.forward_jet``) for
  the value, gradient and Hessian diagonal in one pass and attaches that jet to the output
  tensor. Operators that only need those quantities (``grad``, first and pure second
  ``partial``, ``laplacian``, ``div``, ``dt``, ``normal_derivative``) read them off the jet.
* **Autograd path.** Anything else, or any tensor without a jet, is differentiated by
  ``torch.autograd.grad(..., create_graph=True)``.  Each derivative is computed once per
  ``(u, x)`` pair and cached *on the tensor* ``u`` (so the cache lives exactly as long as the
  step's graph; there is no global cache to clear).

Space-time inputs put time in the last column.  Sample points from a space-time domain carry
that fact (see :func:`with_time_axis`); for them :func:`laplacian` sums over the spatial axes
only and :func:`dt` differentiates along the time axis.
"""
from __future__ import annotations

from typing import Callable, Sequence

import torch

__all__ = [
    "DERIVATIVE_MODES",
    "evaluate",
    "evaluate_with_values",
    "uses_forward_path",
    "with_time_axis",
    "time_axis_of",
    "grad",
    "partial",
    "laplacian",
    "hessian",
    "div",
    "dt",
    "normal_derivative",
    "ForwardPathUnavailable",
    "second_derivative_axes",
]

#: accepted values of the ``derivatives`` switch
DERIVATIVE_MODES = ("auto", "autograd", "forward")

_JET = "_kanpde_jet"          # (x, Jet, strict) attached by evaluate() on the forward path
_CACHE = "_kanpde_cache"      # dict of autograd results, keyed by (id(x), what...)
_TIME = "_kanpde_time_axis"   # int attached to space-time point tensors
_RECORDERS: list[set] = []     # open second_derivative_axes() blocks


class second_derivative_axes:
    """Context manager recording the input axes along which second derivatives are taken
    (pure or mixed, any component) while it is open::

        with op.second_derivative_axes() as axes:
            problem.residual(x, u)
        # axes == {0} for Burgers (u_xx only), {0, 1} for a 2-D Laplacian

    For the trainer's choice of derivative path (``derivatives="auto"``); the operators behave
    the same inside and outside.
    """

    def __enter__(self) -> set:
        self.axes: set[int] = set()
        _RECORDERS.append(self.axes)
        return self.axes

    def __exit__(self, *exc) -> None:
        _RECORDERS.remove(self.axes)


def _record(*axes: int) -> None:
    for rec in _RECORDERS:
        rec.update(axes)


class ForwardPathUnavailable(RuntimeError):
    """Raised under ``derivatives="forward"`` when a residual asks for a derivative the
    forward path does not provide (for example a mixed second derivative)."""


# ----------------------------------------------------------------------------- evaluation

def evaluate(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    derivatives: str = "auto",
    order: int = 2,
    transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Evaluate ``model`` at ``x`` and return ``u`` ``(N, m)`` ready for the operators.

    ``derivatives``:

    - ``"auto"``: use the model's forward derivative propagation (``forward_jet``) when it has
      one and no ``transform`` is given; operators fall back to autograd for what the jet lacks.
    - ``"autograd"``: plain ``model(x)``; operators use nested reverse-mode autograd.
    - ``"forward"``: require the forward path; an operator that needs something else raises
      :class:`ForwardPathUnavailable`.

    ``order`` is the highest derivative order the forward path prepares (1 or 2; 0 disables it).
    ``transform(x, u)`` is a hard-constraint output transform applied to the network output.
    ``x`` must require grad if any derivative will be asked for.
    """
    if not uses_forward_path(model, derivatives, order, transform):
        u = model(x)
        return u if transform is None else transform(x, u)
    jet = model.forward_jet(x, order=order)
    u = jet.value
    setattr(u, _JET, (x, jet, derivatives == "forward"))
    return u


def uses_forward_path(model, derivatives: str = "auto", order: int = 2, transform=None) -> bool:
    """Whether :func:`evaluate` with these arguments propagates a jet (the forward path).

    Raises ``ValueError`` for an unknown ``derivatives`` mode and
    :class:`ForwardPathUnavailable` when ``"forward"`` is forced but cannot be honoured.
    """
    if derivatives not in DERIVATIVE_MODES:
        raise ValueError(f"derivatives must be one of {DERIVATIVE_MODES}, got {derivatives!r}")
    has_jet = bool(getattr(model, "supports_jet", False)) and hasattr(model, "forward_jet")
    use_jet = order > 0 and derivatives != "autograd" and has_jet and transform is None
    if derivatives == "forward" and order > 0 and not use_jet:
        why = ("an output transform is set" if transform is not None
               else f"{type(model).__name__} has no forward_jet")
        raise ForwardPathUnavailable(
            f"derivatives='forward' was requested but {why}; use derivatives='auto' or 'autograd'"
        )
    return use_jet


def evaluate_with_values(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    others: Sequence[torch.Tensor],
    derivatives: str = "auto",
    order: int = 2,
    transform: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None,
) -> tuple[torch.Tensor, list[torch.Tensor]]:
    """:func:`evaluate` at ``x`` plus the plain network values at each point set in ``others``.

    On the forward path all points go through one jet pass (the values at ``others`` are its
    value channel, exact like ``model(x_i)``), which saves a network call per set; otherwise each
    set is a separate ``model(x_i)`` (``transform`` applied).  Returns ``(u, values)``; ``u``
    works with the operators exactly as :func:`evaluate`'s result does.
    """
    if not others or not uses_forward_path(model, derivatives, order, transform):
        u = evaluate(model, x, derivatives=derivatives, order=order, transform=transform)
        return u, [evaluate(model, xi, derivatives=derivatives, order=0, transform=transform) for xi in others]
    n = x.shape[0]
    jet = model.forward_jet(torch.cat([x, *(xi.detach() for xi in others)]), order=order)
    own = type(jet)(jet.value[:n], None if jet.grad is None else jet.grad[:n],
              None if jet.hess_diag is None else jet.hess_diag[:n])
    u = own.value
    setattr(u, _JET, (x, own, derivatives == "forward"))
    values, start = [], n
    for xi in others:
        values.append(jet.value[start:start + xi.shape[0]])
        start += xi.shape[0]
    return u, values


def with_time_axis(x: torch.Tensor, axis: int) -> torch.Tensor:
    """Mark ``x`` as space-time points whose column ``axis`` is time; returns ``x`` itself.

    Operators then treat that column as time (:func:`laplacian` skips it, :func:`dt` uses it).
    """
    axis = int(axis)
    if not -x.shape[-1] <= axis < x.shape[-1]:
        raise ValueError(f"time axis {axis} is out of range for points with {x.shape[-1]} columns")
    setattr(x, _TIME, axis % x.shape[-1])
    return x


def time_axis_of(x: torch.Tensor) -> int | None:
    """The time column of ``x`` set by :func:`with_time_axis`, or ``None``."""
    return getattr(x, _TIME, None)


# ----------------------------------------------------------------------------- helpers

def _check(u: torch.Tensor, x: torch.Tensor, op: str) -> None:
    if not isinstance(u, torch.Tensor) or not isinstance(x, torch.Tensor):
        raise TypeError(f"{op}(u, x) expects tensors, got {type(u).__name__} and {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{op}: x must have shape (N, d), got {tuple(x.shape)}")
    if u.dim() == 1:
        raise ValueError(f"{op}: u must have shape (N, m); got a 1-D tensor of shape {tuple(u.shape)} "
                         f"(use u[:, None] or keep the column dimension when slicing: u[:, 0:1])")
    if u.dim() != 2 or u.shape[0] != x.shape[0]:
        raise ValueError(f"{op}: u must have shape (N, m) with N = {x.shape[0]} rows like x, "
                         f"got {tuple(u.shape)}")
    if not x.requires_grad and _jet(u, x) is None:
        raise ValueError(f"{op}: x does not require grad, so u cannot be differentiated with respect "
                         f"to it; call x.requires_grad_(True) before evaluating the model")


def _components(u: torch.Tensor, component: int | None) -> list[int]:
    m = u.shape[1]
    if component is None:
        return list(range(m))
    if not -m <= component < m:
        raise ValueError(f"component {component} is out of range for an output with {m} components")
    return [component % m]


def _jet(u: torch.Tensor, x: torch.Tensor):
    tagged = getattr(u, _JET, None)
    if tagged is None or tagged[0] is not x:
        return None
    return tagged[1]


def _strict(u: torch.Tensor) -> bool:
    tagged = getattr(u, _JET, None)
    return bool(tagged and tagged[2])


def _no_forward(u: torch.Tensor, what: str) -> None:
    if _strict(u):
        raise ForwardPathUnavailable(
            f"{what} is not provided by the forward derivative path (it gives u, grad u and the "
            f"Hessian diagonal); use derivatives='auto' or 'autograd' for this residual"
        )


def _cache(u: torch.Tensor) -> dict:
    cache = getattr(u, _CACHE, None)
    if cache is None:
        cache = {}
        setattr(u, _CACHE, cache)
    return cache


def _grad_rows(u: torch.Tensor, x: torch.Tensor, c: int) -> torch.Tensor:
    """d u_c / d x, shape (N, d), from the jet or autograd (cached)."""
    jet = _jet(u, x)
    if jet is not None and jet.grad is not None:
        return jet.grad[:, c, :]
    _no_forward(u, "the gradient")
    key = (id(x), "grad", c)
    cache = _cache(u)
    if key not in cache:
        (g,) = torch.autograd.grad(u[:, c].sum(), x, create_graph=True, allow_unused=True)
        cache[key] = torch.zeros_like(x) if g is None else g
    return cache[key]


def _hessian_row(u: torch.Tensor, x: torch.Tensor, c: int, i: int) -> torch.Tensor:
    """d/dx (d u_c / d x_i), shape (N, d), by autograd (cached)."""
    key = (id(x), "hess", c, i)
    cache = _cache(u)
    if key not in cache:
        g = _grad_rows(u, x, c)[:, i]
        if g.requires_grad:
            (h,) = torch.autograd.grad(g.sum(), x, create_graph=True, allow_unused=True)
        else:
            h = None
        cache[key] = torch.zeros_like(x) if h is None else h
    return cache[key]


def _second(u: torch.Tensor, x: torch.Tensor, c: int, i: int, j: int) -> torch.Tensor:
    """d^2 u_c / dx_i dx_j, shape (N,)."""
    _record(i, j)
    jet = _jet(u, x)
    if i == j and jet is not None and jet.hess_diag is not None:
        return jet.hess_diag[:, c, i]
    _no_forward(u, "a mixed second derivative" if i != j else "the second derivative")
    return _hessian_row(u, x, c, i)[:, j]


def _axis(x: torch.Tensor, i: int, what: str) -> int:
    d = x.shape[1]
    if not -d <= i < d:
        raise ValueError(f"{what}: axis {i} is out of range for points with {d} columns")
    return i % d


def _stack(columns: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(columns, dim=1)


# ----------------------------------------------------------------------------- operators

def grad(u: torch.Tensor, x: torch.Tensor, component: int | None = None) -> torch.Tensor:
    """Gradient of ``u`` with respect to all input columns (time included).

    Returns ``(N, d)`` for a scalar output or a chosen ``component``, else ``(N, m, d)``.
    """
    _check(u, x, "grad")
    comps = _components(u, component)
    rows = [_grad_rows(u, x, c) for c in comps]
    if component is not None or u.shape[1] == 1:
        return rows[0]
    return torch.stack(rows, dim=1)


def partial(u: torch.Tensor, x: torch.Tensor, *axes: int, component: int | None = None) -> torch.Tensor:
    """Partial derivative of ``u`` along the input columns ``axes``.

    ``partial(u, x, 0)`` is du/dx0, ``partial(u, x, 0, 0)`` is d2u/dx0^2 and
    ``partial(u, x, 0, 1)`` the mixed derivative; any order is allowed.  Returns ``(N, 1)``
    for a scalar output or a chosen component, else ``(N, m)``.
    """
    _check(u, x, "partial")
    if not axes:
        raise ValueError("partial(u, x, *axes) needs at least one axis, e.g. partial(u, x, 0)")
    axes = tuple(_axis(x, a, "partial") for a in axes)
    cols = []
    for c in _components(u, component):
        if len(axes) == 1:
            cols.append(_grad_rows(u, x, c)[:, axes[0]])
        elif len(axes) == 2:
            cols.append(_second(u, x, c, axes[0], axes[1]))
        else:
            _no_forward(u, "a derivative of order > 2")
            d = _second(u, x, c, axes[0], axes[1])
            for a in axes[2:]:
                if d.requires_grad:
                    (g,) = torch.autograd.grad(d.sum(), x, create_graph=True, allow_unused=True)
                    d = torch.zeros_like(x[:, 0]) if g is None else g[:, a]
                else:
                    d = torch.zeros_like(d)
            cols.append(d)
    return _stack(cols)


def _spatial_axes(x: torch.Tensor, time_axis: int | None) -> list[int]:
    t = time_axis_of(x) if time_axis is None else _axis(x, time_axis, "laplacian")
    return [i for i in range(x.shape[1]) if i != t]


def laplacian(u: torch.Tensor, x: torch.Tensor, component: int | None = None,
              time_axis: int | None = None) -> torch.Tensor:
    """Spatial Laplacian ``sum_i d2u/dx_i^2``, shape ``(N, 1)`` (``(N, m)`` for all components
    of a vector output).

    For space-time points (see :func:`with_time_axis`, or pass ``time_axis``) the time column is
    excluded.
    """
    _check(u, x, "laplacian")
    spatial = _spatial_axes(x, time_axis)
    _record(*spatial)
    jet = _jet(u, x)
    cols = []
    for c in _components(u, component):
        if jet is not None and jet.hess_diag is not None:
            cols.append(jet.hess_diag[:, c, spatial].sum(dim=1))
        else:
            cols.append(sum(_second(u, x, c, i, i) for i in spatial))
    return _stack(cols)


def hessian(u: torch.Tensor, x: torch.Tensor, component: int | None = None) -> torch.Tensor:
    """Full Hessian ``d2u/dx_i dx_j`` of a scalar output (or a chosen component), ``(N, d, d)``.

    Always by autograd (mixed derivatives are not on the forward path).
    """
    _check(u, x, "hessian")
    comps = _components(u, component)
    if len(comps) != 1:
        raise ValueError(f"hessian: u has {u.shape[1]} components; pick one with component=i")
    _record(*range(x.shape[1]))
    _no_forward(u, "the full Hessian")
    c = comps[0]
    return torch.stack([_hessian_row(u, x, c, i) for i in range(x.shape[1])], dim=1)


def div(u: torch.Tensor, x: torch.Tensor, time_axis: int | None = None) -> torch.Tensor:
    """Divergence ``sum_i du_i/dx_i`` of a vector field whose components match the spatial
    axes of ``x`` in order, shape ``(N, 1)``."""
    _check(u, x, "div")
    spatial = _spatial_axes(x, time_axis)
    if u.shape[1] != len(spatial):
        raise ValueError(f"div: u has {u.shape[1]} components but x has {len(spatial)} spatial "
                         f"columns; the divergence needs one component per spatial axis")
    return sum(_grad_rows(u, x, k)[:, i] for k, i in enumerate(spatial)).unsqueeze(1)


def dt(u: torch.Tensor, x: torch.Tensor, component: int | None = None, order: int = 1,
       time_axis: int | None = None) -> torch.Tensor:
    """Time derivative ``d^order u / dt^order`` (order 1 or 2), shape ``(N, 1)`` (``(N, m)``
    for all components of a vector output).

    The time column is the one marked by :func:`with_time_axis`, else ``time_axis``, else the
    last column.
    """
    if order not in (1, 2):
        raise ValueError(f"dt: order must be 1 or 2, got {order!r}")
    if time_axis is None:
        time_axis = time_axis_of(x)
    t = x.shape[1] - 1 if time_axis is None else time_axis
    return partial(u, x, *([t] * order), component=component)


def normal_derivative(u: torch.Tensor, x: torch.Tensor, normals: torch.Tensor,
                      component: int | None = None) -> torch.Tensor:
    """Normal derivative ``grad u . n`` at boundary points, shape ``(N, 1)`` (``(N, m)`` for
    all components of a vector output).  ``normals`` has the shape of ``x``."""
    _check(u, x, "normal_derivative")
    if normals.shape != x.shape:
        raise ValueError(f"normal_derivative: normals must have the shape of x {tuple(x.shape)}, "
                         f"got {tuple(normals.shape)}")
    normals = normals.to(dtype=x.dtype, device=x.device)
    return _stack([(_grad_rows(u, x, c) * normals).sum(dim=1) for c in _components(u, component)])
