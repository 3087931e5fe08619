"""B-spline Kolmogorov–Arnold networks (KAN paper, Liu et al. 2024, arXiv 2404.19756).

Every edge ``p -> q`` of a :class:`KANLayer` carries a learnable univariate function (eq. 2.10)

    phi_qp(x) = w_b[q, p] * b(x) + w_s[q, p] * sum_i c[q, p, i] B_i(x),      b = silu,

and node ``q`` sums its incoming edges (plus an optional bias).  ``B_i`` are the degree-``k``
B-splines (``k = spline_order``) on a knot vector of ``G + 2k + 1`` knots per input: ``G + 1``
knots spanning the grid range plus ``k`` more beyond each end.

Local evaluation
----------------
A degree-``k`` spline is a polynomial of degree ``k`` on each knot interval, and only the
``k + 1`` B-splines ``B_j .. B_{j+k}`` are nonzero on interval ``j``.  The layer therefore
works in piecewise-polynomial form: on interval ``j`` of input ``p``

    sum_i c[q, p, i] B_i(x) = sum_{m=0}^{k} A[p, j, m, q] u^m,   u = (x - t_j) / (t_{j+1} - t_j),

where ``A[p, j] = M[p, j]^T c[q, p, j:j+k+1]`` and ``M[p, j]`` (``(k+1, k+1)``: basis ``r``,
power ``m``) holds the polynomial pieces of the ``k + 1`` local B-splines.  ``M`` is computed
once per grid by the Cox–de Boor recursion run on polynomial coefficients over only the
``2k + 2`` knots around each interval; on a uniform grid all intervals share one ``M`` (the
cardinal B-spline pieces).  A forward pass then needs, per input value, only the interval
index (``floor((x - t_0) / h)`` on a uniform grid, ``searchsorted`` otherwise), the local
coordinate ``u`` and its ``k + 1`` powers; the ``k + 1`` table rows ``A[p, j, :, :]`` are
contracted against them.  The cost per point is independent of the grid size ``G``.  Inputs
outside the grid use the end intervals' polynomials (clamped interval index), so the network is
smooth, finite and has nonzero derivatives everywhere.

Two contraction paths, both differentiable to any order (nested autograd for Laplacians, then
a backward pass to the parameters) because each is a closed family of custom autograd
functions whose derivatives are members of the same family:

- *edge by edge* (layers with ``in * out * (k + 1) <= 640``), on planes with the points
  innermost: the ``k + 1`` table rows of every edge input are gathered once per table, plane
  by plane (``(k + 1, out, in * N)``), and Horner's scheme gives the edge splines and any of
  their ``h``-derivatives as ``(out, in, N)`` planes.  A layer's forward pass is one node,
  :class:`_SumsF` (``sum_p phi_qp(h_p)``, base branch included); it, :class:`_SumsB`
  (``sum_q y_q phi^(r)_qp``) and :class:`_SumsT` (the adjoint in the table and ``w_b``) are
  the partial derivatives of one trilinear form, so every nested backward pass adds a few
  such nodes, each one cached edge evaluation plus one contraction.  Inputs enter as
  contiguous planes (:class:`_Transpose`), and layer outputs leave as transposed views of
  ``(out, N)`` planes, which the next layer reads without a copy.
- *row product* (:class:`_SpMM`, wide layers): ``out[n, q] = sum_e vals[n, e] A[col[n, e], q]``
  with ``K = in * (k + 1)`` nonzeros per row, without per-edge tensors.  It and its partners
  ``<y[n], A[col[n, e]]>`` (:class:`_SDDMM`) and ``sum_n vals[n, e] y[n]`` into table rows
  (:class:`_SpMMT`) are the three partial derivatives of one trilinear form.  The product runs
  as a CSR sparse-dense product on CPU and on gathered rows, chunk by chunk, otherwise.  Their
  second-order jet is one node, :class:`_RowJet`, with the base weights folded into the table
  as one more row per block; on CPU it runs in a compiled kernel (:class:`_NativeRowJet`,
  ``csrc/kan_jet.cpp``, built on first use by :mod:`kanpde.models._native`) when one builds.

Forward derivatives
-------------------
``KANLayer.forward_jet`` maps a :class:`~kanpde.models.base.Jet` (value, gradient, Hessian
diagonal with respect to the network input) to the next one exactly:

    d out_q / dx_j    = sum_p phi'_qp(h_p) dh_p/dx_j
    d2 out_q / dx_j^2 = sum_p phi''_qp(h_p) (dh_p/dx_j)^2 + phi'_qp(h_p) d2h_p/dx_j^2,

with ``phi'`` and ``phi''`` from the derivatives of the local powers ``u^m`` (same table rows)
and of the base activation in closed form.  The first layer uses that ``dx_p/dx_j`` is the
identity (:meth:`KANLayer.forward_jet_input`): its gradient and Hessian diagonal are single
edge derivatives.

For second-order jets of edge-by-edge layers (the training path) the whole layer is one
autograd node, :class:`_EdgeJet`, with its backward pass written out (differentiable once, as
the loss on a Laplacian needs).  It works input-major with the points innermost: the table is
gathered plane by plane (``(k + 1, out, in * N)``), the edge derivatives, jet products and the
table adjoint are elementwise operations on contiguous planes, and the gradient/Hessian
channels travel between such layers as ``(out, d, N)`` planes (returned as ``(N, out, d)``
views).  On CPU the same node runs in a compiled kernel (:class:`_NativeEdgeJet`) when one
builds, as do the table adjoint of nested autograd (:func:`_planar_adjoint`) and the wide
layers' row products (:func:`_spmm`, :func:`_sddmm`, :func:`_spmmt`).
"""
from __future__ import annotations

import math
import numbers
import warnings
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Jet, Model, check_input, check_dtype, check_int

__all__ = ["KANLayer", "KAN", "BASE_ACTIVATIONS", "interval_polynomials"]


# --------------------------------------------------------------------------------------------
# base activations b(x) with their first two derivatives in closed form
# --------------------------------------------------------------------------------------------
def _silu_jet(z: torch.Tensor, order: int):
    s = torch.sigmoid(z)
    d1 = d2 = None
    if order >= 1:
        d1 = s * (1 + z * (1 - s))
        if order >= 2:
            d2 = s * (1 - s) * (2 + z * (1 - 2 * s))
    return F.silu(z), d1, d2


def _tanh_jet(z: torch.Tensor, order: int):
    t = torch.tanh(z)
    d1 = 1 - t * t if order >= 1 else None
    d2 = -2 * t * d1 if order >= 2 else None
    return t, d1, d2


def _identity_jet(z: torch.Tensor, order: int):
    d1 = torch.ones_like(z) if order >= 1 else None
    d2 = torch.zeros_like(z) if order >= 2 else None
    return z, d1, d2


#: name -> (b, jet function (z, order) -> (b(z), b'(z) | None, b''(z) | None)); ``"none"`` has no
#: base branch at all (pure spline edges, no ``base_weight`` parameter)
BASE_ACTIVATIONS: dict[str, tuple[Callable | None, Callable | None]] = {
    "silu": (F.silu, _silu_jet),
    "tanh": (torch.tanh, _tanh_jet),
    "identity": (lambda z: z, _identity_jet),
    "none": (None, None),
}


# --------------------------------------------------------------------------------------------
# argument checks
# --------------------------------------------------------------------------------------------
def _check_real(value, name: str, lo: float | None = None, hi: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    value = float(value)
    if not math.isfinite(value) or (lo is not None and value < lo) or (hi is not None and value > hi):
        allowed = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}" if lo is not None else "finite"
        raise ValueError(f"{name} must be a finite number {allowed}, got {value!r}")
    return value


