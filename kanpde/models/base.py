"""Pieces shared by every model: the :class:`Jet` container, argument checks, the
:class:`Model` base class and the protocols the rest of kanpde recognises models by
(:class:`GridAdaptive`, :class:`UsesCompiledKernels`).

A *jet* carries a batch of values together with their first derivatives and the diagonal
of their Hessian with respect to the network inputs.  Every layer maps a jet to a jet in
closed form ("forward Laplacian"), so ``u``, ``grad u`` and ``laplacian u`` come out of one
forward pass and a single reverse pass reaches the parameters.

This module imports nothing else from kanpde: a model is usable on its own.
"""
from __future__ import annotations

import math
import numbers
import operator
from dataclasses import dataclass
from typing import Protocol, Sequence, runtime_checkable

import torch
from torch import nn


@dataclass
class Jet:
    """Values and input derivatives of a batch of vector-valued functions.

    Shapes, for a batch of ``N`` points in ``d`` input dimensions and ``m`` outputs:

    - ``value``: ``(N, m)``
    - ``grad``: ``(N, m, d)`` with ``grad[n, k, j] = d value[n, k] / d x[n, j]``, or ``None``
    - ``hess_diag``: ``(N, m, d)`` with ``hess_diag[n, k, j] = d^2 value[n, k] / d x[n, j]^2``,
      or ``None``

    ``order`` is 0 (value only), 1 (value and gradient) or 2 (all three).
    """

    value: torch.Tensor
    grad: torch.Tensor | None = None
    hess_diag: torch.Tensor | None = None

    @property
    def order(self) -> int:
        if self.grad is None:
            return 0
        return 1 if self.hess_diag is None else 2

    @classmethod
    def seed(cls, x: torch.Tensor, order: int = 2) -> "Jet":
        """The jet of the identity map at ``x`` (shape ``(N, d)``): ``grad`` is the identity,
        ``hess_diag`` is zero."""
        if order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
        n, d = x.shape
        grad = hess = None
        if order >= 1:
            grad = torch.eye(d, dtype=x.dtype, device=x.device).expand(n, d, d)
        if order >= 2:
            hess = torch.zeros((n, d, d), dtype=x.dtype, device=x.device)
        return cls(x, grad, hess)


def check_widths(widths: Sequence[int], name: str = "widths") -> list[int]:
    """Validate a layer-width list such as ``[2, 10, 1]`` and return a fresh ``list`` copy.

    Raises ``TypeError`` for a non-sequence or non-integer entry and ``ValueError`` for fewer
    than two entries or a non-positive entry; the message names the argument, the value and
    what is allowed.  The caller's object is never mutated.
    """
    if isinstance(widths, (str, bytes)) or not hasattr(widths, "__iter__"):
        raise TypeError(f"{name} must be a sequence of positive integers like [2, 10, 1], got {widths!r}")
    out = []
    for w in list(widths):
        if isinstance(w, bool):
            raise TypeError(f"{name} must contain integers, got {w!r} in {list(widths)!r}")
        try:
            out.append(operator.index(w))
        except TypeError:
            raise TypeError(f"{name} must contain integers, got {w!r} in {list(widths)!r}") from None
    if len(out) < 2:
        raise ValueError(f"{name} needs at least 2 entries (input and output width), got {out!r}")
    if any(w < 1 for w in out):
        raise ValueError(f"{name} entries must be positive integers, got {out!r}")
    return out


def check_int(value, name: str, minimum: int) -> int:
    """Return ``value`` as an ``int`` if it is an integer ``>= minimum``; otherwise raise a
    ``TypeError``/``ValueError`` naming ``name``, the value and what is allowed."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}")
    try:
        value = operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


def check_real(value, name: str, lo: float | None = None, hi: float | None = None) -> float:
    """Return ``value`` as a ``float`` if it is a finite real number in ``[lo, hi]`` (either bound
    optional); otherwise raise a ``TypeError``/``ValueError`` naming ``name``, the value and what
    is allowed."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        allowed = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}" if lo is not None else "finite"
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    return value


