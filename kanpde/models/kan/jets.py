"""Forward derivative propagation through a KAN layer: second-order jets in one autograd node.

``KANLayer.forward_jet`` maps a jet (value, gradient, Hessian diagonal with respect to the
network input) to the next one exactly:

    d out_q / dx_j    = sum_p phi'_qp(h_p) dh_p/dx_j
    d2 out_q / dx_j^2 = sum_p phi''_qp(h_p) (dh_p/dx_j)^2 + phi'_qp(h_p) d2h_p/dx_j^2,

with ``phi'`` and ``phi''`` from the derivatives of the local powers ``u^m`` (same table rows)
and of the base activation in closed form.  For the training path (order 2) the whole layer is
one node with its backward pass written out (differentiable once, as the loss on a Laplacian
needs):

- :class:`EdgeJet` for edge-by-edge layers, input-major with the points innermost: the table is
  gathered plane by plane, the edge derivatives, jet products and the table adjoint are
  elementwise operations on contiguous planes, and the gradient/Hessian channels travel between
  such layers as ``(out, d, N)`` planes (returned as ``(N, out, d)`` views);
- :class:`RowJet` for wide layers: one row product per channel with the base weights folded into
  the table as one more row per block.

On CPU each runs in a compiled kernel (:class:`CompiledEdgeJet`, :class:`CompiledRowJet`) where
:mod:`~kanpde.models.kan.dispatch` says it serves; :func:`edge_jet` and :func:`row_jet` pick.
"""
from __future__ import annotations

import math

import torch

from ..activations import ACTIVATIONS
from . import dispatch
from .graph import to_planes
from .planar import spline_planes, table_adjoint
from .rows import sddmm, spmm, spmmt

__all__ = ["EdgeJet", "CompiledEdgeJet", "RowJet", "CompiledRowJet", "edge_jet", "row_jet", "power_derivatives"]