def _check_grid_range(grid_range) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in grid_range)
    except (TypeError, ValueError):
        raise TypeError(f"grid_range must be a pair of numbers (lo, hi) with lo < hi, got {grid_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"grid_range must be a pair of finite numbers (lo, hi) with lo < hi, got {grid_range!r}")
    return lo, hi


def _check_activation(name) -> str:
    if not isinstance(name, str) or name.lower() not in BASE_ACTIVATIONS:
        raise ValueError(f"base_activation must be one of {sorted(BASE_ACTIVATIONS)}, got {name!r}")
    return name.lower()


# --------------------------------------------------------------------------------------------
# the local contraction and its two partners
# --------------------------------------------------------------------------------------------
#: None, "gather" or "csr": override the automatic choice of the row product (tests run both)
_FORCE_BACKEND: str | None = None
_CSR_WARNED = False


#: gathered table rows are processed in chunks of about this many numbers (cache-sized, and
#: bounded memory on every device)
_CHUNK = 1 << 18


class _Pattern:
    """Where the nonzeros of a local spline contraction sit.

    Each of ``rows`` rows touches ``P`` blocks of ``k1`` consecutive table rows: entry
    ``e = p * k1 + m`` (``0 <= m < k1``) of row ``n`` reads table row ``blk[n, p] * k1 + m``.
    The table has ``n_blocks * k1`` rows.  A contraction may stack ``c`` channels per row (the
    jet's value, gradient and Hessian channels), all reading the same table rows.

    ``blk``: ``(rows, P)`` int64.  Derived index structures are built once and cached here, so
    every backward pass through the same forward reuses them.
    """

    def __init__(self, blk: torch.Tensor, k1: int, n_blocks: int, width: int):
        self.blk = blk
        self.rows, self.P = blk.shape
        self.k1 = k1
        self.K = self.P * k1
        self.n_blocks = n_blocks
        self.R = n_blocks * k1
        # on CPU the three products run in the compiled kernel where it builds; else the forward
        # product runs as a CSR sparse-dense product (MKL) on CPU for vector-valued tables, and
        # everything else on gathered table rows, a chunk of rows at a time
        self.kernels = None
        if _FORCE_BACKEND is not None:
            self.backend = _FORCE_BACKEND
        elif blk.device.type == "cpu" and (kernels := _native_rows()) is not None:
            self.backend, self.kernels = "native", kernels
            self.blk = blk.contiguous()  # the kernels index it by point and input
        elif blk.device.type != "cpu" or width == 1:
            self.backend = "gather"
        else:
            self.backend = "csr"
        self._csr: dict[int, tuple] = {}

    def csr(self, c: int) -> tuple[torch.Tensor, torch.Tensor]:
        """``(crow, col)`` of the ``(rows * c, R)`` matrix whose row ``n * c + ci`` is row ``n``."""
        if c not in self._csr:
            dev = self.blk.device
            nnz = self.rows * c * self.K
            it = torch.int32 if nnz < 2**31 - 1 else torch.int64
            col = (self.blk.unsqueeze(-1) * self.k1 + torch.arange(self.k1, device=dev)).reshape(self.rows, 1, self.K)
            col = col.expand(self.rows, c, self.K).reshape(-1).to(it)
            crow = torch.arange(0, nnz + 1, self.K, device=dev, dtype=it)
            self._csr[c] = (crow, col)
        return self._csr[c]

    def chunks(self, per_row: int):
        """Row slices holding about ``_CHUNK`` gathered numbers each (one empty slice for no rows)."""
        if self.rows == 0:
            return [slice(0, 0)]
        step = max(1, _CHUNK // max(per_row, 1))
        return [slice(i, min(i + step, self.rows)) for i in range(0, self.rows, step)]

    def gather(self, table: torch.Tensor, rows: slice = slice(None), out: torch.Tensor | None = None) -> torch.Tensor:
        """Rows of the contiguous ``table`` ``(R, O)`` read by the given rows: ``(rows, K, O)``
        (written into ``out``, a flat buffer of at least that size, when given)."""
        o = table.shape[1]
        blk = self.blk[rows].reshape(-1)
        n = blk.shape[0] // self.P
        flat = table.view(self.n_blocks, self.k1 * o)
        if out is None:
            return flat.index_select(0, blk).view(n, self.K, o)
        buf = out[:blk.shape[0] * self.k1 * o].view(blk.shape[0], self.k1 * o)
        torch.index_select(flat, 0, blk, out=buf)
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


def _native_rows():
    """The compiled kernels for the row products (CPU), or ``None``."""
    from ._native import jet_kernels
    return jet_kernels()


def _on_kernel(pat: _Pattern, t: torch.Tensor) -> bool:
    return pat.kernels is not None and t.dtype in (torch.float32, torch.float64)


def _spmm(vals: torch.Tensor, table: torch.Tensor, pat: _Pattern) -> torch.Tensor:
    """``out[n, c, :] = sum_e vals[n, c, e] table[col[n, e]]``: ``(rows, c, K), (R, O) -> (rows, c, O)``."""
    rows, c, _ = vals.shape
    o = table.shape[1]
    table = table.contiguous()
    if _on_kernel(pat, table):
        return pat.kernels.row_spmm(vals.contiguous(), table, pat.blk, pat.k1)
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


def _sddmm(y: torch.Tensor, table: torch.Tensor, pat: _Pattern) -> torch.Tensor:
    """``out[n, c, e] = <y[n, c], table[col[n, e]]>``: ``(rows, c, O), (R, O) -> (rows, c, K)``."""
    rows, c, o = y.shape
    table = table.contiguous()
    if _on_kernel(pat, table):
        return pat.kernels.row_sddmm(y.contiguous(), table, pat.blk, pat.k1)
    if o == 1:
        return y * pat.gather(table).view(rows, 1, pat.K)
    out = y.new_empty(rows, c, pat.K)
    chunks = pat.chunks(pat.K * o)
    work = table.new_empty(min(rows, chunks[0].stop) * pat.K * o)
    for sl in chunks:
        torch.bmm(y[sl], pat.gather(table, sl, work).transpose(1, 2), out=out[sl])
    return out


def _spmmt(vals: torch.Tensor, y: torch.Tensor, pat: _Pattern) -> torch.Tensor:
    """``out[r] = sum_{n, c, e: col[n, e] = r} vals[n, c, e] y[n, c]``: ``-> (R, O)``."""
    rows, c, o = y.shape
    if _on_kernel(pat, y):
        return pat.kernels.row_spmmt(vals.contiguous(), y.contiguous(), pat.blk, pat.k1, pat.R)
    out = y.new_zeros(pat.n_blocks, pat.k1 * o)
    if o == 1:
        z = (vals * y).sum(1)  # (rows, K)
        out.index_add_(0, pat.blk.reshape(-1), z.reshape(rows * pat.P, pat.k1))
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
        out.index_add_(0, pat.blk[sl].reshape(-1), z.view(-1, pat.k1 * o))
    return out.view(pat.R, o)


def _needed(ctx, index: int, t: torch.Tensor) -> bool:
    """Whether the running backward pass needs the gradient of input ``index`` (``t``).

    ``ctx.needs_input_grad`` only says whether ``t`` requires grad; a nested
    ``torch.autograd.grad(..., inputs=x)`` (a Laplacian) does not need the parameter side, so
    skip it when the engine will not run ``t``'s node (its ``grad_fn``, or for a leaf such as a
    base weight its gradient accumulator).
    """
    if not ctx.needs_input_grad[index]:
        return False
    try:
        fn = t.grad_fn if t.grad_fn is not None else torch.autograd.graph.get_gradient_edge(t).node
        return bool(torch._C._will_engine_execute_node(fn))
    except (AttributeError, RuntimeError):  # private API: be conservative
        return True


class _SpMM(torch.autograd.Function):
    """Differentiable :func:`_spmm`; its partial derivatives are :class:`_SDDMM` and :class:`_SpMMT`."""

    @staticmethod
    def forward(ctx, vals, table, pat):
        ctx.save_for_backward(vals, table)
        ctx.pat = pat
        return _spmm(vals, table, pat)

    @staticmethod
    def backward(ctx, grad):
        vals, table = ctx.saved_tensors
        d_vals = _SDDMM.apply(grad, table, ctx.pat) if _needed(ctx, 0, vals) else None
        d_table = _SpMMT.apply(vals, grad, ctx.pat) if _needed(ctx, 1, table) else None
        return d_vals, d_table, None


class _SDDMM(torch.autograd.Function):
    """Differentiable :func:`_sddmm`."""

    @staticmethod
    def forward(ctx, y, table, pat):
        ctx.save_for_backward(y, table)
        ctx.pat = pat
        return _sddmm(y, table, pat)

    @staticmethod
    def backward(ctx, grad):
        y, table = ctx.saved_tensors
        d_y = _SpMM.apply(grad, table, ctx.pat) if _needed(ctx, 0, y) else None
        d_table = _SpMMT.apply(grad, y, ctx.pat) if _needed(ctx, 1, table) else None
        return d_y, d_table, None


class _SpMMT(torch.autograd.Function):
    """Differentiable :func:`_spmmt`."""

    @staticmethod
    def forward(ctx, vals, y, pat):
        ctx.save_for_backward(vals, y)
        ctx.pat = pat
        return _spmmt(vals, y, pat)

    @staticmethod
    def backward(ctx, grad):
        vals, y = ctx.saved_tensors
        d_vals = _SDDMM.apply(y, grad, ctx.pat) if _needed(ctx, 0, vals) else None
        d_y = _SpMM.apply(vals, grad, ctx.pat) if _needed(ctx, 1, y) else None
        return d_vals, d_y, None


def _tensor_key(t: torch.Tensor) -> tuple:
    """Cache key of a tensor's current contents; a cache must also hold ``t`` itself, so that
    its ``id`` cannot be reused by another tensor while the entry lives."""
    return id(t), t._version, t.data_ptr()


class _Local:
    """A batch of layer inputs located on the grid.

    ``blk`` ``(N, in)``: block ``p * G + j`` of every input value (``j`` its interval); ``u``:
    local coordinate (no graph); ``invh``: ``du/dh``, ``(in,)`` (uniform grid) or ``(N, in)``.
    Caches what every (nested) backward pass through the same evaluation reuses: powers of
    ``u``, the gathered table rows and the sparsity pattern of the row contraction.
    """

    def __init__(self, blk: torch.Tensor, u: torch.Tensor, invh: torch.Tensor, k: int, n_blocks: int):
        self.blk, self.invh = blk, invh.detach()
        self.n, self.i = blk.shape
        self.k, self.k1 = k, k + 1
        self.n_blocks = n_blocks
        self.u = u.detach().reshape(-1, 1)  # (N * in, 1)
        self._pow: list[torch.Tensor | None] = [None, self.u]  # u^0 made on demand
        self._ih: torch.Tensor | None = None
        self._gathered: list[tuple] = []
        self._evals: dict = {}
        self._sums: dict = {}  # backward sums done on this evaluation, see _once
        self._base: list[torch.Tensor] = []
        self.base: str | None = None  # base activation, for base_planes
        self._rows: dict[int, _Pattern] = {}  # row patterns by rows per block
        self.ht: torch.Tensor | None = None  # the inputs, (in, N), when located input-major
        self._kargs: tuple | None = None

    def base_planes(self, r: int) -> torch.Tensor:
        """``b^(r)(ht)``, ``(in, N)``, of the layer's base activation ``self.base`` (cached;
        ``self`` input-major)."""
        if len(self._base) <= r:
            # value-only passes need b, first-order training b', Laplacians up to the third
            self._base = _base_derivatives(self.base, self.ht, r if r <= 1 else max(r, 3))
        return self._base[r]

    def kernel_args(self) -> tuple:
        """``(u, du/dh, blk, ht, aux, kind)`` for the compiled sums kernels (``self``
        input-major): ``kind`` the base activation's code (0: none the kernels know), ``aux``
        ``sigma(ht)`` (silu) or ``tanh(ht)`` (tanh); cached."""
        if self._kargs is None:
            kind = _BASE_KINDS.get(self.base, 0)
            aux = torch.sigmoid(self.ht) if kind == 1 else torch.tanh(self.ht) if kind == 2 else self.u.new_empty(0)
            i, n = self.blk.shape  # input-major
            self._kargs = (self.u.view(i, n), self.invh.expand(i, n), self.blk, self.ht, aux, kind)
        return self._kargs

    def power(self, m: int) -> torch.Tensor:
        """``u^m``, ``(N * in, 1)``."""
        if m == 0:
            if self._pow[0] is None:
                self._pow[0] = torch.ones_like(self.u)
            return self._pow[0]
        while len(self._pow) <= m:
            self._pow.append(self._pow[-1] * self.u)
        return self._pow[m]

    def invh_pow(self, r: int) -> torch.Tensor:
        """``(du/dh)^r`` per edge input, ``(N * in, 1)``."""
        if self._ih is None:
            self._ih = self.invh.expand(self.n, self.i).reshape(-1, 1)
        return self._ih if r == 1 else self._ih.pow(r)

    def planes(self, table: torch.Tensor) -> torch.Tensor:
        """Table rows of every edge input, plane by plane: ``(k + 1, O, in * N)`` with
        ``[m, :, p * N + n]`` = row ``blk[p, n] * (k + 1) + m`` (``self`` input-major).  The last
        few tables are cached: nested backward passes evaluate the same table (and its
        adjoints) at several derivative orders."""
        key = _tensor_key(table)
        for entry in self._gathered:
            if entry[0] == key:
                return entry[2]
        o, e_n = table.shape[1], self.n * self.i
        tt = table.reshape(self.n_blocks, self.k1, o).permute(1, 2, 0).reshape(self.k1 * o, self.n_blocks)
        out = tt.gather(1, self.blk.view(1, e_n).expand(self.k1 * o, e_n)).view(self.k1, o, e_n)
        self._gathered = [(key, table, out)] + self._gathered[:2]  # holds `table`: its id stays unique
        return out

    def row_pattern(self, width: int) -> "_Pattern":
        """The row pattern of the layer table (``k + 1`` rows per block)."""
        return self.block_pattern(self.k1, width)

    def block_pattern(self, per_block: int, width: int) -> "_Pattern":
        """Row pattern for tables with ``per_block`` rows per block (cached)."""
        if per_block not in self._rows:
            self._rows[per_block] = _Pattern(self.blk, per_block, self.n_blocks, width)
        return self._rows[per_block]


class _EdgeSpline(torch.autograd.Function):
    """Edge splines and their ``h``-derivatives, edge by edge, on planes (points innermost).

    ``apply(ht, table, loc, r0, count)`` returns ``count`` tensors ``(O, in, N)``; number ``i``
    holds, at ``ht[p, n]``, the ``(r0 + i)``-th derivative in ``h`` of input ``p``'s splines (one
    per table column: ``sum_m table[blk[p, n] * (k + 1) + m] u^m``).  ``ht`` ``(in, N)`` (the
    layer input transposed), ``table`` ``(in * G * (k + 1), O)``, ``loc`` located input-major
    (:meth:`KANLayer._locate_t`).  Its partial derivatives are again :class:`_EdgeSpline` (one
    order higher) and :class:`_EdgeSplineT`, so it is differentiable to any order; every
    elementwise product runs along contiguous rows of points.
    """

    @staticmethod
    def forward(ctx, ht, table, loc, r0, count):
        ctx.save_for_backward(ht, table)
        ctx.loc, ctx.r0, ctx.count = loc, r0, count
        ctx.set_materialize_grads(False)
        o = table.shape[1]
        return tuple(e.view(o, loc.n, loc.i) for e in _planar_eval(loc, table, count, r0))

    @staticmethod
    def backward(ctx, *grads):
        ht, table = ctx.saved_tensors
        loc, r0 = ctx.loc, ctx.r0
        d_h = d_table = None
        used = [i for i, g in enumerate(grads) if g is not None and r0 + i <= loc.k]
        if not used:
            return None, None, None, None, None
        if _needed(ctx, 0, ht) and r0 + used[0] < loc.k:
            lo, hi = used[0], used[-1] + 1
            nxt = _EdgeSpline.apply(ht, table, loc, r0 + 1 + lo, hi - lo)
            for i in used:
                if r0 + i < loc.k:
                    term = (grads[i] * nxt[i - lo]).sum(0)
                    d_h = term if d_h is None else d_h + term
        if _needed(ctx, 1, table):
            d_table = _EdgeSplineT.apply(ht, loc, r0, *grads)
        return d_h, d_table, None, None, None


class _EdgeSplineT(torch.autograd.Function):
    """Adjoint of :class:`_EdgeSpline` in the table: ``apply(ht, loc, r0, *ys)`` with ``ys[i]``
    ``(O, in, N)`` or ``None`` -> ``(in * G * (k + 1), O)``."""

    @staticmethod
    def forward(ctx, ht, loc, r0, *ys):
        ctx.save_for_backward(ht, *ys)
        ctx.loc, ctx.r0, ctx.count = loc, r0, len(ys)
        ctx.set_materialize_grads(False)
        o = next(y for y in ys if y is not None).shape[0]
        return _planar_adjoint(loc, [None] * r0 + [None if y is None else _flat_planes(y) for y in ys], o)

    @staticmethod
    def backward(ctx, grad):
        ht, *ys = ctx.saved_tensors
        loc, r0, count = ctx.loc, ctx.r0, ctx.count
        if grad is None:
            return (None,) * (3 + count)
        present = [i for i, y in enumerate(ys) if y is not None and r0 + i <= loc.k]
        d_h = None
        d_ys = [None] * count
        if present and r0 + present[0] < loc.k and _needed(ctx, 0, ht):
            lo, hi = present[0], present[-1] + 1
            nxt = _EdgeSpline.apply(ht, grad, loc, r0 + 1 + lo, hi - lo)
            for i in present:
                if r0 + i < loc.k:
                    term = (ys[i] * nxt[i - lo]).sum(0)
                    d_h = term if d_h is None else d_h + term
        want = [i for i in present if _needed(ctx, 3 + i, ys[i])]
        if want:
            lo, hi = want[0], want[-1] + 1
            cur = _EdgeSpline.apply(ht, grad, loc, r0 + lo, hi - lo)
            for i in want:
                d_ys[i] = cur[i - lo]
        return (d_h, None, None, *d_ys)


def _edge_planes(loc: _Local, table: torch.Tensor, r: int) -> torch.Tensor:
    """``E_r`` of :func:`_planar_eval` as ``(O, in, N)`` planes, cached on ``loc`` per table and
    order (the nested passes of a Laplacian ask for the same ones repeatedly).  Internal: the
    cached tensors are never handed out as autograd outputs."""
    key = (*_tensor_key(table), r)
    hit = loc._evals.get(key)
    if hit is not None:
        return hit[1]
    e = _planar_eval(loc, table, 1, r)[0].view(table.shape[1], loc.n, loc.i)
    loc._evals[key] = (table, e)  # holds `table`, so its id stays unique
    return e


#: the sums kernels' inner loops: 0 by the output width, 1 over output columns, 2 over points (tests)
_SUMS_PATH = 0


def _sums_kernels_for(t: torch.Tensor, k: int, base: str):
    """The compiled sums kernels (``sums_forward``, ``sums_backward``, ``sums_adjoint`` in
    ``csrc/kan_sums.cpp``) for a layer of spline order ``k`` and base activation ``base`` at
    tensors like ``t``, or ``None`` (then the torch ops run): CPU tensors of float32/float64,
    ``k <= 8`` and a base activation the kernels know (also the jet kernels' conditions, see
    :func:`_native_jet`)."""
    if t.device.type != "cpu" or t.dtype not in (torch.float32, torch.float64) or k > 8:
        return None
    if _FORCE_BACKEND is not None or not (base == "none" or base in _BASE_KINDS):  # tests pin torch
        return None
    from ._native import jet_kernels
    return jet_kernels()


def _sums_kernels(loc: _Local, t: torch.Tensor, base: bool, r: int):
    """:func:`_sums_kernels_for` for one sums node of derivative order ``r`` (the kernels form
    ``r <= 3``); ``base``: whether the node has a base branch."""
    return None if r > 3 else _sums_kernels_for(t, loc.k, loc.base if base else "none")


def _wb_t(wb: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """``wb`` transposed and contiguous, ``(in, O)``, for the sums kernels (empty: no base branch)."""
    return like.new_empty(0) if wb is None else wb.t().contiguous()


def _once(loc: _Local, r: int, operands: tuple, compute) -> torch.Tensor:
    """``compute()``, the backward sums ``B_r`` of this evaluation at ``operands`` ``(y, table,
    wb)``, once: nested backward passes ask for the same one repeatedly (each pass of a
    Laplacian differentiates the same first-derivative node, which asks for its
    ``B_{r+1}(y)``).  Operands match by storage, layout and version; the record keeps detached
    aliases (no reference into the autograd graph, so no cycle through the nodes that hold
    ``loc``), and a hit returns a copy, never an earlier node's output."""
    key = (r,) + tuple(None if t is None else (t.data_ptr(), tuple(t.shape), t.stride(), t.dtype)
                            for t in operands)
    hit = loc._sums.get(key)
    if hit is not None and all(h is None or h._version == v for h, v in zip(*hit[:2])):
        return hit[2].clone()
    out = compute()
    if out is None:  # vanishes: nothing to keep
        return out
    held = tuple(None if t is None else t.detach() for t in operands) + (out.detach(),)
    loc._sums[key] = (held, tuple(None if h is None else h._version for h in held), held[-1])
    return out


def _sums_forward(z, table, wb, loc, r):
    """``out[q, n] = sum_p z[p, n] phi_r[q, p, n]`` (``z`` ``None``: ones), ``(O, N)``."""
    t = table if table is not None else wb
    kern = _sums_kernels(loc, t, wb is not None, r)
    if kern is not None:
        o = wb.shape[0] if table is None else table.shape[1]
        tab = t.new_empty(0) if table is None else table.contiguous()
        return kern.sums_forward(*loc.kernel_args(), tab, _wb_t(wb, t), o, loc.k, r, z, _SUMS_PATH)
    out = None
    if table is not None and r <= loc.k:
        e = _edge_planes(loc, table, r)
        out = e.sum(1) if z is None else (e * z).sum(1)
    if wb is not None:
        b = loc.base_planes(r)
        b = b if z is None else z * b
        out = wb @ b if out is None else torch.addmm(out, wb, b)
    return out


def _sums_backward(y, table, wb, loc, r):
    """``out[p, n] = sum_q y[q, n] phi_r[q, p, n]``, ``(in, N)``."""
    kern = _sums_kernels(loc, y, wb is not None, r)
    if kern is not None:
        tab = y.new_empty(0) if table is None else table.contiguous()
        return kern.sums_backward(*loc.kernel_args(), tab, _wb_t(wb, y), y.shape[0], loc.k, r, y, _SUMS_PATH)
    out = None
    if table is not None and r <= loc.k:
        out = (_edge_planes(loc, table, r) * y.unsqueeze(1)).sum(0)
    if wb is not None:
        t = (wb.t() @ y).mul_(loc.base_planes(r))
        out = t if out is None else out.add_(t)
    return out


def _zero_order(loc, table, wb, r) -> bool:
    """Whether ``phi_r`` vanishes identically (spline order exceeded, no base branch)."""
    return wb is None and (table is None or r > loc.k)


def _save_sums(ctx, first, ht, table, wb, loc, r) -> None:
    """What :class:`_SumsF` / :class:`_SumsB` keep for their backward passes."""
    ctx.save_for_backward(first, ht, table, wb)
    ctx.loc, ctx.r = loc, r
    ctx.set_materialize_grads(False)


def _sums_param_adjoints(ctx, y, z) -> tuple:
    """Gradients of a :class:`_SumsF` / :class:`_SumsB` node in its table and ``wb`` (inputs 2
    and 3): the adjoint ``T_r(y, z)`` of the node's trilinear form, as far as they are needed."""
    _, ht, table, wb = ctx.saved_tensors
    loc, r = ctx.loc, ctx.r
    want_t = table is not None and r <= loc.k and _needed(ctx, 2, table)
    want_w = wb is not None and _needed(ctx, 3, wb)
    if not (want_t or want_w):
        return None, None
    return _SumsT.apply(y, z, ht, loc, r, want_t, want_w)


class _SumsF(torch.autograd.Function):
    """Edge sums forward: ``out[q, n] = sum_p z[p, n] phi_r[q, p, n]`` (``z`` ``None``: ones).

    ``apply(z, ht, table, wb, loc, r)``: ``z`` ``(in, N)`` or ``None``, ``ht`` ``(in, N)`` the
    layer input as planes, ``table`` ``(in * G * (k + 1), O)`` (or ``None``), ``wb`` ``(O, in)``
    (or ``None``); ``phi_r[q, p, n]`` is the ``r``-th ``h``-derivative of edge ``p -> q`` at
    ``ht[p, n]``: the spline from ``table`` (:func:`_edge_planes`) plus ``wb[q, p] b^(r)``.
    Returns ``(O, N)``.

    With :class:`_SumsB` (sums over the outputs) and :class:`_SumsT` (the adjoint in ``table``
    and ``wb``) it forms a family closed under differentiation: all three are partial
    derivatives of ``S_r(y, z) = sum_{q, p, n} y[q, n] z[p, n] phi_r[q, p, n]``, and
    ``dS_r / dh = z * B_{r+1}(y)``.  Each node does one (cached) edge evaluation and one
    contraction, so nested autograd through a layer is a handful of nodes per pass, all on
    contiguous planes of points.
    """

    @staticmethod
    def forward(ctx, z, ht, table, wb, loc, r):
        _save_sums(ctx, z, ht, table, wb, loc, r)
        return _sums_forward(z, table, wb, loc, r)

    @staticmethod
    def backward(ctx, grad):
        z, ht, table, wb = ctx.saved_tensors
        loc, r = ctx.loc, ctx.r
        if grad is None:
            return (None,) * 6
        d_z = d_h = None
        if z is not None and _needed(ctx, 0, z):
            d_z = _SumsB.apply(grad, ht, table, wb, loc, r)
        if not _zero_order(loc, table, wb, r + 1) and _needed(ctx, 1, ht):
            d_h = _SumsB.apply(grad, ht, table, wb, loc, r + 1)
            if z is not None:
                d_h = d_h * z
        return (d_z, d_h, *_sums_param_adjoints(ctx, grad, z), None, None)


class _SumsB(torch.autograd.Function):
    """Edge sums backward: ``out[p, n] = sum_q y[q, n] phi_r[q, p, n]``;
    ``apply(y, ht, table, wb, loc, r)`` with ``y`` ``(O, N)`` -> ``(in, N)`` (see :class:`_SumsF`)."""

    @staticmethod
    def forward(ctx, y, ht, table, wb, loc, r):
        _save_sums(ctx, y, ht, table, wb, loc, r)
        return _once(loc, r, (y, table, wb), lambda: _sums_backward(y, table, wb, loc, r))

    @staticmethod
    def backward(ctx, grad):
        y, ht, table, wb = ctx.saved_tensors
        loc, r = ctx.loc, ctx.r
        if grad is None:
            return (None,) * 6
        d_y = d_h = None
        if _needed(ctx, 0, y):
            d_y = _SumsF.apply(grad, ht, table, wb, loc, r)
        if not _zero_order(loc, table, wb, r + 1) and _needed(ctx, 1, ht):
            d_h = _SumsB.apply(y, ht, table, wb, loc, r + 1) * grad
        return (d_y, d_h, *_sums_param_adjoints(ctx, y, grad), None, None)


class _SumsT(torch.autograd.Function):
    """Adjoint of ``S_r(y, z)`` (see :class:`_SumsF`) in the table and in ``wb``:
    ``apply(y, z, ht, loc, r, want_t, want_w)`` with ``y`` ``(O, N)``, ``z`` ``(in, N)`` or
    ``None`` (ones) -> ``(d_table (in * G * (k + 1), O), d_wb (O, in))``, each ``None`` unless
    wanted."""

    @staticmethod
    def forward(ctx, y, z, ht, loc, r, want_t, want_w):
        ctx.save_for_backward(y, z, ht)
        ctx.loc, ctx.r = loc, r
        ctx.set_materialize_grads(False)
        o = y.shape[0]
        kern = _sums_kernels(loc, y, want_w, r)
        if kern is not None:
            return tuple(kern.sums_adjoint(*loc.kernel_args(), loc.k, r, y, z, loc.n_blocks * loc.k1, want_t, want_w,
                                               _SUMS_PATH))
        d_t = d_w = None
        if want_t:
            d = y.unsqueeze(1) if z is None else (y.unsqueeze(1) * z).reshape(o, -1)  # (O, 1, N) | (O, in * N)
            d_t = _planar_adjoint(loc, [None] * r + [d], o)
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
        if _needed(ctx, 0, y):
            d_y = _SumsF.apply(z, ht, g_t, g_w, loc, r)
        if z is not None and _needed(ctx, 1, z):
            d_z = _SumsB.apply(y, ht, g_t, g_w, loc, r)
        if not _zero_order(loc, g_t, g_w, r + 1) and _needed(ctx, 2, ht):
            d_h = _SumsB.apply(y, ht, g_t, g_w, loc, r + 1)
            if z is not None:
                d_h = d_h * z
        return d_y, d_z, d_h, None, None, None, None


class _Transpose(torch.autograd.Function):
    """``h.t()`` as a contiguous copy, whose gradient (to any order) is again a contiguous
    transposed copy.  Point-major inputs enter the planar edge functions through it, so the
    gradients that nested backward passes send back to them are planes too (a plain ``.t()``
    view would hand them point-major seeds and every product downstream would run strided)."""

    @staticmethod
    def forward(ctx, h):
        return h.t().contiguous()

    @staticmethod
    def backward(ctx, grad):
        return _Transpose.apply(grad)


def _as_planes(h: torch.Tensor) -> torch.Tensor:
    """The layer input ``h`` ``(N, in)`` as contiguous ``(in, N)`` planes, differentiably (free
    when ``h`` is already a transposed view of planes, as edge-by-edge layers return)."""
    ht = h.t()
    return ht if ht.is_contiguous() else _Transpose.apply(h)


def _flat_planes(y: torch.Tensor) -> torch.Tensor:
    """``(O, in, N)`` planes as ``(O, in * N)``, or ``(O, 1, N)`` when ``y`` is broadcast over
    the inputs (the gradient of a sum over them), which :func:`_planar_adjoint` expands itself."""
    if y.shape[1] > 1 and y.stride(1) == 0:
        return y[:, :1]
    return y.reshape(y.shape[0], -1)


def _poly_derivatives(poly: list[float], dvar: list[float], order: int) -> list[list[float]]:
    """Coefficients (ascending powers of ``v``) of ``d^n/dz^n P(v(z))`` for ``n <= order`` when
    ``dv/dz = dvar(v)`` is itself a polynomial in ``v`` (chain rule, repeatedly)."""
    out = [list(poly)]
    for _ in range(order):
        p = out[-1]
        dp = [i * c for i, c in enumerate(p)][1:] or [0.0]
        prod = [0.0] * (len(dp) + len(dvar) - 1)
        for i, a in enumerate(dp):
            for j, b in enumerate(dvar):
                prod[i + j] += a * b
        out.append(prod)
    return out


def _horner(coef: Sequence[float], v: torch.Tensor) -> torch.Tensor:
    acc = torch.full_like(v, coef[-1])
    for c in reversed(coef[:-1]):
        acc = acc.mul_(v).add_(c)
    return acc


def _base_derivatives(name: str, z: torch.Tensor, order: int) -> list[torch.Tensor]:
    """``b(z), b'(z), .., b^(order)(z)`` of a base activation, without graph (closed forms up
    to order 3; beyond, the derivatives of ``sigma`` and ``tanh`` as polynomials in themselves:
    ``sigma' = sigma (1 - sigma)``, ``tanh' = 1 - tanh^2``, and ``silu^(n) = z sigma^(n) +
    n sigma^(n-1)``)."""
    if name == "silu":
        if order == 0:
            return [F.silu(z)]
        sg = torch.sigmoid(z)
        a = torch.addcmul(sg, sg, sg, value=-1.0)  # sigma' = sigma (1 - sigma)
        out = [F.silu(z), torch.addcmul(sg, z, a)]  # silu, silu' = sigma + z sigma'
        if order >= 2:
            zw = torch.addcmul(z, z, sg, value=-2.0)  # z w, w = 1 - 2 sigma = sigma'' / sigma'
            out.append((zw + 2.0).mul_(a))  # silu'' = sigma' (2 + z w)
            if order >= 3:
                w = torch.mul(sg, -2.0).add_(1.0)
                out.append((zw + 3.0).mul_(w).addcmul_(z, a, value=-2.0).mul_(a))  # sigma' (w (3 + z w) - 2 z sigma')
        if order >= 4:
            sig = _poly_derivatives([0.0, 1.0], [0.0, 1.0, -1.0], order)
            out += [z * _horner(sig[n], sg) + n * _horner(sig[n - 1], sg) for n in range(4, order + 1)]
    elif name == "tanh":
        t = torch.tanh(z)
        if order == 0:
            return [t]
        d1 = 1 - t * t
        out = [t, d1]
        if order >= 2:
            out.append(-2 * t * d1)
            if order >= 3:
                out.append(-2 * d1 * (d1 - 2 * t * t))
        if order >= 4:
            th = _poly_derivatives([0.0, 1.0], [1.0, 0.0, -1.0], order)
            out += [_horner(th[n], t) for n in range(4, order + 1)]
    else:  # identity
        out = [z, torch.ones_like(z)] + [torch.zeros_like(z) for _ in range(max(order - 1, 1))]
    return out[:order + 1]


def _planar_eval(loc: _Local, table: torch.Tensor, count: int, r0: int = 0) -> list[torch.Tensor]:
    """``E[i] = d^(r0+i)/dh^(r0+i) sum_m table[blk * (k+1) + m] u^m`` edge by edge with the edges
    innermost: ``count`` tensors ``(O, in * N)`` (``loc`` input-major).  Horner's scheme on the
    gathered table planes, one fused multiply-add per power: ``sum_{m>=r} m!/(m-r)! a_m u^(m-r)
    = r! acc_r`` with ``acc_m = a_m + (m+1)/(m+1-r) u acc_{m+1}``.  The table rows are gathered
    plane by plane, so every product broadcasts over outer dimensions only."""
    k, o = loc.k, table.shape[1]
    e_n = loc.n * loc.i
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
            e.mul_(loc.invh_pow(r).view(1, e_n))
        out.append(e)
    return out


def _planar_adjoint(loc: _Local, ds: Sequence[torch.Tensor | None], o: int) -> torch.Tensor:
    """Adjoint of :func:`_planar_eval` (orders ``0, 1, ..``) in the table: ``ds[r]`` ``(O, in * N)``
    (or ``(O, 1, N)``, broadcast over the inputs; or ``None``) -> ``(in * G * (k + 1), O)``."""
    k, k1 = loc.k, loc.k1
    e_n = loc.n * loc.i
    ref = next(d for d in ds if d is not None)
    # (O, in, N) views of the terms (broadcast ones with stride 0 over the inputs)
    terms = [(r, d.expand(o, loc.n, loc.i) if d.dim() == 3 else d.view(o, loc.n, loc.i))
             for r, d in enumerate(ds) if d is not None and r <= k]
    if not terms:
        return ref.new_zeros(loc.n_blocks * k1, o)
    kernels = _native_jet(ref, 1, k) if len(terms) <= 4 and terms[-1][0] <= 3 else None
    if kernels is not None:  # compiled: no (k + 1, O, in * N) temporary
        planes = [d if d.stride(2) == 1 else d.contiguous() for _, d in terms]
        return kernels.planar_adjoint(loc.u.view(loc.n, loc.i), loc.invh.expand(loc.n, loc.i), loc.blk, planes,
                                      [r for r, _ in terms], loc.n_blocks * k1, k)
    terms = [(r, d.reshape(o, e_n)) for r, d in terms]
    zs = [(r, d if r == 0 else d * loc.invh_pow(r).view(1, e_n)) for r, d in terms]
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
    t[lo:].view((k1 - lo) * o, loc.n_blocks).index_add_(1, loc.blk.reshape(-1), v.view((k1 - lo) * o, e_n))
    return t.permute(2, 0, 1).reshape(loc.n_blocks * k1, o)


class _EdgeJet(torch.autograd.Function):
    """Second-order jet of an edge-by-edge layer in one autograd node (differentiable once).

    ``apply(h, g, s, table, wb, loc, base, first)`` -> ``(value, grad, hess)``: ``value``
    ``(N, O)`` (no bias), ``grad``/``hess`` ``(N, O, d)``.  With ``phi_r[q, p, n]`` the ``r``-th
    ``h``-derivative of edge ``p -> q`` at ``h[n, p]`` (spline from ``table`` plus
    ``wb[q, p] b^(r)``): ``value = sum_p phi_0``, ``grad = sum_p phi_1 g``,
    ``hess = sum_p phi_2 g^2 + phi_1 s``.  ``first``: the input layer (``g`` the identity,
    ``s = 0``; ``g``/``s`` are ``None``, ``d = in``, ``grad[n, q, p] = phi_1[q, p, n]``).

    ``loc`` locates ``h`` input-major (:meth:`KANLayer._locate_t`, edge ``p * N + n``), and
    everything inside runs on planes with the points innermost (``(O, in, N)``, ``(in, d, N)``),
    so every elementwise product is contiguous or broadcasts over outer dimensions only.
    ``grad``/``hess`` are returned as ``(N, O, d)`` views of ``(O, d, N)`` planes, which the
    next layer reads back without a copy.  The backward pass is written out (one more edge
    derivative for ``dh``) on the same gathered table rows: no per-power autograd graph.
    """

    @staticmethod
    def forward(ctx, h, g, s, table, wb, loc, base, first):
        ctx.set_materialize_grads(False)
        i, n, o = loc.n, loc.i, table.shape[1]  # loc is input-major: blk (in, N)
        need_h = ctx.needs_input_grad[0]
        es = [e.view(o, i, n) for e in _planar_eval(loc, table, 4 if need_h else 3)]  # (O, in, N)
        bs = None
        if wb is not None:
            bs = _base_derivatives(base, loc.ht, len(es) - 1)  # each (in, N)
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
            gp = _planes(g)  # (in, d, N)
            sp = _planes(s)
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
        i, n = loc.n, loc.i
        o = phi[0].shape[0]
        need_h, need_g, need_s, need_t, need_w = ctx.needs_input_grad[:5]
        ggp = None if gg is None else _planes(gg)  # (O, d, N)
        ghp = None if gh is None else _planes(gh)
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
            d_t = _planar_adjoint(loc, [d0, None if d1 is None else d1.reshape(o, i * n),
                                        None if d2 is None else d2.reshape(o, i * n)], o)
        if need_w and bs is not None:
            acc = None if gv is None else (bs[0] @ gv).t()  # (O, in)
            for b, d in ((bs[1], d1), (bs[2], d2)):
                if d is not None:
                    t = (d * b).sum(-1)
                    acc = t if acc is None else acc + t
            d_w = acc
        return d_h, d_g, d_s, d_t, d_w, None, None, None


def _power_derivatives(u: torch.Tensor, invh: torch.Tensor, k: int, count: int) -> list[torch.Tensor]:
    """``Q_r[n, p, m] = d^r (u^m) / dh^r = m! / (m - r)! u^(m-r) (du/dh)^r`` for ``r < count``:
    each ``(N, in, k + 1)`` (``u`` ``(N, in)``, with its graph to ``h`` if it has one; ``invh``
    ``(in,)`` or ``(N, in)``)."""
    k1 = k + 1
    pw = [torch.ones_like(u), u]
    while len(pw) < k1:
        pw.append(pw[-1] * u)
    out = []
    for r in range(count):
        q = u.new_zeros(*u.shape, k1)
        ihr = invh if r == 1 else invh.pow(r) if r > 1 else None
        for m in range(r, k1):
            t = pw[m - r] if ihr is None else pw[m - r] * ihr
            q[..., m] = t if m == r and r < 2 else t * float(math.perm(m, r))
        out.append(q)
    return out


class _RowJet(torch.autograd.Function):
    """Second-order jet of a wide layer (row-product path) in one autograd node.

    ``apply(h, g, s, table, loc, pat, base)`` -> ``(N, 1 + 2d, O)``: channel 0 the value, then the
    ``d`` gradient and ``d`` Hessian-diagonal channels (no bias).  ``table`` holds, per block of
    ``k + 2`` rows, the ``k + 1`` polynomial rows of :meth:`KANLayer._table` and the base weights
    ``w_b[:, p]`` (``base`` not ``None``), so the base branch is one more "basis function" per
    input with derivatives ``b^(r)``; ``pat`` is the matching row pattern.  With ``Q_r`` the
    ``r``-th ``h``-derivatives of the per-input basis values (powers of ``u``, then ``b``):

        vals = [Q_0, Q_1 g_j, Q_2 g_j^2 + Q_1 s_j],   out = row product of vals with the table.

    The backward pass contracts the sampled table rows (:func:`_sddmm`) with ``Q_1 .. Q_3``
    before anything is expanded per channel (differentiable once).
    """

    @staticmethod
    def forward(ctx, h, g, s, table, loc, pat, base):
        n, i = h.shape
        d = g.shape[2]
        need_h = ctx.needs_input_grad[0]
        qs = _power_derivatives(loc.u.view(n, i), loc.invh, loc.k, 4 if need_h else 3)
        if base is not None:
            bs = _base_derivatives(base, h.detach(), len(qs) - 1)
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
        return _spmm(vals, table, pat)

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
            d_t = _spmmt(vals, gout.contiguous(), pat)
        if need_h or need_g or need_s:
            w = _sddmm(gout.contiguous(), table, pat).view(n, c, i, qs[0].shape[-1])  # (N, c, in, k1e)
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


class _NativeRowJet(torch.autograd.Function):
    """:class:`_RowJet` in the compiled CPU kernel (``csrc/kan_jet.cpp``): one pass per point
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
        ih = loc.invh.expand(n, i)  # a uniform grid's (in,) stays broadcast
        ih = ih if ih.stride(0) == 0 else ih.contiguous()
        bder = torch.stack(_base_derivatives(base, h.detach(), 3)) if base is not None else h.new_empty(0)
        # point-major copies: the kernel reads each point's numbers together
        ctx.args = (u, ih, bder, g.detach().contiguous(), s.detach().contiguous(), loc.blk.contiguous(),
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


#: base activation -> its code in the compiled edge kernel
_BASE_KINDS = {"silu": 1, "tanh": 2, "identity": 3}


class _NativeEdgeJet(torch.autograd.Function):
    """:class:`_EdgeJet` in the compiled CPU kernel (``edge_forward``/``edge_backward`` in
    ``csrc/kan_jet.cpp``): the points of a tile are the SIMD lanes, and each edge's derivatives
    are formed from gathered table entries, used and dropped, with no ``(O, in, N)`` planes
    (differentiable once).  Same arguments and outputs as :class:`_EdgeJet`, plus the kernel
    module."""

    @staticmethod
    def forward(ctx, h, g, s, table, wb, loc, base, first, kernels):
        i, n = loc.blk.shape  # input-major
        empty = h.new_empty(0)
        # the kernel forms the base activation's derivatives from z and sigma(z) or tanh(z)
        kind = 0 if wb is None else _BASE_KINDS[base]
        aux = torch.sigmoid(loc.ht) if kind == 1 else torch.tanh(loc.ht) if kind == 2 else empty
        ctx.args = (loc.u.view(i, n), loc.invh.expand(i, n), loc.blk, loc.ht, aux, kind,
                    empty if wb is None else wb.detach().contiguous(),
                    empty if first else _planes(g.detach()), empty if first else _planes(s.detach()),
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
        gg = None if gg is None else _planes(gg)
        gh = None if gh is None else _planes(gh)
        dh, dg, ds, dt, dw = ctx.kernels.edge_backward(*ctx.args, gv, gg, gh, *need)
        # what was not needed comes back as None
        d_h = None if dh is None else dh.t()
        d_g = None if dg is None else dg.permute(2, 0, 1)
        d_s = None if ds is None else ds.permute(2, 0, 1)
        return d_h, d_g, d_s, dt, dw, None, None, None, None


def _edge_jet(h, g, s, table, wb, loc, base, first):
    """:class:`_EdgeJet`, or :class:`_NativeEdgeJet` where the compiled kernel serves the call."""
    kernels = _native_jet(h, loc.blk.shape[0] if first else g.shape[2], loc.k)
    if kernels is not None:
        return _NativeEdgeJet.apply(h, g, s, table, wb, loc, base, first, kernels)
    return _EdgeJet.apply(h, g, s, table, wb, loc, base, first)


def _native_jet(h: torch.Tensor, d: int, k: int):
    """The compiled kernels for this call, or ``None`` (then the torch nodes run):
    CPU tensors of float32/float64, ``1 <= d <= 4`` input dimensions, spline order ``k <= 8``,
    and a kernel that builds (:func:`kanpde.models._native.jet_kernels`)."""
    return _sums_kernels_for(h, k, "none") if 1 <= d <= 4 else None


def _planes(t: torch.Tensor) -> torch.Tensor:
    """``(N, a, b)`` -> contiguous ``(a, b, N)`` (free for the views :class:`_EdgeJet` returns)."""
    return t.permute(1, 2, 0).contiguous()


# --------------------------------------------------------------------------------------------
# B-spline pieces
# --------------------------------------------------------------------------------------------
def interval_polynomials(knots: torch.Tensor, spline_order: int) -> torch.Tensor:
    """Polynomial pieces of the B-splines on each knot interval.

    ``knots``: ``(..., G + 2k + 1)`` nondecreasing, ``k = spline_order``.  Returns ``M`` of shape
    ``(..., G, k + 1, k + 1)``: on interval ``j`` (between knots ``t_{j+k}`` and ``t_{j+k+1}``,
    width ``h``) the B-spline ``B_{j+r}`` equals ``sum_m M[..., j, r, m] u^m`` with
    ``u = (x - t_{j+k}) / h``.  Cox–de Boor recursion on polynomial coefficients, using only
    the ``2k + 2`` knots around each interval.
    """
    k = spline_order
    win = knots.unfold(-1, 2 * k + 2, 1)  # (..., G, 2k+2): win[..., l] = t_{j+l}
    left, h = win[..., k], win[..., k + 1] - win[..., k]
    shape = win.shape[:-1]
    poly = torch.zeros(*shape, 1, k + 1, dtype=knots.dtype, device=knots.device)
    poly[..., 0, 0] = 1.0  # degree 0: B_{j+k} = 1 on the interval
    for d in range(1, k + 1):
        # bases of degree d-1 are B_i for i = j+k-d+1 .. j+k; pad zeros for i = j+k-d and j+k+1
        pad = F.pad(poly, (0, 0, 1, 1))  # (..., d+2, k+1)
        ls = torch.arange(k - d, k + 2, device=knots.device)  # knot offsets l of i = j+l
        t_i = win[..., ls]
        t_id = win[..., ls + d]
        den = t_id - t_i
        safe = torch.where(den > 0, den, torch.ones_like(den))
        alpha = torch.where(den > 0, (left.unsqueeze(-1) - t_i) / safe, torch.zeros_like(den))
        beta = torch.where(den > 0, h.unsqueeze(-1) / safe, torch.zeros_like(den))
        # omega_i(u) = alpha_i + beta_i u ;  B_{i,d} = omega_i B_{i,d-1} + (1 - omega_{i+1}) B_{i+1,d-1}
        shifted = F.pad(pad[..., :-1], (1, 0))  # multiply by u
        w_poly = alpha.unsqueeze(-1) * pad + beta.unsqueeze(-1) * shifted
        one_minus = (1 - alpha).unsqueeze(-1) * pad - beta.unsqueeze(-1) * shifted
        poly = w_poly[..., :-1, :] + one_minus[..., 1:, :]
    return poly


def _is_uniform(grid: torch.Tensor, k: int, g: int) -> bool:
    """Whether the knots ``grid`` ``(in, G + 2k + 1)`` are equally spaced per input, to within
    a few rounding errors of their dtype."""
    if not grid.numel():
        return True
    lo, hi = grid[:, k], grid[:, k + g]
    uniform = lo.unsqueeze(1) + ((hi - lo) / g).unsqueeze(1) * torch.arange(-k, g + k + 1, dtype=grid.dtype,
                                                                            device=grid.device)
    scale = (hi - lo).abs().max().clamp_min(torch.finfo(grid.dtype).tiny)
    return bool(((grid - uniform).abs().max() <= 64 * torch.finfo(grid.dtype).eps * scale).item())


def _uniform_knots(lo: float, hi: float, grid_size: int, spline_order: int, **kw) -> torch.Tensor:
    h = (hi - lo) / grid_size
    i = torch.arange(-spline_order, grid_size + spline_order + 1, dtype=torch.float64)
    t = lo + i * h
    t[spline_order + grid_size] = hi  # exact right end
    return t.to(**kw)


class _Geometry:
    """What a forward pass needs to know about the grid (cached per grid tensor version)."""

    __slots__ = ("key", "uniform", "lo", "invh", "inner", "left", "invh_flat", "M", "offset_t", "lo_t", "invh_t")


# --------------------------------------------------------------------------------------------
# layer
# --------------------------------------------------------------------------------------------
class KANLayer(nn.Module):
    """One KAN layer with ``in_features * out_features`` learnable edge functions.

    ``out_q = bias_q + sum_p [ w_b[q, p] b(h_p) + w_s[q, p] sum_i c[q, p, i] B_i(h_p) ]``.

    Args:
        in_features, out_features: number of input and output nodes.
        grid_size: number of knot intervals ``G >= 1`` spanning ``grid_range``.
        spline_order: B-spline degree ``k >= 1`` (3: cubic).
        grid_range: ``(lo, hi)`` initial range of the knots (each input gets its own knots
            after :meth:`update_grid`).
        base_activation: ``"silu"`` (paper), ``"tanh"``, ``"identity"`` or ``"none"`` (no base
            branch and no ``base_weight``).
        grid_eps: weight of the uniform grid in :meth:`update_grid` (0: pure sample quantiles,
            1: uniform over the samples' range).
        bias: learnable constant per output node.
        noise_scale: spline coefficients start uniform in ``noise_scale / G * [-1/2, 1/2]``.
        dtype, device: of parameters and grid.

    Parameters and buffers:
        ``spline_weight`` (``c``): ``(out, in, G + k)``; ``spline_scaler`` (``w_s``):
        ``(out, in)``, starts at 1; ``base_weight`` (``w_b``): ``(out, in)``, Xavier-uniform;
        ``bias``: ``(out,)``, starts at 0; buffer ``grid``: ``(in, G + 2k + 1)`` knots per input.
    """

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5, spline_order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), base_activation: str = "silu",
                 grid_eps: float = 0.02, bias: bool = True, noise_scale: float = 0.1,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        self.grid_size = check_int(grid_size, "grid_size", 1)
        self.spline_order = check_int(spline_order, "spline_order", 1)
        self.grid_range = _check_grid_range(grid_range)
        self.base_activation = _check_activation(base_activation)
        self.grid_eps = _check_real(grid_eps, "grid_eps", 0.0, 1.0)
        self.noise_scale = _check_real(noise_scale, "noise_scale", 0.0)
        check_dtype(dtype)
        kw = {"dtype": dtype if dtype is not None else torch.get_default_dtype(), "device": device}
        k, g, i, o = self.spline_order, self.grid_size, self.in_features, self.out_features
        knots = _uniform_knots(*self.grid_range, g, k, **kw)
        self.register_buffer("grid", knots.expand(i, -1).contiguous())
        self.spline_weight = nn.Parameter(torch.empty(o, i, g + k, **kw))
        self.spline_scaler = nn.Parameter(torch.empty(o, i, **kw))
        if self.base_activation != "none":
            self.base_weight = nn.Parameter(torch.empty(o, i, **kw))
        else:
            self.register_parameter("base_weight", None)
        if bias:
            self.bias = nn.Parameter(torch.empty(o, **kw))
        else:
            self.register_parameter("bias", None)
        self._base, self._base_jet = BASE_ACTIVATIONS[self.base_activation]
        self._geo: _Geometry | None = None
        self.reset_parameters()

    # ------------------------------------------------------------------ set-up
    def _apply(self, fn, *args, **kwargs):
        # Converting to a more precise dtype (a float32 model trained in float64): a grid that was
        # uniform is rebuilt exactly uniform in the new dtype from its converted ends, instead of
        # keeping the float32-rounded knots, which are not uniform at float64 precision and would
        # send every forward pass down the slower non-uniform path.  The float32 forward pass
        # already used exactly this grid (it treats knots uniform to within rounding as uniform).
        before = self.grid
        out = super()._apply(fn, *args, **kwargs)
        old, new = before.dtype, self.grid.dtype
        k, g = self.spline_order, self.grid_size
        if (old.is_floating_point and new.is_floating_point and torch.finfo(new).eps < torch.finfo(old).eps
                and _is_uniform(before.detach(), k, g)):
            with torch.no_grad():
                ends = self.grid[:, [k, k + g]].double().cpu()
                knots = [_uniform_knots(float(lo), float(hi), g, k, dtype=new, device=self.grid.device)
                         for lo, hi in ends.tolist()]
                self.grid.copy_(torch.stack(knots))
        self._geo = None
        return out

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw the parameters: ``c ~ U(-1/2, 1/2) * noise_scale / G``, ``w_s = 1``,
        ``w_b`` Xavier-uniform ``U(-a, a)``, ``a = sqrt(6 / (in + out))``, bias 0.  Draws on the
        CPU (with ``generator`` if given) so a seed gives the same network on every device."""
        def draw(p: torch.Tensor, scale: float) -> None:
            r = torch.rand(p.shape, generator=generator, dtype=torch.float64)
            p.copy_((r - 0.5) * (2 * scale))

        draw(self.spline_weight, 0.5 * self.noise_scale / self.grid_size)
        self.spline_scaler.fill_(1.0)
        if self.base_weight is not None:
            draw(self.base_weight, math.sqrt(6.0 / (self.in_features + self.out_features)))
        if self.bias is not None:
            self.bias.zero_()

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"grid_size={self.grid_size}, spline_order={self.spline_order}, "
                f"base_activation={self.base_activation!r}, bias={self.bias is not None}, "
                f"grid={'uniform' if self._geometry().uniform else 'adapted'}")

    @property
    def n_basis(self) -> int:
        """Number of B-splines per edge, ``G + k``."""
        return self.grid_size + self.spline_order

    # ------------------------------------------------------------------ grid geometry
    def _geometry(self) -> _Geometry:
        grid = self.grid
        key = (grid.data_ptr(), grid._version, grid.dtype, grid.device, grid.shape)
        geo = self._geo
        if geo is not None and geo.key == key:
            return geo
        k, g = self.spline_order, self.grid_size
        geo = _Geometry()
        geo.key = key
        inner = grid[:, k:k + g + 1]
        lo, hi = inner[:, 0], inner[:, -1]
        h = (hi - lo) / g
        geo.uniform = _is_uniform(grid, k, g)
        with torch.no_grad():
            geo.offset_t = (torch.arange(self.in_features, device=grid.device) * g).unsqueeze(1)
            if geo.uniform:
                geo.lo, geo.invh = lo.clone(), 1.0 / h
                geo.lo_t, geo.invh_t = geo.lo.unsqueeze(1), geo.invh.unsqueeze(1)
                unit = torch.arange(2 * k + 2, dtype=grid.dtype, device=grid.device)
                geo.M = interval_polynomials(unit, k)[0]  # (k+1, k+1), shared by all intervals
                geo.inner = geo.left = geo.invh_flat = None
            else:
                geo.lo = geo.invh = geo.lo_t = geo.invh_t = None
                geo.inner = inner.contiguous()
                geo.left = inner[:, :-1].reshape(-1).contiguous()
                geo.invh_flat = (1.0 / inner.diff(dim=1)).reshape(-1).contiguous()
                geo.M = interval_polynomials(grid, k)  # (in, G, k+1, k+1)
        self._geo = geo
        return geo

    def _locate(self, h: torch.Tensor, geo: _Geometry) -> tuple[_Local, torch.Tensor]:
        """Interval of every input value and its local coordinate.

        ``h``: ``(N, in)``.  Returns the :class:`_Local` record (blocks ``p * G + j`` with the
        interval ``j`` clamped to ``[0, G - 1]``, so outside values continue the end pieces) and
        ``u`` ``(N, in)`` with its graph to ``h`` (``du/dh = 1 / h_j``).
        """
        g = self.grid_size
        offset = torch.arange(self.in_features, device=h.device) * g
        if geo.uniform:
            xi = (h - geo.lo) * geo.invh
            # NaN inputs give NaN outputs (interval 0), not an out-of-range index
            j = xi.detach().floor().clamp_(0, g - 1).nan_to_num_(0.0)
            u = xi - j
            blk = j.long() + offset
            invh = geo.invh
        else:
            hd = h.detach().t().contiguous()
            j = torch.searchsorted(geo.inner, hd, right=True).sub_(1).clamp_(0, g - 1).t()
            blk = (j + offset).contiguous()
            invh = geo.invh_flat.take(blk)
            u = (h - geo.left.take(blk)) * invh
        return _Local(blk, u, invh, self.spline_order, self.in_features * g), u

    def _locate_t(self, h: torch.Tensor, geo: _Geometry) -> _Local:
        """:meth:`_locate` input-major and without graph: ``blk``/``u`` ``(in, N)`` (edge
        ``p * N + n``); the record also keeps ``ht = h.t()`` (contiguous, detached)."""
        g = self.grid_size
        ht = h.detach().t().contiguous()
        offset = geo.offset_t
        if geo.uniform:
            invh = geo.invh_t
            xi = (ht - geo.lo_t) * invh
            j = xi.floor().clamp_(0, g - 1).nan_to_num_(0.0)
            u = xi - j
            blk = j.long().add_(offset)
        else:
            j = torch.searchsorted(geo.inner, ht, right=True).sub_(1).clamp_(0, g - 1)
            blk = j + offset
            invh = geo.invh_flat.take(blk)
            u = (ht - geo.left.take(blk)) * invh
        loc = _Local(blk, u, invh, self.spline_order, self.in_features * g)
        loc.ht = ht
        loc.base = self.base_activation
        return loc

    def _powers(self, u: torch.Tensor) -> list[torch.Tensor]:
        p = [torch.ones_like(u), u]
        for _ in range(2, self.spline_order + 1):
            p.append(p[-1] * u)
        return p

    def _edgewise(self) -> bool:
        # edge by edge (fused _EdgeSpline on gathered rows, (N, in, out) edge values) unless the
        # gathered rows get large; wide layers contract rows directly (no per-edge tensors): their
        # jets always, their nested autograd where the compiled sums kernels do not serve
        # (KANLayer.forward)
        return self.in_features * self.out_features * (self.spline_order + 1) <= 640

    def _table(self, geo: _Geometry, coef: torch.Tensor | None = None) -> torch.Tensor:
        """Piecewise-polynomial coefficient table ``A``: ``(in * G * (k + 1), out)``; row
        ``(p * G + j) * (k + 1) + m`` holds the ``u^m`` coefficients of the ``out`` edge splines
        of input ``p`` on interval ``j``.  ``coef``: ``(out, in, G + k)`` (default: the scaled
        spline weights ``w_s * c``)."""
        if coef is None:
            coef = self.spline_weight * self.spline_scaler.unsqueeze(-1)
        k1, o = self.spline_order + 1, self.out_features
        win = coef.unfold(2, k1, 1).permute(1, 2, 3, 0)  # (in, G, k+1, out): win[p, j, r, q] = c[q, p, j+r]
        # a[p, j, m, q] = sum_r M[(p, j,) r, m] win[p, j, r, q], made in the table's own layout,
        # so that its gradient (one per nested-autograd node) needs no copy back to another one
        a = torch.matmul(geo.M.to(coef.dtype).transpose(-1, -2), win)  # (in, G, k+1 powers, out)
        return a.reshape(-1, o)

    def _check_h(self, h: torch.Tensor, what: str = "KANLayer") -> None:
        check_input(h, self.in_features, what)
        if h.dtype != self.spline_weight.dtype:
            raise TypeError(f"{what} has {self.spline_weight.dtype} parameters but got a {h.dtype} input; "
                            f"convert one of them (e.g. model.to(torch.float64))")

    # ------------------------------------------------------------------ basis (inspection, fitting)
    def basis(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k + 1`` B-splines that are nonzero at each input value.

        ``h``: ``(N, in)``.  Returns ``(first, values)``: ``first`` ``(N, in)`` int64, the index
        ``j`` of the first nonzero B-spline (``B_j .. B_{j+k}``), and ``values`` ``(N, in, k + 1)``.
        Outside the grid range the end intervals' polynomials are continued.
        """
        self._check_h(h, "KANLayer.basis")
        geo = self._geometry()
        loc, u = self._locate(h, geo)
        j = loc.blk - torch.arange(self.in_features, device=h.device) * self.grid_size
        powers = torch.stack(self._powers(u), -1)  # (N, in, k+1 powers)
        k1 = self.spline_order + 1
        if geo.uniform:
            values = powers @ geo.M.t()
        else:
            m = geo.M.reshape(-1, k1, k1).index_select(0, loc.blk.reshape(-1))
            values = (m @ powers.reshape(-1, k1, 1)).view_as(powers)
        return j, values

    def basis_matrix(self, h: torch.Tensor) -> torch.Tensor:
        """All ``G + k`` B-splines at each input value, ``(N, in, G + k)`` (dense; for fitting
        and inspection, the forward pass never builds it)."""
        j, values = self.basis(h)
        out = values.new_zeros(*j.shape, self.n_basis)
        idx = j.unsqueeze(-1) + torch.arange(self.spline_order + 1, device=h.device)
        return out.scatter(-1, idx, values)

    # ------------------------------------------------------------------ evaluation
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` ``(N, in)`` -> ``(N, out)``."""
        self._check_h(h)
        n, o = h.shape[0], self.out_features
        geo = self._geometry()
        table = self._table(geo)
        if self._edgewise() or _sums_kernels_for(h, self.spline_order, self.base_activation) is not None:
            # on planes, points innermost: (O, N) out, returned as an (N, O) view, which the next
            # layer reads back as planes without a copy; wide layers too where the compiled sums
            # kernels serve them (their torch fallback would form (O, in, N) planes)
            out = _SumsF.apply(None, _as_planes(h), table, self.base_weight, self._locate_t(h, geo), 0)
            if self.bias is not None:
                out = out + self.bias.unsqueeze(1)
            return out.t()
        loc, u = self._locate(h, geo)
        vals = torch.stack(self._powers(u), -1).view(n, 1, self.in_features * (self.spline_order + 1))
        out = _SpMM.apply(vals, table, loc.row_pattern(o)).view(n, o)
        if self.base_weight is not None:
            out = torch.addmm(out, self._base(h), self.base_weight.t())
        if self.bias is not None:
            out = out + self.bias
        return out

    def edge_activations(self, h: torch.Tensor) -> torch.Tensor:
        """Every edge function at the layer input: ``h`` ``(N, in)`` -> ``phi`` ``(N, in, out)``
        with ``phi[n, p, q] = phi_qp(h[n, p])`` (no bias); ``sum(1) + bias`` is :meth:`forward`."""
        self._check_h(h, "KANLayer.edge_activations")
        geo = self._geometry()
        phi = _EdgeSpline.apply(h.t(), self._table(geo), self._locate_t(h, geo), 0, 1)[0].permute(2, 1, 0)
        if self.base_weight is not None:
            phi = phi + self._base(h).unsqueeze(-1) * self.base_weight.t()
        return phi

    def _check_jet(self, jet: Jet) -> None:
        if not isinstance(jet, Jet):
            raise TypeError(f"KANLayer.forward_jet expects a Jet, got {type(jet).__name__}")
        h = jet.value
        self._check_h(h, "KANLayer.forward_jet")
        n, i = h.shape
        if jet.order >= 1 and (jet.grad.dim() != 3 or tuple(jet.grad.shape[:2]) != (n, i)):
            raise ValueError(f"KANLayer.forward_jet expects jet.grad of shape (N, {i}, d) with N = {n}, "
                             f"got {tuple(jet.grad.shape)}")
        if jet.order >= 2 and jet.hess_diag.shape != jet.grad.shape:
            raise ValueError(f"KANLayer.forward_jet expects jet.hess_diag of shape {tuple(jet.grad.shape)}, "
                             f"got {tuple(jet.hess_diag.shape)}")

    def forward_jet(self, jet: Jet) -> Jet:
        """Propagate a jet through the layer (see the module docstring for the formulas).

        ``jet.value`` ``(N, in)``, ``jet.grad``/``jet.hess_diag`` ``(N, in, d)`` -> Jet with
        ``value`` ``(N, out)``, ``grad``/``hess_diag`` ``(N, out, d)`` (as far as ``jet.order``
        goes); exact and differentiable with respect to the parameters.
        """
        self._check_jet(jet)
        h, g, s, order = jet.value, jet.grad, jet.hess_diag, jet.order
        n, o = h.shape[0], self.out_features
        geo = self._geometry()
        if self._edgewise() and order == 2:
            value, grad, hess = _edge_jet(h, g, s, self._table(geo), self.base_weight, self._locate_t(h, geo),
                                          self.base_activation, False)
            if self.bias is not None:
                value = value + self.bias
            return Jet(value, grad, hess)
        table = self._table(geo)
        if self._edgewise():
            phi = [e.permute(2, 1, 0) for e in _EdgeSpline.apply(h.t(), table, self._locate_t(h, geo), 0, order + 1)]
            if self.base_weight is not None:
                wt = self.base_weight.t()
                phi = [f + b.unsqueeze(-1) * wt for f, b in zip(phi, self._base_jet(h, order))]
            value = phi[0].sum(1)
            grad = hess = None
            if order >= 1:
                grad = (phi[1].unsqueeze(-1) * g.unsqueeze(2)).sum(1)  # (N, out, d)
            if order >= 2:
                hess = (phi[2].unsqueeze(-1) * g.square().unsqueeze(2) + phi[1].unsqueeze(-1) * s.unsqueeze(2)).sum(1)
            if self.bias is not None:
                value = value + self.bias
            return Jet(value, grad, hess)
        loc, u = self._locate(h, geo)
        if order == 2:
            k1 = self.spline_order + 1
            if self.base_weight is not None:
                # the base weights as a (k+2)-th row of every block: one row product does both
                i, g_ = self.in_features, self.grid_size
                wrow = self.base_weight.t().reshape(i, 1, 1, o).expand(i, g_, 1, o).reshape(i * g_, 1, o)
                table = torch.cat([table.view(i * g_, k1, o), wrow], 1).reshape(-1, o)
                k1 += 1
            base = self.base_activation if self.base_weight is not None else None
            d = g.shape[2]
            kernels = _native_jet(h, d, self.spline_order)
            if kernels is not None:
                value, grad, hess = _NativeRowJet.apply(h, g, s, table, loc, base, kernels)
            else:
                out = _RowJet.apply(h, g, s, table, loc, loc.block_pattern(k1, o), base)
                value, grad, hess = out[:, 0], out[:, 1:1 + d].transpose(1, 2), out[:, 1 + d:].transpose(1, 2)
            if self.bias is not None:
                value = value + self.bias
            return Jet(value, grad, hess)
        # orders 0 and 1: values (and gradient channels) through one row product, with graph
        qs = _power_derivatives(u, loc.invh, self.spline_order, order + 1)  # (N, in, k+1) each
        chans = [qs[0].unsqueeze(1)]  # (N, c, in, k+1)
        gt = None
        if order == 1:
            gt = g.transpose(1, 2)  # (N, d, in)
            chans.append(qs[1].unsqueeze(1) * gt.unsqueeze(-1))
        vals = torch.cat(chans, 1) if len(chans) > 1 else chans[0]
        c = vals.shape[1]
        out = _SpMM.apply(vals.reshape(n, c, self.in_features * (self.spline_order + 1)), table,
                          loc.row_pattern(o))  # (N, c, out)
        if self.base_weight is not None:
            b = self._base_jet(h, order)
            z = b[0].unsqueeze(1) if order == 0 else torch.cat([b[0].unsqueeze(1), b[1].unsqueeze(1) * gt], 1)
            out = out + torch.matmul(z, self.base_weight.t())
        value = out[:, 0]
        if self.bias is not None:
            value = value + self.bias
        return Jet(value, out[:, 1:].transpose(1, 2) if order == 1 else None, None)

    def forward_jet_input(self, x: torch.Tensor, order: int = 2) -> Jet:
        """:meth:`forward_jet` of the identity jet at ``x`` (the first layer of a network).

        ``x`` ``(N, in)`` -> Jet with ``grad``/``hess_diag`` ``(N, out, in)``.  Exploits that
        ``d x_p / d x_j`` is the identity: ``grad[:, q, j] = phi_qj'(x_j)`` and
        ``hess_diag[:, q, j] = phi_qj''(x_j)``, one edge each, no ``(N, in, in)`` seed.
        """
        self._check_h(x, "KANLayer.forward_jet_input")
        if order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
        geo = self._geometry()
        if order == 2:
            value, grad, hess = _edge_jet(x, None, None, self._table(geo), self.base_weight,
                                          self._locate_t(x, geo), self.base_activation, True)
            if self.bias is not None:
                value = value + self.bias
            return Jet(value, grad, hess)
        e = [t.permute(2, 1, 0) for t in _EdgeSpline.apply(x.t(), self._table(geo), self._locate_t(x, geo), 0, order + 1)]
        value = e[0].sum(1)  # e[r]: (N, in, out)
        grad = hess = None
        if self.base_weight is not None:
            b0, b1, b2 = self._base_jet(x, order)
            value = torch.addmm(value, b0, self.base_weight.t())
        if order >= 1:
            grad = e[1].transpose(1, 2)
            if self.base_weight is not None:
                grad = grad + b1.unsqueeze(1) * self.base_weight
        if order >= 2:
            hess = e[2].transpose(1, 2)
            if self.base_weight is not None:
                hess = hess + b2.unsqueeze(1) * self.base_weight
        if self.bias is not None:
            value = value + self.bias
        return Jet(value, grad, hess)

    # ------------------------------------------------------------------ grid changes
    @torch.no_grad()
    def _spline_values(self, h: torch.Tensor) -> torch.Tensor:
        """Unscaled edge splines ``sum_i c[q, p, i] B_i(h_p)``: ``(N, in, out)`` (in chunks of
        rows, so the gathered coefficient rows stay small)."""
        geo = self._geometry()
        table = self._table(geo, self.spline_weight)
        step = max(1, _CHUNK * 8 // (self.in_features * self.out_features * (self.spline_order + 1)))
        out = []
        for start in range(0, h.shape[0], step):
            loc = self._locate_t(h[start:start + step], geo)
            out.append(_planar_eval(loc, table, 1)[0].view(self.out_features, self.in_features, -1).permute(2, 1, 0))
        return torch.cat(out) if len(out) > 1 else out[0]

    @torch.no_grad()
    def _fit(self, h: torch.Tensor, target: torch.Tensor, dense: bool = False) -> torch.Tensor:
        """Least-squares spline coefficients on the current grid: ``sum_n |sum_i c[q, p, i]
        B_i(h[n, p]) - target[n, p, q]|^2`` minimal for every edge.  ``h`` ``(N, in)``, ``target``
        ``(N, in, out)`` -> ``c`` ``(out, in, G + k)``, computed in float64.

        ``dense``: QR least squares on the ``(N, G + k)`` basis matrix of each input (accurate to
        round-off; for the few points of :meth:`refine`).  Otherwise normal equations assembled
        from the local basis (memory ``O(N k)``), Jacobi-scaled, with a tiny ridge that keeps
        B-splines without samples in their support at zero."""
        i, nb, k1 = self.in_features, self.n_basis, self.spline_order + 1
        target = target.double()
        if dense:
            b = self.basis_matrix(h).double().transpose(0, 1)  # (in, N, nb)
            # gelsd (SVD): LAPACK's default CPU driver, gelsy, returns results that depend on where
            # the arrays happen to sit in memory, which made seeded runs differ after refine()
            driver = "gelsd" if b.device.type == "cpu" else None
            coef = torch.linalg.lstsq(b, target.transpose(0, 1), driver=driver).solution  # (in, nb, out)
            return coef.permute(2, 0, 1).to(self.spline_weight.dtype)
        j, b = self.basis(h)
        b = b.double()
        idx = j.unsqueeze(-1) + torch.arange(k1, device=h.device)  # (N, in, k+1)
        rows = torch.arange(i, device=h.device).view(1, i, 1) * nb + idx  # row in (in * nb)
        gram = torch.zeros(i * nb, nb, dtype=torch.float64, device=h.device)
        gram.index_put_((rows.unsqueeze(-1).expand(-1, -1, k1, k1).reshape(-1),
                         idx.unsqueeze(-2).expand(-1, -1, k1, k1).reshape(-1)),
                        (b.unsqueeze(-1) * b.unsqueeze(-2)).reshape(-1), accumulate=True)
        rhs = torch.zeros(i * nb, self.out_features, dtype=torch.float64, device=h.device)
        rhs.index_add_(0, rows.reshape(-1), (b.unsqueeze(-1) * target.unsqueeze(2)).reshape(-1, self.out_features))
        gram, rhs = gram.view(i, nb, nb), rhs.view(i, nb, self.out_features)
        diag = gram.diagonal(dim1=1, dim2=2)
        scale = torch.where(diag > 0, diag, torch.ones_like(diag)).rsqrt()  # (in, nb)
        gram = gram * scale.unsqueeze(-1) * scale.unsqueeze(-2)
        gram = gram + 1e-14 * torch.eye(nb, dtype=torch.float64, device=h.device)
        coef = torch.linalg.solve(gram, rhs * scale.unsqueeze(-1)) * scale.unsqueeze(-1)  # (in, nb, out)
        return coef.permute(2, 0, 1).to(self.spline_weight.dtype)

    def _set_grid(self, grid: torch.Tensor) -> None:
        grid = grid.to(dtype=self.grid.dtype, device=self.grid.device).contiguous()
        if grid.shape == self.grid.shape:
            self.grid.copy_(grid)
        else:
            self.grid = grid
        self._geo = None

    @torch.no_grad()
    def update_grid(self, h: torch.Tensor) -> None:
        """Adapt the knots to samples of the layer input, keeping the function.

        ``h``: ``(N, in)``.  Per input, the ``G + 1`` interior knots become
        ``grid_eps * uniform(min, max) + (1 - grid_eps) * quantiles`` of the samples, extended by
        ``k`` knots of spacing ``(max - min) / G`` beyond each end; the spline coefficients are
        refitted by least squares so each edge function is preserved at the samples (the base
        branch does not depend on the grid).  Parameters are updated in place (same objects).
        """
        self._check_h(h, "KANLayer.update_grid")
        if h.shape[0] < 1:
            raise ValueError("KANLayer.update_grid needs at least one sample, got 0 rows")
        h = h.detach()
        target = self._spline_values(h)
        k, g = self.spline_order, self.grid_size
        hs = h.double()
        lo, hi = hs.amin(0), hs.amax(0)
        span = hi - lo
        small = span <= 1e-8 * hs.abs().amax(0).clamp_min(1.0)
        pad = torch.where(small, 1e-3 * hs.abs().amax(0).clamp_min(1.0), torch.zeros_like(span))
        lo, hi = lo - pad, hi + pad
        span = hi - lo
        qs = torch.linspace(0, 1, g + 1, dtype=torch.float64, device=h.device)
        srt = hs.sort(0).values
        pos = qs * (hs.shape[0] - 1)
        below = pos.floor().long().clamp_(max=max(hs.shape[0] - 2, 0))
        frac = (pos - below).unsqueeze(1)
        above = (below + 1).clamp_(max=hs.shape[0] - 1)
        adaptive = (srt[below] + frac * (srt[above] - srt[below])).t().contiguous()  # (in, G+1) quantiles
        adaptive[:, 0], adaptive[:, -1] = lo, hi
        uniform = lo.unsqueeze(1) + span.unsqueeze(1) * qs
        eps = torch.full_like(lo, self.grid_eps)
        eps = torch.where(small, torch.ones_like(eps), eps)
        inner = eps.unsqueeze(1) * uniform + (1 - eps.unsqueeze(1)) * adaptive
        # knots closer than 1e-3 of a uniform cell (repeated samples, grid_eps = 0): mix in uniform
        crowded = (inner.diff(dim=1) < 1e-3 * (span / g).unsqueeze(1)).any(1)
        eps2 = torch.where(crowded, eps.clamp_min(1e-2), eps)
        inner = eps2.unsqueeze(1) * uniform + (1 - eps2.unsqueeze(1)) * adaptive
        step = (span / g).unsqueeze(1)
        ext = torch.arange(1, k + 1, dtype=torch.float64, device=h.device)
        grid = torch.cat([inner[:, :1] - step * ext.flip(0), inner, inner[:, -1:] + step * ext], 1)
        self._set_grid(grid)
        self.spline_weight.copy_(self._fit(h, target))

    @torch.no_grad()
    def refine(self, new_grid_size: int) -> "KANLayer":
        """Move the splines to a grid of ``new_grid_size`` intervals over the same range(s)
        (grid extension), keeping each edge function: least squares on ``k + 2`` points per
        new interval, exact to round-off when the new grid nests the old one (e.g. 5 -> 10).
        A uniform grid stays uniform; an adapted grid is subdivided by interpolating its knots.
        ``spline_weight`` and ``grid`` are replaced (new shapes); returns ``self``."""
        new_g = check_int(new_grid_size, "new_grid_size", 1)
        k, g, i = self.spline_order, self.grid_size, self.in_features
        geo = self._geometry()
        old = self.grid.double()
        inner = old[:, k:k + g + 1]
        lo, hi = inner[:, 0], inner[:, -1]
        if geo.uniform:
            unit = torch.arange(-k, new_g + k + 1, dtype=torch.float64, device=old.device) / new_g
            grid = lo.unsqueeze(1) + (hi - lo).unsqueeze(1) * unit
            grid[:, k + new_g] = hi
        else:
            pos = torch.arange(new_g + 1, dtype=torch.float64, device=old.device) * (g / new_g)
            left = pos.floor().long().clamp_(max=g - 1)
            frac = pos - left
            new_inner = inner[:, left] + frac * (inner[:, left + 1] - inner[:, left])
            new_inner[:, 0], new_inner[:, -1] = lo, hi
            step = ((hi - lo) / new_g).unsqueeze(1)
            ext = torch.arange(1, k + 1, dtype=torch.float64, device=old.device)
            grid = torch.cat([new_inner[:, :1] - step * ext.flip(0), new_inner, new_inner[:, -1:] + step * ext], 1)
        # sample points: k + 2 per new interval, interior, in every input's range
        fr = (torch.arange(k + 2, dtype=torch.float64, device=old.device) + 0.5) / (k + 2)
        ginner = grid[:, k:k + new_g + 1]
        pts = (ginner[:, :-1].unsqueeze(-1) + ginner.diff(dim=1).unsqueeze(-1) * fr).reshape(i, -1).t()
        pts = pts.to(self.spline_weight.dtype).contiguous()
        target = self._spline_values(pts)
        self.grid_size = new_g
        self._set_grid(grid)
        requires_grad = self.spline_weight.requires_grad
        self.spline_weight = nn.Parameter(
            torch.zeros(self.out_features, i, new_g + k, dtype=self.spline_weight.dtype,
                        device=self.spline_weight.device), requires_grad=requires_grad)
        self.spline_weight.data.copy_(self._fit(pts, target, dense=True))
        return self

    # ------------------------------------------------------------------ state_dict
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._geo = None


# --------------------------------------------------------------------------------------------
# network
# --------------------------------------------------------------------------------------------
class KAN(Model):
    """B-spline Kolmogorov–Arnold network: a stack of :class:`KANLayer`.

    Args:
        widths: layer widths ``[in, hidden..., out]``, e.g. ``[2, 10, 1]`` (copied, never mutated).
        grid_size, spline_order, grid_range, base_activation, grid_eps, bias, noise_scale:
            passed to every :class:`KANLayer`.
        dtype, device: of the parameters (``None``: torch defaults).
        seed: if given, the initial parameters are drawn from ``torch.Generator().manual_seed(seed)``
            (identical on every device); otherwise from torch's global generator.

    ``forward(x)``: ``(N, widths[0])`` -> ``(N, widths[-1])``.  Trainable parameters per layer:
    ``in * out * (G + k + 2) + out`` (``G + k`` spline coefficients, ``w_s`` and ``w_b`` per edge,
    one bias per node).
    """

    def __init__(self, widths: Sequence[int], grid_size: int = 5, spline_order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), base_activation: str = "silu",
                 grid_eps: float = 0.02, bias: bool = True, noise_scale: float = 0.1,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                 seed: int | None = None):
        super().__init__(widths)
        self.grid_size = check_int(grid_size, "grid_size", 1)
        self.spline_order = check_int(spline_order, "spline_order", 1)
        self.grid_range = _check_grid_range(grid_range)
        self.base_activation = _check_activation(base_activation)
        if seed is not None:
            seed = check_int(seed, "seed", 0)
        self.layers = nn.ModuleList(
            KANLayer(a, b, self.grid_size, self.spline_order, self.grid_range, self.base_activation,
                     grid_eps, bias, noise_scale, dtype=dtype, device=device)
            for a, b in zip(self.widths[:-1], self.widths[1:])
        )
        if seed is not None:
            self.reset_parameters(torch.Generator().manual_seed(seed))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw every layer's parameters (see :meth:`KANLayer.reset_parameters`)."""
        for layer in self.layers:
            layer.reset_parameters(generator)

    def extra_repr(self) -> str:
        return (f"widths={self.widths}, grid_size={self.grid_size}, spline_order={self.spline_order}, "
                f"base_activation={self.base_activation!r}")

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor) -> None:
        """Adapt every layer's knots to its inputs at the samples ``x`` ``(N, in)`` (layer by
        layer, each seeing the already updated layers' outputs), keeping the function
        (see :meth:`KANLayer.update_grid`).  Parameters keep their identity and shapes."""
        self._check(x)
        h = x.detach()
        for layer in self.layers:
            layer.update_grid(h)
            h = layer(h)

    def refine(self, new_grid_size: int) -> "KAN":
        """Grid extension: every layer moves to ``new_grid_size`` intervals keeping its
        function (see :meth:`KANLayer.refine`).  Replaces the spline parameters (create a new
        optimizer afterwards); updates ``grid_size``; returns ``self``."""
        new_grid_size = check_int(new_grid_size, "new_grid_size", 1)
        for layer in self.layers:
            layer.refine(new_grid_size)
        self.grid_size = new_grid_size
        return self

    def regularization_loss(self, x: torch.Tensor, lamb_l1: float = 1.0, lamb_entropy: float = 2.0) -> torch.Tensor:
        """The KAN paper's sparsification penalty (section 2.5.1) on the batch ``x`` ``(N, in)``.

        For every layer the L1 norm of edge ``p -> q`` is ``|phi_qp|_1 = mean_n |phi_qp(h_np)|``;
        the layer contributes ``lamb_l1 * sum_qp |phi_qp|_1 + lamb_entropy * S`` with the entropy
        ``S = -sum_qp (|phi_qp|_1 / total) log(|phi_qp|_1 / total)``.  Returns a scalar tensor,
        differentiable in the parameters.  ``x`` is explicit: ``forward`` keeps no state.
        """
        self._check(x)
        lamb_l1 = _check_real(lamb_l1, "lamb_l1", 0.0)
        lamb_entropy = _check_real(lamb_entropy, "lamb_entropy", 0.0)
        total = x.new_zeros(())
        h = x
        for layer in self.layers:
            phi = layer.edge_activations(h)  # (N, in, out)
            l1 = phi.abs().mean(0)
            s = l1.sum()
            p = l1 / s.clamp_min(torch.finfo(x.dtype).tiny)
            entropy = -(p * torch.log(p.clamp_min(torch.finfo(x.dtype).tiny))).sum()
            total = total + lamb_l1 * s + lamb_entropy * entropy
            h = phi.sum(1)
            if layer.bias is not None:
                h = h + layer.bias
        return total

    @torch.no_grad()
    def activation_curves(self, n: int = 200) -> list[dict]:
        """Every edge function sampled over its grid range, for plotting (the paper's view).

        Returns one dict per layer: ``"x"`` ``(n, in)`` (column ``p`` spans input ``p``'s knot
        range) and ``"phi"`` ``(n, in, out)`` with ``phi[:, p, q] = phi_qp(x[:, p])``.
        """
        n = check_int(n, "n", 2)
        curves = []
        for layer in self.layers:
            k, g = layer.spline_order, layer.grid_size
            lo, hi = layer.grid[:, k], layer.grid[:, k + g]
            t = torch.linspace(0, 1, n, dtype=lo.dtype, device=lo.device).unsqueeze(1)
            x = (lo + (hi - lo) * t).contiguous()
            curves.append({"x": x, "phi": layer.edge_activations(x)})
        return curves
