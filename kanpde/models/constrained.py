"""A network whose output satisfies boundary data by construction:
``u(x) = lift(x) + distance(x) * inner(x)`` (Lagaris et al. 1998; Sukumar & Srivastava 2022).

``lift`` and ``distance`` are fixed functions of the points (built by
:func:`kanpde.constraints.hard_constraint` from a problem's hard conditions, or written by
hand); ``distance`` vanishes where the data ``lift`` must hold, so ``u = lift`` there whatever the
inner network does.

Forward derivatives.  ``forward_jet`` keeps the forward path of the inner model and adds the
jets (value, gradient, Hessian diagonal) of ``lift`` and ``distance`` by the product rule::

    grad u      = grad g + N grad d + d grad N
    hess_diag u = hess_diag g + N hess_diag d + 2 grad d * grad N + d hess_diag N

(per output component, with ``g = lift``, ``d = distance``, ``N = inner``).  The jets of ``g``
and ``d`` do not depend on the parameters: they are computed by autograd on the points and
cached per point set, so training steps on the same collocation points compute them once.

This module imports nothing of kanpde outside :mod:`kanpde.models`.
"""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .base import GridAdaptive, Jet, Model, check_input

__all__ = ["ConstrainedOutput"]

# Point sets whose lift/distance jets are kept (collocation points, the fused pass with the
# condition points, evaluation points, ...).
_CACHE_SIZE = 4


def _name(fn) -> str:
    return getattr(fn, "__qualname__", None) or type(fn).__name__


class _Cached:
    """Lift and distance jets at one point set, and what identifies that point set."""

    def __init__(self, x: torch.Tensor, order: int, jets: tuple):
        self.alias = x.detach()  # keeps the storage alive, so its address identifies it
        self.copy = x.detach().clone()  # the values, against in-place changes and look-alikes
        self.ptr, self.shape, self.stride = x.data_ptr(), x.shape, x.stride()
        self.dtype, self.device, self.version = x.dtype, x.device, x._version
        self.order, self.jets = order, jets

    def matches(self, x: torch.Tensor, order: int) -> bool:
        if self.order < order or x.shape != self.shape or x.dtype != self.dtype \
                or x.device != self.device:
            return False
        if x.data_ptr() == self.ptr and x.stride() == self.stride and x._version == self.version:
            return True
        return torch.equal(x.detach(), self.copy)