class EdgeJet(torch.autograd.Function):
    """Second-order jet of an edge-by-edge layer in one autograd node (differentiable once).

    ``apply(h, g, s, table, wb, loc, base, first)`` -> ``(value, grad, hess)``: ``value``
    ``(N, O)`` (no bias), ``grad``/``hess`` ``(N, O, d)``.  With ``phi_r[q, p, n]`` the ``r``-th
    ``h``-derivative of edge ``p -> q`` at ``h[n, p]`` (spline from ``table`` plus
    ``wb[q, p] b^(r)``): ``value = sum_p phi_0``, ``grad = sum_p phi_1 g``,
    ``hess = sum_p phi_2 g^2 + phi_1 s``.  ``first``: the input layer (``g`` the identity,
    ``s = 0``; ``g``/``s`` are ``None``, ``d = in``, ``grad[n, q, p] = phi_1[q, p, n]``).

    ``loc`` locates ``h`` input-major (:func:`~kanpde.models.kan.bspline.locate_planes`, edge ``p * N + n``), and
    everything inside runs on planes with the points innermost (``(O, in, N)``, ``(in, d, N)``),
    so every elementwise product is contiguous or broadcasts over outer dimensions only.
    ``grad``/``hess`` are returned as ``(N, O, d)`` views of ``(O, d, N)`` planes, which the
    next layer reads back without a copy.  The backward pass is written out (one more edge
    derivative for ``dh``) on the same gathered table rows: no per-power autograd graph.
    """

    @staticmethod
    def forward(ctx, h, g, s, table, wb, loc, base, first):
        ctx.set_materialize_grads(False)
        i, n, o = loc.n_inputs, loc.n_points, table.shape[1]  # loc is input-major: block (in, N)
        need_h = ctx.needs_input_grad[0]
        es = [e.view(o, i, n) for e in spline_planes(loc, table, 4 if need_h else 3)]  # (O, in, N)
        bs = None
        if wb is not None:
            bs = ACTIVATIONS[base].derivatives(loc.inputs, len(es) - 1)  # each (in, N)
            w3 = wb.unsqueeze(-1)
            value = torch.addmm(es[0].sum(1), wb, bs[0]).t()  # (N, O) view of (O, N) planes
            phi = [e.addcmul_(w3, b) for e, b in zip(es[1:], bs[1:])]  # fresh planes: in place
        else:
            value = es[0].sum(1).t()
            phi = es[1:]
        gp = sp = g2 = None
        if first:
            gr, hs = phi[0], phi[1]  # (O, d = in, N)
        else:
            gp = to_planes(g)  # (in, d, N)
            sp = to_planes(s)
            g2 = gp * gp
            p1, p2 = phi[0].unsqueeze(2), phi[1].unsqueeze(2)  # (O, in, 1, N)
            gr = (p1 * gp).sum(1)  # (O, d, N)
            hs = (p2 * g2).sum(1).add_((p1 * sp).sum(1))
        ctx.loc, ctx.first, ctx.bs = loc, first, bs
        ctx.save_for_backward(gp, sp, g2, *phi)
        return value, gr.permute(2, 0, 1), hs.permute(2, 0, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gv, gg, gh):
        gp, sp, g2, *phi = ctx.saved_tensors  # phi: derivatives 1, 2 (, 3), (O, in, N)
        loc, first, bs = ctx.loc, ctx.first, ctx.bs
        i, n = loc.n_inputs, loc.n_points
        o = phi[0].shape[0]
        need_h, need_g, need_s, need_t, need_w = ctx.needs_input_grad[:5]
        ggp = None if gg is None else to_planes(gg)  # (O, d, N)
        ghp = None if gh is None else to_planes(gh)
        d1 = d2 = None  # d loss / d phi_1, d phi_2: (O, in, N)
        if first:
            d1, d2 = ggp, ghp
        else:
            if ggp is not None:
                d1 = (ggp.unsqueeze(1) * gp).sum(2)
            if ghp is not None:
                gh1 = ghp.unsqueeze(1)  # (O, 1, d, N)
                t = (gh1 * sp).sum(2)
                d1 = t if d1 is None else d1 + t
                d2 = (gh1 * g2).sum(2)
        gvt = None if gv is None else gv.t()  # (O, N)
        d_h = d_g = d_s = d_t = d_w = None
        if need_h:
            tot = None
            for a, b in ((None if gvt is None else gvt.unsqueeze(1), phi[0]), (d1, phi[1]),
                         (d2, phi[2] if len(phi) > 2 else None)):
                if a is not None and b is not None:
                    tot = a * b if tot is None else tot.addcmul_(a, b)
            if tot is not None:
                d_h = tot.sum(0).t()
        if not first:
            if need_g and (ggp is not None or ghp is not None):
                acc = None
                if ggp is not None:
                    acc = (phi[0].unsqueeze(2) * ggp.unsqueeze(1)).sum(0)  # (in, d, N)
                if ghp is not None:
                    t = (phi[1].unsqueeze(2) * ghp.unsqueeze(1)).sum(0).mul_(2 * gp)
                    acc = t if acc is None else acc.add_(t)
                d_g = acc.permute(2, 0, 1)
            if need_s and ghp is not None:
                d_s = (phi[0].unsqueeze(2) * ghp.unsqueeze(1)).sum(0).permute(2, 0, 1)
        if need_t and (gv is not None or d1 is not None or d2 is not None):
            d0 = None if gvt is None else gvt.unsqueeze(1)  # (O, 1, N)
            d_t = table_adjoint(loc, [d0, None if d1 is None else d1.reshape(o, i * n),
                                        None if d2 is None else d2.reshape(o, i * n)], o)
        if need_w and bs is not None:
            acc = None if gv is None else (bs[0] @ gv).t()  # (O, in)
            for b, d in ((bs[1], d1), (bs[2], d2)):
                if d is not None:
                    t = (d * b).sum(-1)
                    acc = t if acc is None else acc + t
            d_w = acc
        return d_h, d_g, d_s, d_t, d_w, None, None, None


