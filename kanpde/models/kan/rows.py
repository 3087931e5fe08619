"""Row products: the contraction of wide KAN layers, without per-edge tensors.

A layer's piecewise-polynomial coefficient table ``A`` (``(in * G * (k + 1), out)``, see
:meth:`~kanpde.models.kan.layer.KANLayer.table`) is read by every point at ``K = in * (k + 1)``
rows, ``k + 1`` consecutive rows per input (its knot interval's block).  The forward contraction
``out[n, q] = sum_e vals[n, e] A[col[n, e], q]`` (:func:`spmm`) and its two partners
``<y[n], A[col[n, e]]>`` (:func:`sddmm`) and ``sum_n vals[n, e] y[n]`` into table rows
(:func:`spmmt`) are the three partial derivatives of one trilinear form, so the autograd nodes
:class:`SpMM`, :class:`SDDMM`, :class:`SpMMT` are differentiable to any order.  They run in the
compiled kernels, as a CSR sparse-dense product, or on gathered table rows, chunk by chunk, as
:mod:`~kanpde.models.kan.dispatch` decides (:class:`RowPattern` asks it once).
"""
from __future__ import annotations

import warnings

import torch

from . import dispatch
from .graph import input_needed

__all__ = ["RowPattern", "CHUNK", "spmm", "sddmm", "spmmt", "SpMM", "SDDMM", "SpMMT"]

_CSR_WARNED = False


#: gathered table rows are processed in chunks of about this many numbers (cache-sized, and
#: bounded memory on every device)
CHUNK = 1 << 18


