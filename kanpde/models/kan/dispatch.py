"""The one place that chooses how a KAN layer computes: plain torch or compiled CPU kernels,
edge-by-edge or row-product layout, and how the row products and the sums kernels run.

Every node of :mod:`~kanpde.models.kan.nested`, :mod:`~kanpde.models.kan.jets`,
:mod:`~kanpde.models.kan.planar` and :mod:`~kanpde.models.kan.rows` asks this module which
implementation serves a call; nothing else decides.  The automatic choice:

- **compiled kernels** (``csrc/``, loaded by :mod:`~kanpde.models.kan.compiled`) serve CPU
  tensors of float32/float64 with spline order ``k <= 8``: the second-order jets of any
  number of input dimensions (in chunks of :data:`JET_CHUNK` directions), the sums of nested autograd up to derivative order 3 with a
  base activation the kernels know (:data:`BASE_KINDS`), the edge splines' table adjoint up to
  order 3, and the row products.  Elsewhere (GPUs, other dtypes, a failed build,
  ``KANPDE_NATIVE=0``) the torch nodes run, with the same numbers up to round-off.
- **layout**: a layer with ``in * out * (k + 1) <= 640`` works edge by edge on planes of points;
  a wider one contracts rows of its coefficient table (no per-edge tensors).  A wide layer's
  plain forward pass still goes through the edge-sums family where the compiled sums kernels
  serve it (they form no per-edge planes).
- **row products** without the kernels: a CSR sparse-dense product on CPU for vector-valued
  tables, products on gathered table rows otherwise.

:func:`force_backend` overrides these choices (tests run every path through it, and it is how
to compare paths by hand); :func:`kernel_calls` counts which implementations ran.
"""
from __future__ import annotations

import contextlib
from collections import Counter
from typing import Iterator

import torch

from . import compiled

__all__ = ["force_backend", "kernel_calls", "BASE_KINDS", "EDGEWISE_MAX", "JET_CHUNK"]

#: base activation -> its code in the compiled kernels (0: none the kernels know)
BASE_KINDS = {"silu": 1, "tanh": 2, "identity": 3}

#: a layer works edge by edge while ``in * out * (k + 1)`` is at most this
EDGEWISE_MAX = 640

_KERNELS = ("auto", "torch")
_ROW_PRODUCTS = ("auto", "compiled", "gather", "csr")
_LAYOUTS = ("auto", "edgewise", "rows")
_SUMS_LOOPS = {"auto": 0, "columns": 1, "points": 2}

_forced = {"kernels": "auto", "row_products": "auto", "layout": "auto", "sums_loop": "auto"}
_calls: list[Counter] = []


@contextlib.contextmanager
def force_backend(kernels: str = "auto", *, row_products: str = "auto", layout: str = "auto",
                  sums_loop: str = "auto") -> Iterator[None]:
    """Override the automatic choices inside a ``with`` block (process-wide; not thread-safe).

    Args:
        kernels: ``"auto"`` (compiled kernels where they serve) or ``"torch"`` (the plain-torch
            nodes for jets, nested-autograd sums and table adjoints).
        row_products: how wide layers' row products run: ``"auto"`` (compiled where the
            kernels serve and ``kernels="auto"``, else ``"csr"`` on CPU for vector-valued tables
            and ``"gather"`` otherwise), ``"compiled"`` (the compiled products where they load,
            even with ``kernels="torch"``), ``"gather"`` or ``"csr"``.
        layout: ``"auto"``, ``"edgewise"`` (every layer edge by edge) or ``"rows"`` (every layer
            on row products).
        sums_loop: the compiled sums kernels' inner loop: ``"auto"`` (by output width),
            ``"columns"`` (vectorised over output columns) or ``"points"`` (over points).

    Example::

        with force_backend("torch", row_products="gather"):
            reference = model.forward_jet(x)
    """
    choices = {"kernels": (kernels, _KERNELS), "row_products": (row_products, _ROW_PRODUCTS),
               "layout": (layout, _LAYOUTS), "sums_loop": (sums_loop, tuple(_SUMS_LOOPS))}
    for name, (value, allowed) in choices.items():
        if value not in allowed:
            raise ValueError(f"force_backend: {name} must be one of {allowed}, got {value!r}")
    before = dict(_forced)
    _forced.update({name: value for name, (value, _) in choices.items()})
    try:
        yield
    finally:
        _forced.clear()
        _forced.update(before)