def power_derivatives(u: torch.Tensor, du_dh: torch.Tensor, k: int, count: int) -> list[torch.Tensor]:
    """``Q_r[n, p, m] = d^r (u^m) / dh^r = m! / (m - r)! u^(m-r) (du/dh)^r`` for ``r < count``:
    each ``(N, in, k + 1)`` (``u`` ``(N, in)``, with its graph to ``h`` if it has one; ``du_dh``
    ``(in,)`` or ``(N, in)``)."""
    k1 = k + 1
    pw = [torch.ones_like(u), u]
    while len(pw) < k1:
        pw.append(pw[-1] * u)
    out = []
    for r in range(count):
        q = u.new_zeros(*u.shape, k1)
        ihr = du_dh if r == 1 else du_dh.pow(r) if r > 1 else None
        for m in range(r, k1):
            t = pw[m - r] if ihr is None else pw[m - r] * ihr
            q[..., m] = t if m == r and r < 2 else t * float(math.perm(m, r))
        out.append(q)
    return out


class RowJet(torch.autograd.Function):
    """Second-order jet of a wide layer (row-product path) in one autograd node.

    ``apply(h, g, s, table, loc, pat, base)`` -> ``(N, 1 + 2d, O)``: channel 0 the value, then the
    ``d`` gradient and ``d`` Hessian-diagonal channels (no bias).  ``table`` holds, per block of
    ``k + 2`` rows, the ``k + 1`` polynomial rows of :meth:`~kanpde.models.kan.layer.KANLayer.table` and the base weights
    ``w_b[:, p]`` (``base`` not ``None``), so the base branch is one more "basis function" per
    input with derivatives ``b^(r)``; ``pat`` is the matching row pattern.  With ``Q_r`` the
    ``r``-th ``h``-derivatives of the per-input basis values (powers of ``u``, then ``b``):

        vals = [Q_0, Q_1 g_j, Q_2 g_j^2 + Q_1 s_j],   out = row product of vals with the table.

    The backward pass contracts the sampled table rows (:func:`sddmm`) with ``Q_1 .. Q_3``
    before anything is expanded per channel (differentiable once).
    """

    @staticmethod
    def forward(ctx, h, g, s, table, loc, pat, base):
        n, i = h.shape
        d = g.shape[2]
        need_h = ctx.needs_input_grad[0]
        qs = power_derivatives(loc.u.view(n, i), loc.du_dh, loc.k, 4 if need_h else 3)
        if base is not None:
            bs = ACTIVATIONS[base].derivatives(h.detach(), len(qs) - 1)
            qs = [torch.cat([q, b.unsqueeze(-1)], -1) for q, b in zip(qs, bs)]
        k1e = qs[0].shape[-1]
        gd = g.detach().transpose(1, 2).contiguous()  # (N, d, in)
        sd = s.detach().transpose(1, 2).contiguous()
        vals = h.new_empty(n, 1 + 2 * d, i, k1e)
        vals[:, 0] = qs[0]
        q1, q2 = qs[1].unsqueeze(1), qs[2].unsqueeze(1)  # (N, 1, in, k1e)
        torch.mul(q1, gd.unsqueeze(-1), out=vals[:, 1:1 + d])
        torch.mul(q2, gd.square().unsqueeze(-1), out=vals[:, 1 + d:]).addcmul_(q1, sd.unsqueeze(-1))
        vals = vals.view(n, 1 + 2 * d, i * k1e)
        ctx.pat, ctx.d = pat, d
        ctx.save_for_backward(vals, table, gd, sd, *qs[1:])
        return spmm(vals, table, pat)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gout):
        vals, table, gd, sd, *qs = ctx.saved_tensors
        pat, d = ctx.pat, ctx.d
        need_h, need_g, need_s, need_t = ctx.needs_input_grad[:4]
        n, c, _ = vals.shape
        i = gd.shape[2]
        d_h = d_g = d_s = d_t = None
        if need_t:
            d_t = spmmt(vals, gout.contiguous(), pat)
        if need_h or need_g or need_s:
            w = sddmm(gout.contiguous(), table, pat).view(n, c, i, qs[0].shape[-1])  # (N, c, in, k1e)
            q1, q2 = qs[0].unsqueeze(1), qs[1].unsqueeze(1)
            b1 = (w[:, 1:] * q1).sum(-1)  # (N, 2d, in)
            b2 = (w[:, 1:] * q2).sum(-1)
            if need_g:
                d_g = torch.addcmul(b1[:, :d], gd, b2[:, d:], value=2.0).transpose(1, 2)
            if need_s:
                d_s = b1[:, d:].transpose(1, 2)
            if need_h:
                c3 = (w[:, 1 + d:] * qs[2].unsqueeze(1)).sum(-1)  # (N, d, in)
                d_h = (w[:, 0] * qs[0]).sum(-1)
                d_h += (gd * b2[:, :d] + sd * b2[:, d:]).sum(1) + (gd.square() * c3).sum(1)
        return d_h, d_g, d_s, d_t, None, None, None