class RowPattern:
    """Where the nonzeros of a local spline contraction sit.

    Each of ``rows`` rows touches ``P`` blocks of ``k1`` consecutive table rows: entry
    ``e = p * k1 + m`` (``0 <= m < k1``) of row ``n`` reads table row ``block[n, p] * k1 + m``.
    The table has ``n_blocks * k1`` rows.  A contraction may stack ``c`` channels per row (the
    jet's value, gradient and Hessian channels), all reading the same table rows.

    ``block``: ``(rows, P)`` int64.  Derived index structures are built once and cached here, so
    every backward pass through the same forward reuses them.
    """

    def __init__(self, block: torch.Tensor, k1: int, n_blocks: int, width: int):
        self.block = block
        self.rows, self.P = block.shape
        self.k1 = k1
        self.K = self.P * k1
        self.n_blocks = n_blocks
        self.R = n_blocks * k1
        # on CPU the three products run in the compiled kernel where it builds; else the forward
        # product runs as a CSR sparse-dense product (MKL) on CPU for vector-valued tables, and
        # everything else on gathered table rows, a chunk of rows at a time (dispatch decides)
        self.backend, self.kernels = dispatch.row_product_backend(block, width)
        if self.backend == "native":
            self.block = block.contiguous()  # the kernels index it by point and input
        self._csr: dict[int, tuple] = {}

    def csr(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(crow, col)`` of the ``(rows * c, R)`` matrix whose row ``n * c + ci`` is row ``n``."""
        if c not in self._csr:
            dev = self.block.device
            nnz = self.rows * c * self.K
            it = torch.int32 if nnz < 2**31 - 1 else torch.int64
            col = (self.block.unsqueeze(-1) * self.k1 + torch.arange(self.k1, device=dev)).reshape(self.rows, 1, self.K)
            col = col.expand(self.rows, c, self.K).reshape(-1).to(it)
            crow = torch.arange(0, nnz + 1, self.K, device=dev, dtype=it)
            self._csr[c] = (crow, col)
        return self._csr[c]

    def chunks(self, per_row: int):
        """Row slices holding about ``CHUNK`` gathered numbers each (one empty slice for no rows)."""
        if self.rows == 0:
            return [slice(0, 0)]
        step = max(1, CHUNK // max(per_row, 1))
        return [slice(i, min(i + step, self.rows)) for i in range(0, self.rows, step)]

    def gather(self, table: torch.Tensor, rows: slice = slice(None), out: torch.Tensor | None = None) -> torch.Tensor:
        """Rows of the contiguous ``table`` ``(R, O)`` read by the given rows: ``(rows, K, O)``
        (written into ``out``, a flat buffer of at least that size, when given)."""
        o = table.shape[1]
        block = self.block[rows].reshape(-1)
        n = block.shape[0] // self.P
        flat = table.view(self.n_blocks, self.k1 * o)
        if out is None:
            return flat.index_select(0, block).view(n, self.K, o)
        buf = out[:block.shape[0] * self.k1 * o].view(block.shape[0], self.k1 * o)
        torch.index_select(flat, 0, block, out=buf)
        return buf.view(n, self.K, o)


def _sparse_csr(crow, col, values, size):
    global _CSR_WARNED
    if _CSR_WARNED:
        return torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)
    with warnings.catch_warnings():
        # torch warns once per process that CSR support is "beta"; the products used here are stable
        warnings.simplefilter("ignore")
        out = torch.sparse_csr_tensor(crow, col, values, size=size, check_invariants=False)
    _CSR_WARNED = True
    return out


def _compiled(pat: RowPattern, t: torch.Tensor) -> bool:
    """Whether the compiled row products serve this pattern at tensors like ``t``."""
    return pat.kernels is not None and t.dtype in (torch.float32, torch.float64)


def spmm(vals: torch.Tensor, table: torch.Tensor, pat: RowPattern) -> torch.Tensor:
    """``out[n, c, :] = sum_e vals[n, c, e] table[col[n, e]]``: ``(rows, c, K), (R, O) -> (rows, c, O)``."""
    rows, c, _ = vals.shape
    o = table.shape[1]
    table = table.contiguous()
    if _compiled(pat, table):
        dispatch.row_product_used("native")
        return pat.kernels.row_spmm(vals.contiguous(), table, pat.block, pat.k1)
    dispatch.row_product_used(pat.backend)
    if pat.backend == "csr":
        crow, col = pat.csr(c)
        a = _sparse_csr(crow, col, vals.reshape(-1), (rows * c, pat.R))
        return torch.sparse.mm(a, table).view(rows, c, o)
    if o == 1:
        return (vals * pat.gather(table).view(rows, 1, pat.K)).sum(-1, keepdim=True)
    out = vals.new_empty(rows, c, o)
    chunks = pat.chunks(pat.K * o)
    work = table.new_empty(min(rows, chunks[0].stop) * pat.K * o)  # reused: one allocation
    for sl in chunks:
        torch.bmm(vals[sl], pat.gather(table, sl, work), out=out[sl])
    return out


def sddmm(y: torch.Tensor, table: torch.Tensor, pat: RowPattern) -> torch.Tensor:
    """``out[n, c, e] = <y[n, c], table[col[n, e]]>``: ``(rows, c, O), (R, O) -> (rows, c, K)``."""
    rows, c, o = y.shape
    table = table.contiguous()
    if _compiled(pat, table):
        dispatch.row_product_used("native")
        return pat.kernels.row_sddmm(y.contiguous(), table, pat.block, pat.k1)
    dispatch.row_product_used("gather")
    if o == 1:
        return y * pat.gather(table).view(rows, 1, pat.K)
    out = y.new_empty(rows, c, pat.K)
    chunks = pat.chunks(pat.K * o)
    work = table.new_empty(min(rows, chunks[0].stop) * pat.K * o)
    for sl in chunks:
        torch.bmm(y[sl], pat.gather(table, sl, work).transpose(1, 2), out=out[sl])
    return out


def spmmt(vals: torch.Tensor, y: torch.Tensor, pat: RowPattern) -> torch.Tensor:
    """``out[r] = sum_{n, c, e: col[n, e] = r} vals[n, c, e] y[n, c]``: ``-> (R, O)``."""
    rows, c, o = y.shape
    if _compiled(pat, y):
        dispatch.row_product_used("native")
        return pat.kernels.row_spmmt(vals.contiguous(), y.contiguous(), pat.block, pat.k1, pat.R)
    dispatch.row_product_used("gather")
    out = y.new_zeros(pat.n_blocks, pat.k1 * o)
    if o == 1:
        z = (vals * y).sum(1)  # (rows, K)
        out.index_add_(0, pat.block.reshape(-1), z.reshape(rows * pat.P, pat.k1))
        return out.view(pat.R, 1)
    chunks = pat.chunks(pat.K * o)
    step = min(rows, chunks[0].stop)
    work = y.new_empty(step * pat.K * o)
    work_t = y.new_empty(step * pat.K * c)
    for sl in chunks:
        v = vals[sl]
        n = v.shape[0]
        vt = work_t[:n * pat.K * c].view(n, pat.K, c)
        vt.copy_(v.transpose(1, 2))
        z = work[:n * pat.K * o].view(n, pat.K, o)
        torch.bmm(vt, y[sl], out=z)
        out.index_add_(0, pat.block[sl].reshape(-1), z.view(-1, pat.k1 * o))
    return out.view(pat.R, o)


class SpMM(torch.autograd.Function):
    """Differentiable :func:`spmm`; its partial derivatives are :class:`SDDMM` and :class:`SpMMT`."""

    @staticmethod
    def forward(ctx, vals, table, pat):
        ctx.save_for_backward(vals, table)
        ctx.pat = pat
        return spmm(vals, table, pat)

    @staticmethod
    def backward(ctx, grad):
        vals, table = ctx.saved_tensors
        d_vals = SDDMM.apply(grad, table, ctx.pat) if input_needed(ctx, 0, vals) else None
        d_table = SpMMT.apply(vals, grad, ctx.pat) if input_needed(ctx, 1, table) else None
        return d_vals, d_table, None


class SDDMM(torch.autograd.Function):
    """Differentiable :func:`sddmm`."""

    @staticmethod
    def forward(ctx, y, table, pat):
        ctx.save_for_backward(y, table)
        ctx.pat = pat
        return sddmm(y, table, pat)

    @staticmethod
    def backward(ctx, grad):
        y, table = ctx.saved_tensors
        d_y = SpMM.apply(grad, table, ctx.pat) if input_needed(ctx, 0, y) else None
        d_table = SpMMT.apply(grad, y, ctx.pat) if input_needed(ctx, 1, table) else None
        return d_y, d_table, None


class SpMMT(torch.autograd.Function):
    """Differentiable :func:`spmmt`."""

    @staticmethod
    def forward(ctx, vals, y, pat):
        ctx.save_for_backward(vals, y)
        ctx.pat = pat
        return spmmt(vals, y, pat)

    @staticmethod
    def backward(ctx, grad):
        vals, y = ctx.saved_tensors
        d_vals = SDDMM.apply(y, grad, ctx.pat) if input_needed(ctx, 0, vals) else None
        d_y = SpMM.apply(vals, grad, ctx.pat) if input_needed(ctx, 1, y) else None
        return d_vals, d_y, None