def check_dtype(dtype) -> None:
    """Raise ``TypeError`` unless ``dtype`` is ``None`` or a floating-point ``torch.dtype``."""
    if dtype is not None and (not isinstance(dtype, torch.dtype) or not dtype.is_floating_point):
        raise TypeError(f"dtype must be None or a floating-point torch.dtype (e.g. torch.float64), "
                        f"got {dtype!r}")


def check_input(x: torch.Tensor, in_features: int, owner: str) -> None:
    """Raise a clear error unless ``x`` is a floating-point tensor of shape ``(N, in_features)``."""
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{owner} expects a torch.Tensor of shape (N, {in_features}), got {type(x).__name__}")
    if not torch.is_floating_point(x):
        raise TypeError(f"{owner} expects a floating-point input (float32 or float64), got dtype {x.dtype}")
    if x.dim() != 2 or x.shape[1] != in_features:
        raise ValueError(
            f"{owner} expects input of shape (N, {in_features}), got {tuple(x.shape)}"
        )


class Model(nn.Module):
    """Base class of kanpde networks.

    Subclasses build ``self.layers`` (an ``nn.ModuleList``) whose members implement
    ``forward(h)`` and ``forward_jet(jet) -> Jet``; this class chains them.  A first layer may
    also offer ``forward_jet_input(x, order) -> Jet``, a shortcut for the identity seed.
    """

    #: models derived from this class can propagate derivatives forward (see :meth:`forward_jet`)
    supports_jet: bool = True
    #: under ``derivatives="auto"``, prefer autograd when the residual's second derivatives run
    #: along only some input axes: the jet pays for every axis (see
    #: :func:`prefers_autograd_for_partial_hessians`)
    autograd_for_partial_hessians: bool = False

    def __init__(self, widths: Sequence[int]):
        super().__init__()
        self.widths = check_widths(widths)

    @property
    def in_features(self) -> int:
        return self.widths[0]

    @property
    def out_features(self) -> int:
        return self.widths[-1]

    @property
    def n_params(self) -> int:
        """Number of trainable scalar parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def _check(self, x: torch.Tensor) -> None:
        check_input(x, self.in_features, type(self).__name__)
        p = next(self.parameters(), None)
        if p is not None and x.dtype != p.dtype:
            raise TypeError(
                f"{type(self).__name__} has {p.dtype} parameters but got a {x.dtype} input; "
                f"convert one of them (e.g. model.to(torch.float64))"
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Evaluate the network: ``x`` ``(N, in_features)`` -> ``(N, out_features)`` (contiguous;
        layers may pass transposed views between them)."""
        self._check(x)
        for layer in self.layers:
            x = layer(x)
        return x.contiguous()

    def forward_jet(self, x: torch.Tensor, order: int = 2) -> Jet:
        """Evaluate the network and its input derivatives in one forward pass.

        Returns a :class:`Jet` with ``value`` ``(N, out)``, ``grad`` ``(N, out, in)`` and
        ``hess_diag`` ``(N, out, in)`` (the latter two depending on ``order``), equal to nested
        autograd to round-off and differentiable with respect to the parameters.
        """
        self._check(x)
        if order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
        first, rest = self.layers[0], self.layers[1:]
        if hasattr(first, "forward_jet_input"):
            # the seed's gradient is the identity and its Hessian zero: layers may exploit that
            jet = first.forward_jet_input(x, order)
        else:
            jet = first.forward_jet(Jet.seed(x, order))
        for layer in rest:
            jet = layer.forward_jet(jet)
        return jet

    def propagate_jet(self, jet: Jet) -> Jet:
        """Push a jet of the network input through every layer (the chain rule, layer by layer).

        Where :meth:`forward_jet` starts from the identity jet at ``x``, ``jet`` may hold the
        derivatives of the input with respect to any ``d`` variables, e.g. input features and
        their derivatives with respect to the coordinates (:mod:`kanpde.models.features`).

        Args:
            jet: ``value`` ``(N, in_features)``; ``grad`` and ``hess_diag`` ``(N, in_features, d)``,
                or ``None`` for a lower order (``hess_diag`` only together with ``grad``).
        Returns:
            Jet with ``value`` ``(N, out_features)`` and ``grad``/``hess_diag``
            ``(N, out_features, d)``, to the order of ``jet``; differentiable with respect to
            the parameters and to the tensors of ``jet``.
        """
        owner = f"{type(self).__name__}.propagate_jet"
        if not isinstance(jet, Jet):
            raise TypeError(f"{owner} expects a Jet, got {type(jet).__name__}")
        self._check(jet.value)
        if jet.grad is None and jet.hess_diag is not None:
            raise ValueError(f"{owner}: the jet has hess_diag but no grad; a second-order jet needs both")
        n, i = jet.value.shape
        for name, t in (("grad", jet.grad), ("hess_diag", jet.hess_diag)):
            if t is None:
                continue
            if not isinstance(t, torch.Tensor) or t.dim() != 3 or tuple(t.shape[:2]) != (n, i):
                shape = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
                raise ValueError(f"{owner} expects jet.{name} of shape (N, {i}, d) with N = {n}, got {shape}")
            if t.dtype != jet.value.dtype or t.device != jet.value.device:
                raise TypeError(f"{owner}: jet.{name} is {t.dtype} on {t.device} but jet.value is "
                                f"{jet.value.dtype} on {jet.value.device}; they must match")
        if jet.hess_diag is not None and jet.hess_diag.shape != jet.grad.shape:
            raise ValueError(f"{owner} expects jet.hess_diag of the shape of jet.grad, "
                             f"{tuple(jet.grad.shape)}, got {tuple(jet.hess_diag.shape)}")
        for layer in self.layers:
            jet = layer.forward_jet(jet)
        return jet


