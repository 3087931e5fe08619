"""B-spline knots and their polynomial pieces, and where an input lies on them.

A layer's grid holds, per input, ``G + 2k + 1`` knots: ``G + 1`` spanning the grid range plus
``k`` more beyond each end (``k`` = spline order).  A degree-``k`` B-spline is a polynomial of
degree ``k`` on each knot interval, and only ``k + 1`` of them are nonzero on an interval, so
the layer works in piecewise-polynomial form: :func:`interval_polynomials` gives the pieces
``M`` of the local B-splines per interval (one shared ``(k + 1, k + 1)`` matrix on a uniform
grid, the cardinal B-spline pieces).  :class:`KnotIntervals` keeps what a forward pass needs of
a grid (interval starts, inverse widths, the pieces), and :func:`locate_points` /
:func:`locate_planes` find every input value's interval and local coordinate
``u = (x - t_j) / (t_{j+1} - t_j)``: a division on a uniform grid, ``searchsorted`` otherwise.
Inputs outside the grid use the end intervals' polynomials (clamped interval index), so the
network is smooth, finite and has nonzero derivatives everywhere.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .located import LocatedInputs

__all__ = ["interval_polynomials", "uniform_knots", "is_uniform", "KnotIntervals", "locate_points",
           "locate_planes"]


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



def is_uniform(grid: torch.Tensor, k: int, g: int) -> bool:
    """Whether the knots ``grid`` ``(in, G + 2k + 1)`` are equally spaced per input, to within
    a few rounding errors of their dtype."""
    if not grid.numel():
        return True
    lo, hi = grid[:, k], grid[:, k + g]
    uniform = lo.unsqueeze(1) + ((hi - lo) / g).unsqueeze(1) * torch.arange(-k, g + k + 1, dtype=grid.dtype,
                                                                            device=grid.device)
    scale = (hi - lo).abs().max().clamp_min(torch.finfo(grid.dtype).tiny)
    return bool(((grid - uniform).abs().max() <= 64 * torch.finfo(grid.dtype).eps * scale).item())


def uniform_knots(lo: float, hi: float, grid_size: int, spline_order: int, **kw) -> torch.Tensor:
    """The ``G + 2k + 1`` equally spaced knots of ``G = grid_size`` intervals over ``[lo, hi]``
    (float64 arithmetic, exact ends), converted with ``**kw`` (``dtype``, ``device``)."""
    h = (hi - lo) / grid_size
    i = torch.arange(-spline_order, grid_size + spline_order + 1, dtype=torch.float64)
    t = lo + i * h
    t[spline_order + grid_size] = hi  # exact right end
    return t.to(**kw)


@dataclass
class KnotIntervals:
    """What a forward pass needs to know about a layer's grid (built by :meth:`of`, cached by
    the layer per grid tensor version).

    ``uniform``: every input's knots are equally spaced (to round-off).  Uniform grids keep the
    interval start ``lo`` and inverse width ``inv_width`` per input (``(in,)``, and as
    ``(in, 1)`` columns ``lo_col``/``inv_width_col`` for input-major inputs); others the inner
    knots ``inner`` ``(in, G + 1)``, and per block ``p * G + j`` the interval's left knot
    ``left`` and inverse width ``inv_width_flat``.  ``pieces``: :func:`interval_polynomials`,
    ``(k + 1, k + 1)`` shared (uniform) or ``(in, G, k + 1, k + 1)``.  ``offset_col``: ``p * G``
    per input, ``(in, 1)``.
    """

    key: tuple
    uniform: bool
    pieces: torch.Tensor
    offset_col: torch.Tensor
    lo: torch.Tensor | None = None
    inv_width: torch.Tensor | None = None
    lo_col: torch.Tensor | None = None
    inv_width_col: torch.Tensor | None = None
    inner: torch.Tensor | None = None
    left: torch.Tensor | None = None
    inv_width_flat: torch.Tensor | None = None

    @staticmethod
    def key_of(grid: torch.Tensor) -> tuple:
        """Identity of a grid tensor's current contents."""
        return grid.data_ptr(), grid._version, grid.dtype, grid.device, grid.shape

    @classmethod
    @torch.no_grad()
    def of(cls, grid: torch.Tensor, spline_order: int, grid_size: int) -> "KnotIntervals":
        """The intervals of ``grid`` ``(in, G + 2k + 1)``."""
        k, g = spline_order, grid_size
        inner = grid[:, k:k + g + 1]
        lo, hi = inner[:, 0], inner[:, -1]
        offset_col = (torch.arange(grid.shape[0], device=grid.device) * g).unsqueeze(1)
        if is_uniform(grid, k, g):
            lo = lo.clone()
            inv_width = 1.0 / ((hi - lo) / g)
            unit = torch.arange(2 * k + 2, dtype=grid.dtype, device=grid.device)
            return cls(cls.key_of(grid), True, interval_polynomials(unit, k)[0], offset_col, lo=lo,
                       inv_width=inv_width, lo_col=lo.unsqueeze(1), inv_width_col=inv_width.unsqueeze(1))
        return cls(cls.key_of(grid), False, interval_polynomials(grid, k), offset_col, inner=inner.contiguous(),
                   left=inner[:, :-1].reshape(-1).contiguous(),
                   inv_width_flat=(1.0 / inner.diff(dim=1)).reshape(-1).contiguous())


