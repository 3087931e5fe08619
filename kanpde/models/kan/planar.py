"""Edge splines evaluated edge by edge on planes of points, and their table adjoint.

On interval ``j`` of input ``p`` the splines of every edge ``p -> q`` are polynomials in the
local coordinate ``u``: ``sum_i c[q, p, i] B_i(x) = sum_{m=0}^{k} A[p, j, m, q] u^m``, with the
coefficient table ``A`` of :meth:`~kanpde.models.kan.layer.KANLayer.table`.  Edge-by-edge layers
gather the ``k + 1`` table rows of every edge input once per table, plane by plane
(``(k + 1, out, in * N)``, points innermost), and Horner's scheme gives the edge splines and any
of their ``h``-derivatives as ``(out, in, N)`` planes (:func:`spline_planes`); every product
broadcasts over outer dimensions only.  :func:`table_adjoint` is its adjoint in the table, and
:class:`EdgeSpline` / :class:`EdgeSplineAdjoint` make the pair an autograd family that is
differentiable to any order.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch

from . import dispatch
from .graph import flat_planes, input_needed
from .located import LocatedInputs

__all__ = ["spline_planes", "table_adjoint", "EdgeSpline", "EdgeSplineAdjoint"]


def spline_planes(loc: LocatedInputs, table: torch.Tensor, count: int, r0: int = 0) -> list[torch.Tensor]:
    """``E[i] = d^(r0+i)/dh^(r0+i) sum_m table[block * (k+1) + m] u^m`` edge by edge with the edges
    innermost: ``count`` tensors ``(O, in * N)`` (``loc`` input-major).  Horner's scheme on the
    gathered table planes, one fused multiply-add per power: ``sum_{m>=r} m!/(m-r)! a_m u^(m-r)
    = r! acc_r`` with ``acc_m = a_m + (m+1)/(m+1-r) u acc_{m+1}``.  The table rows are gathered
    plane by plane, so every product broadcasts over outer dimensions only."""
    k, o = loc.k, table.shape[1]
    e_n = loc.block.numel()
    a = loc.planes(table) if r0 <= k else None  # (k+1, O, E)
    u = loc.u.view(1, e_n)
    out = []
    for r in range(r0, r0 + count):
        if r > k:
            out.append(table.new_zeros(o, e_n))
            continue
        if r == k:
            e = a[k] * float(math.factorial(k))
        else:
            acc = a[k]
            for m in range(k - 1, r, -1):
                acc = torch.addcmul(a[m], acc, u, value=(m + 1) / (m + 1 - r))
            e = torch.addcmul(a[r], acc, u, value=r + 1.0)
            if r > 1:
                e.mul_(float(math.factorial(r)))
        if r > 0:
            e.mul_(loc.du_dh_power(r).view(1, e_n))
        out.append(e)
    return out


def table_adjoint(loc: LocatedInputs, ds: Sequence[torch.Tensor | None], o: int) -> torch.Tensor:
    """Adjoint of :func:`spline_planes` (orders ``0, 1, ..``) in the table: ``ds[r]`` ``(O, in * N)``
    (or ``(O, 1, N)``, broadcast over the inputs; or ``None``) -> ``(in * G * (k + 1), O)``."""
    k, k1 = loc.k, loc.k1
    e_n = loc.block.numel()
    ref = next(d for d in ds if d is not None)
    # (O, in, N) views of the terms (broadcast ones with stride 0 over the inputs)
    shape = (o, loc.n_inputs, loc.n_points)
    terms = [(r, d.expand(shape) if d.dim() == 3 else d.view(shape)) for r, d in enumerate(ds)
             if d is not None and r <= k]
    if not terms:
        return ref.new_zeros(loc.n_blocks * k1, o)
    kernels = dispatch.table_adjoint_kernels(ref, k, [r for r, _ in terms])
    if kernels is not None:  # compiled: no (k + 1, O, in * N) temporary
        planes = [d if d.stride(2) == 1 else d.contiguous() for _, d in terms]
        return kernels.planar_adjoint(loc.u.view(loc.block.shape), loc.du_dh.expand(loc.block.shape), loc.block,
                                      planes, [r for r, _ in terms], loc.n_blocks * k1, k)
    terms = [(r, d.reshape(o, e_n)) for r, d in terms]
    zs = [(r, d if r == 0 else d * loc.du_dh_power(r).view(1, e_n)) for r, d in terms]
    lo = zs[0][0]
    v = ref.new_empty(k1 - lo, o, e_n)  # planes m < lo receive nothing
    for m in range(lo, k1):
        vm = v[m - lo]
        first = True
        for r, z in zs:
            if r > m:
                break
            c = float(math.perm(m, r))
            if first:
                if m == r:
                    torch.mul(z, c, out=vm)
                else:
                    torch.mul(loc.power(m - r).view(1, e_n), z, out=vm)
                    if c != 1:
                        vm.mul_(c)
                first = False
            elif m == r:
                vm.add_(z, alpha=c)
            else:
                vm.addcmul_(loc.power(m - r).view(1, e_n), z, value=c)
    t = ref.new_zeros(k1, o, loc.n_blocks)
    t[lo:].view((k1 - lo) * o, loc.n_blocks).index_add_(1, loc.block.reshape(-1), v.view((k1 - lo) * o, e_n))
    return t.permute(2, 0, 1).reshape(loc.n_blocks * k1, o)



class EdgeSpline(torch.autograd.Function):
    """Edge splines and their ``h``-derivatives, edge by edge, on planes (points innermost).

    ``apply(ht, table, loc, r0, count)`` returns ``count`` tensors ``(O, in, N)``; number ``i``
    holds, at ``ht[p, n]``, the ``(r0 + i)``-th derivative in ``h`` of input ``p``'s splines (one
    per table column: ``sum_m table[block[p, n] * (k + 1) + m] u^m``).  ``ht`` ``(in, N)`` (the
    layer input transposed), ``table`` ``(in * G * (k + 1), O)``, ``loc`` located input-major
    (:func:`~kanpde.models.kan.bspline.locate_planes`).  Its partial derivatives are again :class:`EdgeSpline` (one
    order higher) and :class:`EdgeSplineAdjoint`, so it is differentiable to any order; every
    elementwise product runs along contiguous rows of points.
    """

    @staticmethod
    def forward(ctx, ht, table, loc, r0, count):
        ctx.save_for_backward(ht, table)
        ctx.loc, ctx.r0, ctx.count = loc, r0, count
        ctx.set_materialize_grads(False)
        o = table.shape[1]
        return tuple(e.view(o, loc.n_inputs, loc.n_points) for e in spline_planes(loc, table, count, r0))

    @staticmethod
    def backward(ctx, *grads):
        ht, table = ctx.saved_tensors
        loc, r0 = ctx.loc, ctx.r0
        d_h = d_table = None
        used = [i for i, g in enumerate(grads) if g is not None and r0 + i <= loc.k]
        if not used:
            return None, None, None, None, None
        if input_needed(ctx, 0, ht) and r0 + used[0] < loc.k:
            lo, hi = used[0], used[-1] + 1
            nxt = EdgeSpline.apply(ht, table, loc, r0 + 1 + lo, hi - lo)
            for i in used:
                if r0 + i < loc.k:
                    term = (grads[i] * nxt[i - lo]).sum(0)
                    d_h = term if d_h is None else d_h + term
        if input_needed(ctx, 1, table):
            d_table = EdgeSplineAdjoint.apply(ht, loc, r0, *grads)
        return d_h, d_table, None, None, None


class EdgeSplineAdjoint(torch.autograd.Function):
    """Adjoint of :class:`EdgeSpline` in the table: ``apply(ht, loc, r0, *ys)`` with ``ys[i]``
    ``(O, in, N)`` or ``None`` -> ``(in * G * (k + 1), O)``."""

    @staticmethod
    def forward(ctx, ht, loc, r0, *ys):
        ctx.save_for_backward(ht, *ys)
        ctx.loc, ctx.r0, ctx.count = loc, r0, len(ys)
        ctx.set_materialize_grads(False)
        o = next(y for y in ys if y is not None).shape[0]
        return table_adjoint(loc, [None] * r0 + [None if y is None else flat_planes(y) for y in ys], o)

    @staticmethod
    def backward(ctx, grad):
        ht, *ys = ctx.saved_tensors
        loc, r0, count = ctx.loc, ctx.r0, ctx.count
        if grad is None:
            return (None,) * (3 + count)
        present = [i for i, y in enumerate(ys) if y is not None and r0 + i <= loc.k]
        d_h = None
        d_ys = [None] * count
        if present and r0 + present[0] < loc.k and input_needed(ctx, 0, ht):
            lo, hi = present[0], present[-1] + 1
            nxt = EdgeSpline.apply(ht, grad, loc, r0 + 1 + lo, hi - lo)
            for i in present:
                if r0 + i < loc.k:
                    term = (ys[i] * nxt[i - lo]).sum(0)
                    d_h = term if d_h is None else d_h + term
        want = [i for i in present if input_needed(ctx, 3 + i, ys[i])]
        if want:
            lo, hi = want[0], want[-1] + 1
            cur = EdgeSpline.apply(ht, grad, loc, r0 + lo, hi - lo)
            for i in want:
                d_ys[i] = cur[i - lo]
        return (d_h, None, None, *d_ys)
