"""Approximate distance functions (ADFs) and the R-functions that combine them.

An ADF ``phi`` of a boundary piece vanishes exactly on the piece, is positive in the domain and
is *normalised to first order*: ``|grad phi| = 1`` on the piece (away from corners), so near the
piece it agrees with the distance to first order.  They are what exact imposition of boundary
conditions multiplies a network by (Sukumar & Srivastava 2022, "Exact imposition of boundary
conditions with distance functions in physics-informed deep neural networks", CMAME 389,
114333; below "S&S").  Every function here works on torch tensors of any floating dtype and
device, and is differentiable to second order in the points without NaNs, also on the pieces
themselves (where the functions are evaluated through forms without ``sqrt(0)`` or ``0 / 0``).

- :func:`conjunction` / :func:`disjunction`: the R0 system of R-functions (S&S sec. 3.1), the
  signed ADF of an intersection / union of two sets given by signed ADFs (positive inside,
  negative outside); negation is ``-phi``.
- :func:`join`: R-equivalence of order 1 (S&S eq. (8)), ``1 / sum_k 1 / phi_k``: the ADF of a
  boundary made of several pieces, each with its own ADF.
- :func:`transfinite_weights`: the weights ``w_i = prod_{j != i} phi_j / sum_k prod_{j != k}
  phi_k`` of transfinite interpolation (S&S sec. 5): ``w_i = 1`` on piece ``i``, 0 on the others.
- :func:`trim`: ADF of the part of the zero set of ``f`` where a trimming function ``t >= 0``
  (S&S sec. 3.2, eq. (12)); :func:`segment`, the ADF of a line segment (S&S eq. (13)), is its
  main use.
"""
from __future__ import annotations

import torch

__all__ = ["safe_sqrt", "conjunction", "disjunction", "join", "transfinite_weights", "trim",
           "segment", "band"]


def band(x: torch.Tensor, scale: float) -> float:
    """Width of the band around a boundary inside which points count as on it:
    ``max(1e-8, 64 eps) * scale`` for the machine epsilon of ``x``'s dtype (the geometry
    module's default tolerance)."""
    return max(1e-8, 64 * torch.finfo(x.dtype).eps) * scale


def safe_sqrt(a: torch.Tensor) -> torch.Tensor:
    """``sqrt(a)`` for ``a > 0`` and 0 elsewhere, with finite derivatives everywhere (0 where
    ``a <= 0``, instead of the infinite slope of ``sqrt`` at 0 that turns into NaN)."""
    pos = a > 0
    return torch.where(pos, torch.sqrt(torch.where(pos, a, torch.ones_like(a))),
                       torch.zeros_like(a))