@runtime_checkable
class GridAdaptive(Protocol):
    """A model whose basis lives on a grid that training may move and refine (the B-spline
    KAN): ``grid_size`` intervals, ``update_grid(x)`` moves the knots to samples ``x`` of the
    input keeping the function, ``refine(new_grid_size)`` extends the grid keeping the function
    (it may replace parameter objects: make a new optimizer afterwards)."""

    grid_size: int

    def update_grid(self, x: torch.Tensor) -> None: ...

    def refine(self, new_grid_size: int) -> object: ...


@runtime_checkable
class UsesCompiledKernels(Protocol):
    """A model (or layer) with compiled kernels to build or load before it runs on
    ``device`` (see :func:`prepare_kernels`)."""

    def prepare_kernels(self, device: torch.device | str) -> None: ...


def prepare_kernels(model: nn.Module, device: torch.device | str) -> None:
    """Let every part of ``model`` that uses compiled kernels build or load them now, before a
    timed run on ``device`` (a first build takes about a minute); a no-op for other models."""
    for module in model.modules():
        if isinstance(module, UsesCompiledKernels):
            module.prepare_kernels(device)


def prefers_autograd_for_partial_hessians(model) -> bool:
    """Whether ``model`` (or the model inside a hard-constraint wrapper, whose jet costs what its
    inner model's does) computes a residual whose second derivatives miss some input axes faster
    by autograd.

    An MLP's forward jet carries a gradient and a Hessian-diagonal channel per input axis
    through every dense layer, used or not; autograd computes only the second derivatives the
    residual asks for (viscous Burgers: u_xx, none along t), which on 2 cores was the faster
    path (``benchmarks/bench_derivative_paths.py``).  Behind input features the jet is not
    slower (their many feature channels make autograd costly too), and a KAN's compiled jets
    are faster than autograd either way.
    """
    for m in wrapped_models(model):
        if getattr(type(m), "autograd_for_partial_hessians", False):
            return True
        if not getattr(type(m), "jet_cost_is_inner", False):
            return False
    return False


def wrapped_models(model):
    """``model``, then the network it wraps (its ``inner`` module: hard-constraint and input
    feature wrappers), and so on down the stack; each model once."""
    seen = set()
    while model is not None and id(model) not in seen:
        seen.add(id(model))
        yield model
        model = model.__dict__.get("_modules", {}).get("inner")