@contextlib.contextmanager
def kernel_calls() -> Iterator[Counter]:
    """Count, inside a ``with`` block, which implementation served each operation: keys such as
    ``"edge_jet/compiled"``, ``"sums_backward/torch"``, ``"row_product/csr"``."""
    counter: Counter = Counter()
    _calls.append(counter)
    try:
        yield counter
    finally:
        _calls.remove(counter)


def _note(operation: str, implementation: str) -> None:
    for counter in _calls:
        counter[f"{operation}/{implementation}"] += 1


def _kernels_for(t: torch.Tensor, k: int):
    """The compiled kernels for tensors like ``t`` and spline order ``k``, or ``None``."""
    if _forced["kernels"] == "torch" or t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64):
        return None
    return compiled.load_kernels() if k <= 8 else None


# ------------------------------------------------------------------------------ layout
def edgewise(in_features: int, out_features: int, spline_order: int) -> bool:
    """Whether a layer of this shape works edge by edge (else on row products)."""
    layout = _forced["layout"]
    if layout != "auto":
        return layout == "edgewise"
    return in_features * out_features * (spline_order + 1) <= EDGEWISE_MAX


def forward_on_sums(in_features: int, out_features: int, spline_order: int, base: str, h: torch.Tensor) -> bool:
    """Whether a layer's plain forward pass goes through the edge-sums family: edge-by-edge
    layers always, wide layers where the compiled sums kernels serve them (their torch fallback
    would form ``(out, in, N)`` planes)."""
    return edgewise(in_features, out_features, spline_order) or sums_available(h, spline_order, base)


# ------------------------------------------------------------------------------ sums family
def sums_available(t: torch.Tensor, k: int, base: str) -> bool:
    """Whether the compiled sums kernels serve a layer of spline order ``k`` and base activation
    ``base`` (``"none"``: no base branch) at tensors like ``t``."""
    return (base == "none" or base in BASE_KINDS) and _kernels_for(t, k) is not None


def sums_kernels(operation: str, t: torch.Tensor, k: int, base: str, r: int):
    """The compiled sums kernels for one contraction (``operation``: sums_forward,
    sums_backward or sums_adjoint) of derivative order ``r`` (they form ``r <= 3``), or
    ``None`` for the torch ops."""
    kernels = compiled.load_kernels() if r <= 3 and sums_available(t, k, base) else None
    _note(operation, "torch" if kernels is None else "compiled")
    return kernels


def sums_loop() -> int:
    """The sums kernels' inner loop code (0: by the output width, 1: columns, 2: points)."""
    return _SUMS_LOOPS[_forced["sums_loop"]]


# ------------------------------------------------------------------------------ jets
#: the most derivative directions one compiled jet call carries (``edge_jet`` past the input
#: layer, ``row_jet``); :mod:`~kanpde.models.kan.jets` cuts a wider jet into chunks of this many
JET_CHUNK = {"edge_jet": 16, "row_jet": 4}


def jet_kernels(operation: str, h: torch.Tensor, d: int, k: int):
    """The compiled kernels for a second-order jet (``operation``: edge_jet or row_jet) of
    ``d >= 1`` derivative directions (any number: the caller cuts them into chunks of
    :data:`JET_CHUNK`), or ``None`` for the torch node."""
    kernels = _kernels_for(h, k) if d >= 1 else None
    _note(operation, "torch" if kernels is None else "compiled")
    return kernels


def table_adjoint_kernels(ref: torch.Tensor, k: int, orders: list[int]):
    """The compiled table adjoint of edge splines for the derivative ``orders`` asked (at most
    four, each ``<= 3``), or ``None``."""
    kernels = _kernels_for(ref, k) if len(orders) <= 4 and orders[-1] <= 3 else None
    _note("table_adjoint", "torch" if kernels is None else "compiled")
    return kernels


# ------------------------------------------------------------------------------ row products
def row_product_backend(block: torch.Tensor, width: int) -> tuple[str, object]:
    """``(backend, kernels)`` for the row products of a pattern on ``block`` with tables of
    ``width`` columns: ``"native"`` with the compiled module, ``"gather"`` or ``"csr"``."""
    choice = _forced["row_products"]
    if choice in ("gather", "csr"):
        return choice, None
    on_cpu = block.device.type == "cpu"
    if on_cpu and (choice == "compiled" or _forced["kernels"] == "auto"):
        kernels = compiled.load_kernels()
        if kernels is not None:
            return "native", kernels
    if not on_cpu or width == 1:
        return "gather", None
    return "csr", None


def row_product_used(backend: str) -> None:
    """Record one row product run by ``backend`` (for :func:`kernel_calls`)."""
    _note("row_product", "compiled" if backend == "native" else backend)