def conjunction(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """R0 conjunction ``a + b - sqrt(a^2 + b^2)``: positive where both are, the signed ADF of
    the intersection (shape of ``a``)."""
    return a + b - safe_sqrt(a * a + b * b)


def disjunction(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """R0 disjunction ``a + b + sqrt(a^2 + b^2)``: positive where either is, the signed ADF of
    the union (shape of ``a``)."""
    return a + b + safe_sqrt(a * a + b * b)


def _ratios(r: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(r_p, q)`` for ADF columns ``r`` ``(N, K)``: ``r_p`` ``(N, 1)`` the smallest per row,
    ``q_k = r_p / r_k`` (1 for ``k = p``, and 1 where ``r_k = 0``, so the pieces meeting at a
    corner share it).

    ``1 / sum_k 1 / r_k = r_p / sum_k q_k``: this form has no ``1 / 0`` on a piece and its
    derivatives there are the true ones (``q_p`` is the constant 1, every other ``q_k`` has
    ``r_k > 0``)."""
    p = r.argmin(dim=1, keepdim=True)
    r_p = r.gather(1, p)
    is_p = torch.zeros_like(r, dtype=torch.bool).scatter_(1, p, True)
    pos = r > 0
    ratio = r_p / torch.where(pos, r, torch.ones_like(r))
    one = torch.ones_like(r)
    return r_p, torch.where(is_p, one, torch.where(pos, ratio, one))


def _columns(phis) -> torch.Tensor:
    r = torch.stack(list(phis), dim=1) if isinstance(phis, (list, tuple)) else phis
    if r.dim() != 2 or r.shape[1] == 0:
        raise ValueError(f"expected ADF columns of shape (N, K) with K >= 1, got {tuple(r.shape)}")
    return r


def join(phis) -> torch.Tensor:
    """R-equivalence of order 1 of the ADFs of ``K`` boundary pieces, ``1 / sum_k 1 / phi_k``.

    Args:
        phis: ``(N, K)`` tensor or a list of ``K`` tensors ``(N,)``; each non-negative in the
            domain and zero on its piece.

    Returns:
        ``(N,)``: zero on every piece, positive elsewhere in the domain, and equal to ``phi_k``
        to first order near piece ``k`` (away from where pieces meet).
    """
    r = _columns(phis)
    r_p, q = _ratios(r)
    return r_p[:, 0] / q.sum(dim=1)


def transfinite_weights(phis) -> torch.Tensor:
    """Transfinite interpolation weights ``w_i = phi_i^-1 / sum_k phi_k^-1`` (S&S sec. 5).

    Args:
        phis: ``(N, K)`` tensor or a list of ``K`` tensors ``(N,)`` as for :func:`join`.

    Returns:
        ``(N, K)`` weights summing to 1 per row, ``w_i = 1`` on piece ``i`` (shared equally
        where pieces meet), smooth where every ``phi_k > 0``.
    """
    _, q = _ratios(_columns(phis))
    return q / q.sum(dim=1, keepdim=True)


def trim(f: torch.Tensor, t: torch.Tensor, tol: float) -> torch.Tensor:
    """ADF of the piece ``{f = 0, t >= 0}`` of the zero set of ``f`` (S&S eq. (12))::

        phi = sqrt(f^2 + ((rho - t) / 2)^2),   rho = sqrt(t^2 + f^4)

    ``f`` ``(N,)`` is a first-order normalised signed ADF of a curve (surface) that is positive
    on the domain's side of the kept piece, ``t`` ``(N,)`` a trimming function.  Where ``t > 0``
    the form ``phi = f sqrt(1 + f^6 / (4 (rho + t)^2))`` (the same function, since
    ``rho - t = f^4 / (rho + t)``) is used with the sign of ``f``, which keeps ``phi`` smooth
    across the kept piece: it is signed within the band ``f > -tol`` and ``|f|``-like beyond it
    (points that see the piece from its far side, e.g. across a non-convex domain).

    Returns:
        ``(N,)``, zero on the piece and positive elsewhere (negative only in the band on the
        outer side).
    """
    pos = t > 0
    one = torch.ones_like(t)
    f2 = f * f
    f4 = f2 * f2
    t_in = torch.where(pos, t, one)
    rho_in = torch.sqrt(t_in * t_in + f4)
    sign = torch.where(f < -tol, -one, one)
    kept = sign * f * torch.sqrt(1 + f4 * f2 / (4 * (rho_in + t_in) ** 2))
    t_out = torch.where(pos, -one, t)
    psi = (safe_sqrt(t_out * t_out + f4) - t_out) / 2
    return torch.where(pos, kept, safe_sqrt(f2 + psi * psi))


def segment(x: torch.Tensor, a: torch.Tensor, b: torch.Tensor, tol: float) -> torch.Tensor:
    """ADF of the segment from ``a`` to ``b`` (2-D, S&S eq. (13)), positive to its left.

    Args:
        x: points ``(N, 2)``; ``a``, ``b``: end points ``(2,)`` (same dtype and device).
        tol: band width of :func:`trim`.

    Returns:
        ``(N,)``: ``f`` is the signed distance to the segment's line (positive on the left of
        ``a -> b``), ``t = ((L/2)^2 - |x - c|^2) / L`` the disk with the segment as diameter.
    """
    e = b - a
    length = torch.linalg.vector_norm(e)
    rel = x - a
    f = (e[0] * rel[:, 1] - e[1] * rel[:, 0]) / length
    centre = (a + b) / 2
    t = ((length / 2) ** 2 - ((x - centre) ** 2).sum(dim=1)) / length
    return trim(f, t, tol)