class ConstrainedOutput(Model):
    """``u = lift(x) + distance(x) * inner(x)``.

    Args:
        inner: the network ``N``, a kanpde model (``widths``, ``forward``, and ``forward_jet``
            for the forward derivative path).
        lift: ``g(x)``: points ``(N, d)`` -> ``(N, m)`` (``m`` = the inner's outputs).
        distance: ``d(x)``: points ``(N, d)`` -> ``(N, m)``, ``(N, 1)`` or ``(N,)``.

    ``lift`` and ``distance`` must be pointwise (row ``n`` of the output depends on row ``n``
    of ``x`` only), written in torch operations (twice differentiable in ``x``) and free of
    trainable parameters: their jets are cached per point set (keyed by the tensor's address,
    shape, stride, version, dtype and device, else by its values).  Call :meth:`clear_cache`
    after changing what they compute.  For points that require grad the jets are computed on
    ``x`` itself, uncached, so the returned jet stays differentiable in ``x``.

    The model passes through what kanpde asks of the inner one: ``widths``, ``n_params``,
    ``activation_curves`` / ``regularization_loss`` / ``prepare_kernels`` when the inner has them
    (``hasattr`` tells), and when the inner is :class:`~kanpde.models.GridAdaptive`
    (a B-spline KAN) the constructor returns a subclass with ``grid_size``, ``update_grid`` and
    ``refine``, so ``isinstance(model, GridAdaptive)`` stays truthful.
    """

    #: its jet is the inner model's plus a product rule: the derivative-path choice is the inner's
    jet_cost_is_inner = True

    _DELEGATED = frozenset({"activation_curves", "regularization_loss", "prepare_kernels"})

    def __new__(cls, inner=None, *args, **kwargs):
        if cls is ConstrainedOutput and isinstance(inner, GridAdaptive):
            cls = GridConstrainedOutput
        return super().__new__(cls)

    def __init__(self, inner: nn.Module, lift: Callable, distance: Callable):
        if not isinstance(inner, nn.Module) or getattr(inner, "widths", None) is None:
            raise TypeError(f"ConstrainedOutput: inner must be a kanpde model (an nn.Module with "
                            f"widths), got {type(inner).__name__}")
        for arg, fn in (("lift", lift), ("distance", distance)):
            if not callable(fn):
                raise TypeError(f"ConstrainedOutput: {arg} must be a callable of the points "
                                f"x (N, d), got {fn!r}")
            if isinstance(fn, nn.Module) and any(p.requires_grad for p in fn.parameters()):
                raise ValueError(f"ConstrainedOutput: {arg} has trainable parameters; its jets are "
                                 f"cached as fixed functions of the points, so it must not have any")
        super().__init__(inner.widths)
        self.inner = inner
        self.lift = lift
        self.distance = distance
        self.supports_jet = bool(getattr(inner, "supports_jet", False)) \
            and callable(getattr(inner, "forward_jet", None))
        self._cache: list[_Cached] = []

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("inner")
            if name in ConstrainedOutput._DELEGATED and inner is not None and hasattr(inner, name):
                return getattr(inner, name)
            raise

    def extra_repr(self) -> str:
        return f"lift={_name(self.lift)}, distance={_name(self.distance)}"

    def clear_cache(self) -> None:
        """Forget the cached lift/distance jets."""
        self._cache.clear()

    # ------------------------------------------------------------------ evaluation
    def _fixed(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(lift (N, m), distance (N, m) or (N, 1))`` at ``x``, shapes checked."""
        n, m = x.shape[0], self.out_features
        g, d = self.lift(x), self.distance(x)
        for arg, v, allowed in (("lift", g, ((n, m),) + (((n,),) if m == 1 else ())),
                                ("distance", d, ((n,), (n, 1), (n, m)))):
            if not isinstance(v, torch.Tensor) or tuple(v.shape) not in allowed:
                got = tuple(v.shape) if isinstance(v, torch.Tensor) else type(v).__name__
                raise ValueError(f"ConstrainedOutput: {arg}(x) must return shape "
                                 f"{' or '.join(map(str, allowed))} for x of shape "
                                 f"{tuple(x.shape)}, got {got}")
        g = g.reshape(n, m).to(x.dtype)
        d = d.reshape(n, -1).to(x.dtype)
        return g, d

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``u = lift(x) + distance(x) * inner(x)``: ``(N, in_features)`` -> ``(N, out_features)``;
        differentiable in ``x`` and the parameters (the autograd path)."""
        self._check(x)
        g, d = self._fixed(x)
        return g + d * self.inner(x)

    def forward_jet(self, x: torch.Tensor, order: int = 2) -> Jet:
        """Value ``(N, m)``, gradient and Hessian diagonal ``(N, m, d)`` of ``u`` in one forward
        pass of the inner model (see the module docstring), equal to nested autograd of
        :meth:`forward` to round-off and differentiable in the parameters."""
        self._check(x)
        if order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
        if not self.supports_jet:
            raise TypeError(f"ConstrainedOutput: the inner {type(self.inner).__name__} has no "
                            f"forward_jet; evaluate with derivatives='autograd'")
        jet = self.inner.forward_jet(x, order=order)
        (g, dg, hg), (d, dd, hd) = self._fixed_jets(x, order)
        n_val = jet.value
        value = g + d * n_val
        if order == 0:
            return Jet(value)
        grad = dg + n_val.unsqueeze(-1) * dd + d.unsqueeze(-1) * jet.grad
        if order == 1:
            return Jet(value, grad)
        hess = hg + n_val.unsqueeze(-1) * hd + 2 * dd * jet.grad + d.unsqueeze(-1) * jet.hess_diag
        return Jet(value, grad, hess)

    def propagate_jet(self, jet: Jet) -> Jet:
        """Not available: ``lift`` and ``distance`` are functions of the points themselves, so
        the model cannot sit behind input features; put the features inside (``inner``)."""
        raise TypeError("ConstrainedOutput cannot propagate a jet of transformed inputs (its lift "
                        "and distance are functions of the points); wrap the feature model "
                        "inside it instead: ConstrainedOutput(with_features(...), lift, distance)")

    # ------------------------------------------------------------------ fixed jets
    def _fixed_jets(self, x: torch.Tensor, order: int):
        """``((g, grad g, hess_diag g), (d, grad d, hess_diag d))`` at ``x`` (derivatives
        ``(N, k, dim)`` or ``None`` below ``order``)."""
        if x.requires_grad:
            return self._jets(x, order, graph=True)
        for i, entry in enumerate(self._cache):
            if entry.matches(x, order):
                self._cache.insert(0, self._cache.pop(i))
                return tuple(_truncate(j, order) for j in entry.jets)
        jets = self._jets(x, order, graph=False)
        self._cache.insert(0, _Cached(x, order, jets))
        del self._cache[_CACHE_SIZE:]
        return jets

    def _jets(self, x: torch.Tensor, order: int, graph: bool):
        """Jets of lift and distance by autograd on ``x`` (``graph``: kept differentiable in
        ``x``; otherwise on a detached copy, returned detached)."""
        if order == 0:
            with torch.set_grad_enabled(graph and torch.is_grad_enabled()):
                g, d = self._fixed(x)
            return (g, None, None), (d, None, None)
        with torch.enable_grad():
            xs = x if graph else x.detach().requires_grad_(True)
            g, d = self._fixed(xs)
            k = g.shape[1]
            values = torch.cat([g, d], dim=1)
            grads, hessians = [], []
            for c in range(values.shape[1]):
                grad_c = _derivative(values[:, c], xs, create_graph=graph or order == 2)
                grads.append(grad_c)
                if order == 2:
                    hessians.append(torch.stack(
                        [_derivative(grad_c[:, j], xs, create_graph=graph)[:, j]
                         for j in range(xs.shape[1])], dim=1))
        grad = torch.stack(grads, dim=1)
        hess = torch.stack(hessians, dim=1) if order == 2 else None
        if not graph:
            values, grad = values.detach(), grad.detach()
            hess = None if hess is None else hess.detach()
        split = (values[:, :k], values[:, k:]), (grad[:, :k], grad[:, k:]), \
            (None, None) if hess is None else (hess[:, :k], hess[:, k:])
        return tuple((split[0][i], split[1][i], split[2][i]) for i in range(2))


def _derivative(y: torch.Tensor, x: torch.Tensor, create_graph: bool) -> torch.Tensor:
    """``d y[n] / d x[n]`` ``(N, dim)`` for a pointwise ``y`` ``(N,)`` (zeros if ``y`` does
    not depend on ``x``)."""
    if not y.requires_grad:
        return torch.zeros_like(x)
    (g,) = torch.autograd.grad(y.sum(), x, create_graph=create_graph, retain_graph=True,
                               allow_unused=True)
    return torch.zeros_like(x) if g is None else g


def _truncate(jet: tuple, order: int) -> tuple:
    value, grad, hess = jet
    return value, grad if order >= 1 else None, hess if order >= 2 else None


class GridConstrainedOutput(ConstrainedOutput):
    """:class:`ConstrainedOutput` of a :class:`~kanpde.models.GridAdaptive` inner model (made by
    ``ConstrainedOutput(...)`` itself): ``grid_size``, ``update_grid`` and ``refine`` act on the
    inner model (the lift and distance have no grid)."""

    @property
    def grid_size(self) -> int:
        return self.inner.grid_size

    def update_grid(self, x: torch.Tensor) -> None:
        """Move the inner model's knots to the samples ``x`` ``(N, in_features)``."""
        check_input(x, self.in_features, type(self).__name__)
        self.inner.update_grid(x)

    def refine(self, new_grid_size: int) -> "GridConstrainedOutput":
        """Refine the inner model's grid (it may replace parameter objects); returns ``self``."""
        self.inner.refine(new_grid_size)
        return self
