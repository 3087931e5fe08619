"""Grid changes of a KAN layer that keep its function: knots that follow the samples
(``update_grid``), grid extension (``refine``) and the least-squares refits behind both.

The seed paper (Liu et al. 2024, sec. 2.2) updates each layer's grid from its input samples,
because inputs leave the spline's range during training, and extends grids (G = 5 -> 10 -> 20)
to trade a coarse fit for a fine one.  Both move the knots and then fit new spline coefficients
to the old edge functions, so training continues from the same function.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from .planar import spline_planes
from .rows import CHUNK

if TYPE_CHECKING:  # the layer imports this module
    from .layer import KANLayer

__all__ = ["spline_values", "fit_coefficients", "adapted_knots", "refined_knots", "refit_points"]


@torch.no_grad()
def spline_values(layer: "KANLayer", h: torch.Tensor) -> torch.Tensor:
    """Unscaled edge splines ``sum_i c[q, p, i] B_i(h_p)`` of ``layer``: ``(N, in, out)`` (in
    chunks of rows, so the gathered coefficient rows stay small)."""
    table = layer.table(layer.spline_weight)
    step = max(1, CHUNK * 8 // (layer.in_features * layer.out_features * (layer.spline_order + 1)))
    out = []
    for start in range(0, h.shape[0], step):
        loc = layer.locate_planes(h[start:start + step])
        out.append(spline_planes(loc, table, 1)[0].view(layer.out_features, layer.in_features, -1).permute(2, 1, 0))
    return torch.cat(out) if len(out) > 1 else out[0]


@torch.no_grad()
def fit_coefficients(layer: "KANLayer", h: torch.Tensor, target: torch.Tensor, dense: bool = False) -> torch.Tensor:
    """Least-squares spline coefficients on ``layer``'s current grid: ``sum_n |sum_i c[q, p, i]
    B_i(h[n, p]) - target[n, p, q]|^2`` minimal for every edge.  ``h`` ``(N, in)``, ``target``
    ``(N, in, out)`` -> ``c`` ``(out, in, G + k)``, computed in float64.

    ``dense``: QR least squares on the ``(N, G + k)`` basis matrix of each input (accurate to
    round-off; for the few points of a refinement).  Otherwise normal equations assembled from
    the local basis (memory ``O(N k)``), Jacobi-scaled, with a tiny ridge that keeps B-splines
    without samples in their support at zero."""
    i, nb, k1 = layer.in_features, layer.n_basis, layer.spline_order + 1
    dtype = layer.spline_weight.dtype
    target = target.double()
    if dense:
        b = layer.basis_matrix(h).double().transpose(0, 1)  # (in, N, nb)
        # gelsd (SVD): LAPACK's default CPU driver, gelsy, returns results that depend on where
        # the arrays happen to sit in memory, which made seeded runs differ after refine()
        driver = "gelsd" if b.device.type == "cpu" else None
        coef = torch.linalg.lstsq(b, target.transpose(0, 1), driver=driver).solution  # (in, nb, out)
        return coef.permute(2, 0, 1).to(dtype)
    j, b = layer.basis(h)
    b = b.double()
    idx = j.unsqueeze(-1) + torch.arange(k1, device=h.device)  # (N, in, k+1)
    rows = torch.arange(i, device=h.device).view(1, i, 1) * nb + idx  # row in (in * nb)
    gram = torch.zeros(i * nb, nb, dtype=torch.float64, device=h.device)
    gram.index_put_((rows.unsqueeze(-1).expand(-1, -1, k1, k1).reshape(-1),
                     idx.unsqueeze(-2).expand(-1, -1, k1, k1).reshape(-1)),
                    (b.unsqueeze(-1) * b.unsqueeze(-2)).reshape(-1), accumulate=True)
    rhs = torch.zeros(i * nb, layer.out_features, dtype=torch.float64, device=h.device)
    rhs.index_add_(0, rows.reshape(-1), (b.unsqueeze(-1) * target.unsqueeze(2)).reshape(-1, layer.out_features))
    gram, rhs = gram.view(i, nb, nb), rhs.view(i, nb, layer.out_features)
    diag = gram.diagonal(dim1=1, dim2=2)
    scale = torch.where(diag > 0, diag, torch.ones_like(diag)).rsqrt()  # (in, nb)
    gram = gram * scale.unsqueeze(-1) * scale.unsqueeze(-2)
    gram = gram + 1e-14 * torch.eye(nb, dtype=torch.float64, device=h.device)
    coef = torch.linalg.solve(gram, rhs * scale.unsqueeze(-1)) * scale.unsqueeze(-1)  # (in, nb, out)
    return coef.permute(2, 0, 1).to(dtype)


@torch.no_grad()
def adapted_knots(h: torch.Tensor, grid_size: int, spline_order: int, grid_eps: float) -> torch.Tensor:
    """Knots ``(in, G + 2k + 1)`` (float64) that follow the samples ``h`` ``(N, in)``: per input,
    the ``G + 1`` interior knots are ``grid_eps * uniform(min, max) + (1 - grid_eps) *
    quantiles``, extended by ``k`` knots of spacing ``(max - min) / G`` beyond each end.  A
    constant input gets a small range around its value; knots closer than 1e-3 of a uniform cell
    (repeated samples) get at least 1 % of the uniform grid mixed in."""
    k, g = spline_order, grid_size
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
    eps = torch.full_like(lo, grid_eps)
    eps = torch.where(small, torch.ones_like(eps), eps)
    inner = eps.unsqueeze(1) * uniform + (1 - eps.unsqueeze(1)) * adaptive
    # knots closer than 1e-3 of a uniform cell (repeated samples, grid_eps = 0): mix in uniform
    crowded = (inner.diff(dim=1) < 1e-3 * (span / g).unsqueeze(1)).any(1)
    eps2 = torch.where(crowded, eps.clamp_min(1e-2), eps)
    inner = eps2.unsqueeze(1) * uniform + (1 - eps2.unsqueeze(1)) * adaptive
    step = (span / g).unsqueeze(1)
    ext = torch.arange(1, k + 1, dtype=torch.float64, device=h.device)
    return torch.cat([inner[:, :1] - step * ext.flip(0), inner, inner[:, -1:] + step * ext], 1)


@torch.no_grad()
def refined_knots(grid: torch.Tensor, spline_order: int, grid_size: int, new_grid_size: int,
                  uniform: bool) -> torch.Tensor:
    """Knots ``(in, new_G + 2k + 1)`` (float64) of ``new_grid_size`` intervals over the same
    range(s) as ``grid``: a uniform grid stays uniform; an adapted grid is subdivided by
    interpolating its knots."""
    k, g, new_g = spline_order, grid_size, new_grid_size
    old = grid.double()
    inner = old[:, k:k + g + 1]
    lo, hi = inner[:, 0], inner[:, -1]
    if uniform:
        unit = torch.arange(-k, new_g + k + 1, dtype=torch.float64, device=old.device) / new_g
        new = lo.unsqueeze(1) + (hi - lo).unsqueeze(1) * unit
        new[:, k + new_g] = hi
        return new
    pos = torch.arange(new_g + 1, dtype=torch.float64, device=old.device) * (g / new_g)
    left = pos.floor().long().clamp_(max=g - 1)
    frac = pos - left
    new_inner = inner[:, left] + frac * (inner[:, left + 1] - inner[:, left])
    new_inner[:, 0], new_inner[:, -1] = lo, hi
    step = ((hi - lo) / new_g).unsqueeze(1)
    ext = torch.arange(1, k + 1, dtype=torch.float64, device=old.device)
    return torch.cat([new_inner[:, :1] - step * ext.flip(0), new_inner, new_inner[:, -1:] + step * ext], 1)


def refit_points(grid: torch.Tensor, spline_order: int, grid_size: int) -> torch.Tensor:
    """Sample points for a refit on ``grid`` (float64 knots of ``grid_size`` intervals): ``k + 2``
    per interval, interior, in every input's range; ``(G * (k + 2), in)``."""
    k, g = spline_order, grid_size
    fr = (torch.arange(k + 2, dtype=torch.float64, device=grid.device) + 0.5) / (k + 2)
    inner = grid[:, k:k + g + 1]
    return (inner[:, :-1].unsqueeze(-1) + inner.diff(dim=1).unsqueeze(-1) * fr).reshape(grid.shape[0], -1).t()