class CompiledRowJet(torch.autograd.Function):
    """:class:`RowJet` in the compiled CPU kernel (``csrc/kan_jet.cpp``): one pass per point
    forms the basis derivatives from ``u``, ``du/dh`` and the base activation's derivatives,
    the channel weights and the row products, and the backward pass likewise, with no
    per-channel temporaries (differentiable once).

    ``apply(h, g, s, table, loc, base, kernels)`` -> ``(value (N, O), grad (N, O, d),
    hess (N, O, d))`` (no bias); ``table`` with the base row per block when ``base`` is set.
    """

    @staticmethod
    def forward(ctx, h, g, s, table, loc, base, kernels):
        n, i = h.shape
        u = loc.u.view(n, i)
        ih = loc.du_dh.expand(n, i)  # a uniform grid's (in,) stays broadcast
        ih = ih if ih.stride(0) == 0 else ih.contiguous()
        bder = torch.stack(ACTIVATIONS[base].derivatives(h.detach(), 3)) if base is not None else h.new_empty(0)
        # point-major copies: the kernel reads each point's numbers together
        ctx.args = (u, ih, bder, g.detach().contiguous(), s.detach().contiguous(), loc.block.contiguous(),
                    table.detach().contiguous(), loc.k)
        ctx.kernels = kernels
        ctx.set_materialize_grads(False)
        return tuple(kernels.forward(*ctx.args))

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gv, gg, gh):
        need = ctx.needs_input_grad[:4]
        if gv is None and gg is None and gh is None:
            return (None,) * 7
        gv, gg, gh = (None if t is None else t.contiguous() for t in (gv, gg, gh))
        out = ctx.kernels.backward(*ctx.args, gv, gg, gh, *need)
        return (*(o if want else None for o, want in zip(out, need)), None, None, None)


