"""Nested autograd through a KAN layer: the edge-sums family of custom autograd nodes.

A layer's forward pass is one node, :class:`SumsForward` (``out[q, n] = sum_p z[p, n]
phi_r[q, p, n]``, base branch included, with ``phi_r`` the ``r``-th ``h``-derivative of edge
``p -> q``), and every nested backward pass (a gradient, a Laplacian, then the loss's backward
pass to the parameters) adds a few more members of the same family: :class:`SumsBackward` (the
sums over outputs) and :class:`SumsAdjoint` (the adjoint in the coefficient table and the base
weights).  All three are partial derivatives of one trilinear form

    S_r(y, z) = sum_{q, p, n} y[q, n] z[p, n] phi_r[q, p, n],   dS_r / dh = z * B_{r+1}(y),

so the family is closed under differentiation and nested autograd to any order is a handful of
nodes per pass, each one (cached) edge evaluation plus one contraction on contiguous planes of
points.  On CPU the contractions run in the compiled sums kernels where
:mod:`~kanpde.models.kan.dispatch` says they serve; elsewhere in the torch ops below.
"""
from __future__ import annotations

import torch

from . import dispatch
from .graph import input_needed, tensor_key
from .located import LocatedInputs
from .planar import spline_planes, table_adjoint

__all__ = ["SumsForward", "SumsBackward", "SumsAdjoint", "sums_forward", "sums_backward", "edge_planes", "once"]


def _kernels(operation: str, loc: LocatedInputs, t: torch.Tensor, with_base: bool, r: int):
    """The compiled sums kernels for one contraction of order ``r`` (``with_base``: whether the
    node has a base branch), or ``None``."""
    return dispatch.sums_kernels(operation, t, loc.k, loc.base if with_base else "none", r)


def edge_planes(loc: LocatedInputs, table: torch.Tensor, r: int) -> torch.Tensor:
    """``E_r`` of :func:`spline_planes` as ``(O, in, N)`` planes, cached on ``loc`` per table and
    order (the nested passes of a Laplacian ask for the same ones repeatedly).  Internal: the
    cached tensors are never handed out as autograd outputs."""
    key = (*tensor_key(table), r)
    hit = loc.edge_evaluations.get(key)
    if hit is not None:
        return hit[1]
    e = spline_planes(loc, table, 1, r)[0].view(table.shape[1], loc.n_inputs, loc.n_points)
    loc.edge_evaluations[key] = (table, e)  # holds `table`, so its id stays unique
    return e