def locate_points(h: torch.Tensor, knots: KnotIntervals, grid_size: int, spline_order: int,
                  base: str) -> tuple[LocatedInputs, torch.Tensor]:
    """Interval of every input value and its local coordinate, point-major.

    ``h``: ``(N, in)``.  Returns the :class:`LocatedInputs` record (blocks ``p * G + j`` with the
    interval ``j`` clamped to ``[0, G - 1]``, so outside values continue the end pieces) and
    ``u`` ``(N, in)`` with its graph to ``h`` (``du/dh = 1 / h_j``).
    """
    g = grid_size
    offset = torch.arange(h.shape[1], device=h.device) * g
    if knots.uniform:
        xi = (h - knots.lo) * knots.inv_width
        # NaN inputs give NaN outputs (interval 0), not an out-of-range index
        j = xi.detach().floor().clamp_(0, g - 1).nan_to_num_(0.0)
        u = xi - j
        block = j.long() + offset
        du_dh = knots.inv_width
    else:
        hd = h.detach().t().contiguous()
        j = torch.searchsorted(knots.inner, hd, right=True).sub_(1).clamp_(0, g - 1).t()
        block = (j + offset).contiguous()
        du_dh = knots.inv_width_flat.take(block)
        u = (h - knots.left.take(block)) * du_dh
    return LocatedInputs(block, u, du_dh, spline_order, h.shape[1] * g, base, inputs_major=False), u


def locate_planes(h: torch.Tensor, knots: KnotIntervals, grid_size: int, spline_order: int,
                  base: str) -> LocatedInputs:
    """:func:`locate_points` input-major and without graph: ``block``/``u`` ``(in, N)`` (edge
    ``p * N + n``); the record also keeps the inputs as planes, ``h.t()`` (contiguous,
    detached)."""
    g = grid_size
    ht = h.detach().t().contiguous()
    if knots.uniform:
        du_dh = knots.inv_width_col
        xi = (ht - knots.lo_col) * du_dh
        j = xi.floor().clamp_(0, g - 1).nan_to_num_(0.0)
        u = xi - j
        block = j.long().add_(knots.offset_col)
    else:
        j = torch.searchsorted(knots.inner, ht, right=True).sub_(1).clamp_(0, g - 1)
        block = j + knots.offset_col
        du_dh = knots.inv_width_flat.take(block)
        u = (ht - knots.left.take(block)) * du_dh
    return LocatedInputs(block, u, du_dh, spline_order, h.shape[1] * g, base, inputs_major=True, inputs=ht)