class CompiledEdgeJet(torch.autograd.Function):
    """:class:`EdgeJet` in the compiled CPU kernel (``edge_forward``/``edge_backward`` in
    ``csrc/kan_jet.cpp``): the points of a tile are the SIMD lanes, and each edge's derivatives
    are formed from gathered table entries, used and dropped, with no ``(O, in, N)`` planes
    (differentiable once).  Same arguments and outputs as :class:`EdgeJet`, plus the kernel
    module."""

    @staticmethod
    def forward(ctx, h, g, s, table, wb, loc, base, first, kernels):
        i, n = loc.block.shape  # input-major
        empty = h.new_empty(0)
        # the kernel forms the base activation's derivatives from z and sigma(z) or tanh(z)
        kind = 0 if wb is None else dispatch.BASE_KINDS[base]
        aux = torch.sigmoid(loc.inputs) if kind == 1 else torch.tanh(loc.inputs) if kind == 2 else empty
        ctx.args = (loc.u.view(i, n), loc.du_dh.expand(i, n), loc.block, loc.inputs, aux, kind,
                    empty if wb is None else wb.detach().contiguous(),
                    empty if first else to_planes(g.detach()), empty if first else to_planes(s.detach()),
                    table.detach().contiguous(), loc.k, first)
        ctx.kernels = kernels
        ctx.set_materialize_grads(False)
        value, grad, hess = kernels.edge_forward(*ctx.args)
        return value.t(), grad.permute(2, 0, 1), hess.permute(2, 0, 1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, gv, gg, gh):
        need = ctx.needs_input_grad[:5]
        if gv is None and gg is None and gh is None:
            return (None,) * 9
        gv = None if gv is None else gv.t().contiguous()
        gg = None if gg is None else to_planes(gg)
        gh = None if gh is None else to_planes(gh)
        dh, dg, ds, dt, dw = ctx.kernels.edge_backward(*ctx.args, gv, gg, gh, *need)
        # what was not needed comes back as None
        d_h = None if dh is None else dh.t()
        d_g = None if dg is None else dg.permute(2, 0, 1)
        d_s = None if ds is None else ds.permute(2, 0, 1)
        return d_h, d_g, d_s, dt, dw, None, None, None, None


def in_direction_chunks(jet, g, s, size):
    """``jet(g, s) -> (value, grad, hess)`` over the derivative directions (the last axis of
    ``g`` and ``s``, and of ``grad`` and ``hess``) in chunks of at most ``size``.

    A direction's gradient and Hessian channels depend only on the layer input and that
    direction's own input channels, so the chunks' channels concatenate to the whole jet; the
    value, the same in every chunk, is taken from the first (the others' values get no
    gradient, and autograd sums the chunks' contributions to the layer input and table)."""
    d = g.shape[-1]
    if d <= size:
        return jet(g, s)
    parts = [jet(g[..., i:i + size], s[..., i:i + size]) for i in range(0, d, size)]
    return parts[0][0], torch.cat([p[1] for p in parts], -1), torch.cat([p[2] for p in parts], -1)


def edge_jet(h, g, s, table, wb, loc, base, first):
    """:class:`EdgeJet`, or :class:`CompiledEdgeJet` where the compiled kernel serves the call
    (past the input layer in chunks of ``dispatch.JET_CHUNK["edge_jet"]`` directions)."""
    kernels = dispatch.jet_kernels("edge_jet", h, loc.n_inputs if first else g.shape[2], loc.k)
    if kernels is None:
        return EdgeJet.apply(h, g, s, table, wb, loc, base, first)
    if first:  # an input layer's directions are its own inputs: one call for any number
        return CompiledEdgeJet.apply(h, g, s, table, wb, loc, base, first, kernels)
    return in_direction_chunks(lambda gc, sc: CompiledEdgeJet.apply(h, gc, sc, table, wb, loc, base, first, kernels),
                               g, s, dispatch.JET_CHUNK["edge_jet"])



def row_jet(h, g, s, table, loc, base, per_block, width):
    """Second-order jet of a wide layer: :class:`CompiledRowJet` where the compiled kernel serves
    the call, else :class:`RowJet` on ``loc``'s row pattern with ``per_block`` table rows per
    block.  Returns ``(value (N, O), grad (N, O, d), hess (N, O, d))`` (no bias)."""
    d = g.shape[2]
    kernels = dispatch.jet_kernels("row_jet", h, d, loc.k)
    if kernels is not None:
        return in_direction_chunks(lambda gc, sc: CompiledRowJet.apply(h, gc, sc, table, loc, base, kernels),
                                   g, s, dispatch.JET_CHUNK["row_jet"])
    out = RowJet.apply(h, g, s, table, loc, loc.block_pattern(per_block, width), base)
    return out[:, 0], out[:, 1:1 + d].transpose(1, 2), out[:, 1 + d:].transpose(1, 2)