def _base_weights_by_input(wb: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """``wb`` transposed and contiguous, ``(in, O)``, for the sums kernels (empty: no base branch)."""
    return like.new_empty(0) if wb is None else wb.t().contiguous()


def once(loc: LocatedInputs, r: int, operands: tuple, compute) -> torch.Tensor:
    """``compute()``, the backward sums ``B_r`` of this evaluation at ``operands`` ``(y, table,
    wb)``, once: nested backward passes ask for the same one repeatedly (each pass of a
    Laplacian differentiates the same first-derivative node, which asks for its
    ``B_{r+1}(y)``).  Operands match by storage, layout and version; the record keeps detached
    aliases (no reference into the autograd graph, so no cycle through the nodes that hold
    ``loc``), and a hit returns a copy, never an earlier node's output."""
    key = (r,) + tuple(None if t is None else (t.data_ptr(), tuple(t.shape), t.stride(), t.dtype)
                            for t in operands)
    hit = loc.backward_sums.get(key)
    if hit is not None and all(h is None or h._version == v for h, v in zip(*hit[:2])):
        return hit[2].clone()
    out = compute()
    if out is None:  # vanishes: nothing to keep
        return out
    held = tuple(None if t is None else t.detach() for t in operands) + (out.detach(),)
    loc.backward_sums[key] = (held, tuple(None if h is None else h._version for h in held), held[-1])
    return out


def sums_forward(z, table, wb, loc, r):
    """``out[q, n] = sum_p z[p, n] phi_r[q, p, n]`` (``z`` ``None``: ones), ``(O, N)``."""
    t = table if table is not None else wb
    kern = _kernels("sums_forward", loc, t, wb is not None, r)
    if kern is not None:
        o = wb.shape[0] if table is None else table.shape[1]
        tab = t.new_empty(0) if table is None else table.contiguous()
        return kern.sums_forward(*loc.kernel_args(), tab, _base_weights_by_input(wb, t), o, loc.k, r, z,
                                 dispatch.sums_loop())
    out = None
    if table is not None and r <= loc.k:
        e = edge_planes(loc, table, r)
        out = e.sum(1) if z is None else (e * z).sum(1)
    if wb is not None:
        b = loc.base_planes(r)
        b = b if z is None else z * b
        out = wb @ b if out is None else torch.addmm(out, wb, b)
    return out


def sums_backward(y, table, wb, loc, r):
    """``out[p, n] = sum_q y[q, n] phi_r[q, p, n]``, ``(in, N)``."""
    kern = _kernels("sums_backward", loc, y, wb is not None, r)
    if kern is not None:
        tab = y.new_empty(0) if table is None else table.contiguous()
        return kern.sums_backward(*loc.kernel_args(), tab, _base_weights_by_input(wb, y), y.shape[0], loc.k, r, y,
                                  dispatch.sums_loop())
    out = None
    if table is not None and r <= loc.k:
        out = (edge_planes(loc, table, r) * y.unsqueeze(1)).sum(0)
    if wb is not None:
        t = (wb.t() @ y).mul_(loc.base_planes(r))
        out = t if out is None else out.add_(t)
    return out


def vanishes(loc, table, wb, r) -> bool:
    """Whether ``phi_r`` vanishes identically (spline order exceeded, no base branch)."""
    return wb is None and (table is None or r > loc.k)


def _save_sums(ctx, first, ht, table, wb, loc, r) -> None:
    """What :class:`SumsForward` / :class:`SumsBackward` keep for their backward passes."""
    ctx.save_for_backward(first, ht, table, wb)
    ctx.loc, ctx.r = loc, r
    ctx.set_materialize_grads(False)


def _parameter_adjoints(ctx, y, z) -> tuple:
    """Gradients of a :class:`SumsForward` / :class:`SumsBackward` node in its table and ``wb``
    (inputs 2 and 3): the adjoint ``T_r(y, z)`` of the node's trilinear form, as far as they are
    needed."""
    _, ht, table, wb = ctx.saved_tensors
    loc, r = ctx.loc, ctx.r
    want_t = table is not None and r <= loc.k and input_needed(ctx, 2, table)
    want_w = wb is not None and input_needed(ctx, 3, wb)
    if not (want_t or want_w):
        return None, None
    return SumsAdjoint.apply(y, z, ht, loc, r, want_t, want_w)


class SumsForward(torch.autograd.Function):
    """Edge sums forward: ``out[q, n] = sum_p z[p, n] phi_r[q, p, n]`` (``z`` ``None``: ones).

    ``apply(z, ht, table, wb, loc, r)``: ``z`` ``(in, N)`` or ``None``, ``ht`` ``(in, N)`` the
    layer input as planes, ``table`` ``(in * G * (k + 1), O)`` (or ``None``), ``wb`` ``(O, in)``
    (or ``None``); ``phi_r[q, p, n]`` is the ``r``-th ``h``-derivative of edge ``p -> q`` at
    ``ht[p, n]``: the spline from ``table`` (:func:`edge_planes`) plus ``wb[q, p] b^(r)``.
    Returns ``(O, N)``.

    With :class:`SumsBackward` (sums over the outputs) and :class:`SumsAdjoint` (the adjoint in ``table``
    and ``wb``) it forms a family closed under differentiation: all three are partial
    derivatives of ``S_r(y, z) = sum_{q, p, n} y[q, n] z[p, n] phi_r[q, p, n]``, and
    ``dS_r / dh = z * B_{r+1}(y)``.  Each node does one (cached) edge evaluation and one
    contraction, so nested autograd through a layer is a handful of nodes per pass, all on
    contiguous planes of points.
    """

    @staticmethod
    def forward(ctx, z, ht, table, wb, loc, r):
        _save_sums(ctx, z, ht, table, wb, loc, r)
        return sums_forward(z, table, wb, loc, r)

    @staticmethod
    def backward(ctx, grad):
        z, ht, table, wb = ctx.saved_tensors
        loc, r = ctx.loc, ctx.r
        if grad is None:
            return (None,) * 6
        d_z = d_h = None
        if z is not None and input_needed(ctx, 0, z):
            d_z = SumsBackward.apply(grad, ht, table, wb, loc, r)
        if not vanishes(loc, table, wb, r + 1) and input_needed(ctx, 1, ht):
            d_h = SumsBackward.apply(grad, ht, table, wb, loc, r + 1)
            if z is not None:
                d_h = d_h * z
        return (d_z, d_h, *_parameter_adjoints(ctx, grad, z), None, None)


class SumsBackward(torch.autograd.Function):
    """Edge sums backward: ``out[p, n] = sum_q y[q, n] phi_r[q, p, n]``;
    ``apply(y, ht, table, wb, loc, r)`` with ``y`` ``(O, N)`` -> ``(in, N)`` (see :class:`SumsForward`)."""

    @staticmethod
    def forward(ctx, y, ht, table, wb, loc, r):
        _save_sums(ctx, y, ht, table, wb, loc, r)
        return once(loc, r, (y, table, wb), lambda: sums_backward(y, table, wb, loc, r))

    @staticmethod
    def backward(ctx, grad):
        y, ht, table, wb = ctx.saved_tensors
        loc, r = ctx.loc, ctx.r
        if grad is None:
            return (None,) * 6
        d_y = d_h = None
        if input_needed(ctx, 0, y):
            d_y = SumsForward.apply(grad, ht, table, wb, loc, r)
        if not vanishes(loc, table, wb, r + 1) and input_needed(ctx, 1, ht):
            d_h = SumsBackward.apply(y, ht, table, wb, loc, r + 1) * grad
        return (d_y, d_h, *_parameter_adjoints(ctx, y, grad), None, None)


class SumsAdjoint(torch.autograd.Function):
    """Adjoint of ``S_r(y, z)`` (see :class:`SumsForward`) in the table and in ``wb``:
    ``apply(y, z, ht, loc, r, want_t, want_w)`` with ``y`` ``(O, N)``, ``z`` ``(in, N)`` or
    ``None`` (ones) -> ``(d_table (in * G * (k + 1), O), d_wb (O, in))``, each ``None`` unless
    wanted."""

    @staticmethod
    def forward(ctx, y, z, ht, loc, r, want_t, want_w):
        ctx.save_for_backward(y, z, ht)
        ctx.loc, ctx.r = loc, r
        ctx.set_materialize_grads(False)
        o = y.shape[0]
        kern = _kernels("sums_adjoint", loc, y, want_w, r)
        if kern is not None:
            return tuple(kern.sums_adjoint(*loc.kernel_args(), loc.k, r, y, z, loc.n_blocks * loc.k1, want_t, want_w,
                                               dispatch.sums_loop()))
        d_t = d_w = None
        if want_t:
            d = y.unsqueeze(1) if z is None else (y.unsqueeze(1) * z).reshape(o, -1)  # (O, 1, N) | (O, in * N)
            d_t = table_adjoint(loc, [None] * r + [d], o)
        if want_w:
            b = loc.base_planes(r)
            d_w = y @ (b if z is None else z * b).t()
        return d_t, d_w

    @staticmethod
    def backward(ctx, g_t, g_w):
        y, z, ht = ctx.saved_tensors
        loc, r = ctx.loc, ctx.r
        if g_t is None and g_w is None:
            return (None,) * 7
        d_y = d_z = d_h = None
        if input_needed(ctx, 0, y):
            d_y = SumsForward.apply(z, ht, g_t, g_w, loc, r)
        if z is not None and input_needed(ctx, 1, z):
            d_z = SumsBackward.apply(y, ht, g_t, g_w, loc, r)
        if not vanishes(loc, g_t, g_w, r + 1) and input_needed(ctx, 2, ht):
            d_h = SumsBackward.apply(y, ht, g_t, g_w, loc, r + 1)
            if z is not None:
                d_h = d_h * z
        return d_y, d_z, d_h, None, None, None, None
