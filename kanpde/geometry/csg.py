"""Constructive solid geometry: :class:`Union` (``a | b``), :class:`Difference` (``a - b``)
and :class:`Intersection` (``a & b``) of two geometries."""
from __future__ import annotations

from abc import abstractmethod

import numpy as np
import torch

from kanpde.geometry import adf
from kanpde.geometry.base import Geometry, _check_geometry, _unit_normalise
from kanpde.geometry.box import Box
from kanpde.sampling import sample_unit_cube

# Two unit normals whose dot product is below -1 + _GLUED count as opposite (faces glued together).
_GLUED = 1e-6
# Points used by the quasi-Monte Carlo estimates of CSG measures (scrambled Sobol, fixed seed).
_MC_POINTS_LOG2 = 16
_MC_SEED = 20240430


def _sobol_points(lo: np.ndarray, hi: np.ndarray) -> torch.Tensor:
    u = sample_unit_cube(2 ** _MC_POINTS_LOG2, len(lo), "sobol", _MC_SEED)
    return torch.from_numpy(lo + (hi - lo) * u)


class CSG(Geometry):
    """Base of :class:`Union`, :class:`Difference` and :class:`Intersection` of two
    geometries ``a`` and ``b`` of the same dimension (not space-time: build the spatial
    domain first, then multiply by a :class:`TimeDomain`).

    Parts: ``"boundary"`` plus the part names of ``a`` and ``b`` (other than ``"boundary"``)
    that only one of them has; part ``p`` of the result is the piece of the operand's part
    ``p`` that lies on the result's boundary.

    ``measure``: inclusion-exclusion, ``|a | b| = |a| + |b| - |a & b|`` and
    ``|a - b| = |a| - |a & b|``, where ``|a & b|`` is exact for two boxes and otherwise a
    quasi-Monte Carlo estimate (2**16 scrambled Sobol' points with a fixed seed over the
    overlap of the bounding boxes; relative error typically below 1e-3).  ``boundary_measure``
    is estimated the same way from the operands' boundaries.

    Sampling: the interior by rejection from the bounding box; the boundary by drawing from
    both operands' boundaries in proportion to their boundary measures and keeping the points
    on the result's boundary (a point of ``b``'s boundary that is also on ``a``'s is dropped so
    that coincident pieces are not counted twice).
    """

    symbol = "?"

    def __init__(self, a: Geometry, b: Geometry):
        a, b = _check_geometry(a, "a"), _check_geometry(b, "b")
        for name, g in (("a", a), ("b", b)):
            if g.time_axis is not None:
                raise TypeError(f"{name}={g!r} has a time axis; combine the spatial geometries "
                                f"first and multiply the result by a TimeDomain")
        if a.dim != b.dim:
            raise ValueError(f"cannot combine geometries of different dimensions: "
                             f"a={a!r} (dim {a.dim}), b={b!r} (dim {b.dim})")
        self.a, self.b = a, b
        self.dim = a.dim
        shared = set(a.parts) & set(b.parts)
        self._part_owner = {p: g for g in (a, b) for p in g.parts if p not in shared}
        self._cache: dict[str, float] = {}

    def __repr__(self) -> str:
        return f"({self.a!r} {self.symbol} {self.b!r})"

    @property
    def parts(self):
        return ("boundary",) + tuple(self._part_owner)

    def _overlap_measure(self) -> float:
        """``|a & b|``: exact for two boxes, otherwise quasi-Monte Carlo."""
        a, b = self.a, self.b
        lo = np.maximum(a.bbox[0], b.bbox[0])
        hi = np.minimum(a.bbox[1], b.bbox[1])
        if np.any(lo >= hi):
            return 0.0
        if isinstance(a, Box) and isinstance(b, Box):
            return float(np.prod(hi - lo))
        x = _sobol_points(lo, hi)
        tol = self._default_tol
        both = a._classify(x, tol)[0] & b._classify(x, tol)[0]
        return float(np.prod(hi - lo)) * float(both.double().mean())

    @property
    def measure(self) -> float:
        if "measure" not in self._cache:
            self._cache["measure"] = max(0.0, self._measure_from(
                self.a.measure, self.b.measure, self._overlap_measure()))
        return self._cache["measure"]

    @abstractmethod
    def _measure_from(self, ma: float, mb: float, mab: float) -> float:
        ...

    # -- classification -------------------------------------------------------------------------
    @abstractmethod
    def _combine(self, ia, oa, ib, ob, glued_or_aligned) -> tuple:
        """(inside, on, use_a, use_b) from the operand masks; see subclasses."""

    def _analyse(self, x, tol):
        """Masks and normals of both operands, and the combination."""
        ia, oa = self.a._classify(x, tol)
        ib, ob = self.b._classify(x, tol)
        na = torch.zeros_like(x)
        nb = torch.zeros_like(x)
        if oa.any():
            na[oa] = self.a._normals(x[oa], tol)
        if ob.any():
            nb[ob] = self.b._normals(x[ob], tol)
        sign = -1.0 if isinstance(self, Difference) else 1.0
        # Where both boundaries pass, the piece survives unless the two (effective) outward
        # normals are opposite: glued faces (union), touching sets (intersection), or a face of
        # b lying on a face of a with b on the same side (difference).
        dot = (na * nb).sum(dim=1) * sign
        not_opposite = dot > -1 + _GLUED
        inside, on, use_a, use_b = self._combine(ia, oa, ib, ob, not_opposite)
        return inside, on, use_a, use_b, na, sign * nb

    def _classify(self, x, tol):
        inside, on, *_ = self._analyse(x, tol)
        return inside, on

    def _normals(self, x, tol):
        _, on, use_a, use_b, na, nb = self._analyse(x, tol)
        normal = na * use_a.unsqueeze(1).to(x.dtype) + nb * use_b.unsqueeze(1).to(x.dtype)
        return _unit_normalise(normal) * on.unsqueeze(1).to(x.dtype)

    def _part_mask(self, x, part, tol):
        owner = self._part_owner[part]
        return self._classify(x, tol)[1] & owner._part_mask(x, part, tol)

    # -- approximate distance functions (R-functions, S&S sec. 3.1) ------------------------------
    @abstractmethod
    def _solid(self, x):
        """R-function of the operands' signed ADFs (see subclasses)."""

    @abstractmethod
    def _keeps(self, owner: Geometry, x) -> torch.Tensor:
        """Trimming function ``(N,)``, ``>= 0`` where ``owner``'s boundary is part of the
        result's boundary (the signed ADF of the other operand, or its negation)."""

    def _adf(self, x, part):
        """``"boundary"``: the signed ADF :meth:`_solid`, which is zero on the result's boundary
        and positive inside it.  A named part: the owner's exact part ADF trimmed
        (:func:`~kanpde.geometry.adf.trim`) to the piece on the result's boundary.

        R-functions vanish wherever both operands' boundaries pass, so two sets glued along a
        face have a zero of the distance on that (interior) face: build such a domain as one
        Box or Polygon when its distance is needed."""
        if part == "boundary":
            return self._solid(x)
        return self._part_adf(x, part, 1)

    def _part_adf(self, x, part, side=1):
        if part == "boundary":
            return super()._part_adf(x, part, side)
        owner = self._part_owner[part]
        # b's boundary bounds the hole of a difference: the result lies on b's outer side
        flip = -1 if isinstance(self, Difference) and owner is self.b else 1
        return adf.trim(owner._part_adf(x, part, side * flip), self._keeps(owner, x),
                        adf.band(x, self._scale))

    # -- sampling -------------------------------------------------------------------------------
    @property
    def _interior_rate(self) -> float:
        lo, hi = self.bbox
        return min(1.0, max(self.measure / float(np.prod(hi - lo)), 1e-3) * 0.999)

    def _boundary_unit_dim(self, part):
        if part == "boundary":
            return max(1, *(g._boundary_unit_dim("boundary") for g in (self.a, self.b)))
        return self._part_owner[part]._boundary_unit_dim(part)

    def _boundary_from_unit(self, u, part):
        m, tol = len(u), self._default_tol
        if part != "boundary":
            x, _, ok = self._part_owner[part]._boundary_from_unit(u, part)
            ok = ok & self._classify(x, tol)[1]
            return x, self._normals(x, tol), ok
        la, lb = self.a.boundary_measure, self.b.boundary_measure
        share_a = la / (la + lb)
        first = u[:, 0]
        from_a = first < share_a
        # Rescale the operand-choosing coordinate to [0, 1) and reuse it.
        below_one = float(np.nextafter(1.0, 0.0))
        rest = torch.where(from_a, first / share_a, (first - share_a) / (1 - share_a))
        rest = rest.clamp(0, below_one)
        v = torch.cat([rest.unsqueeze(1), u[:, 1:]], dim=1)
        x = torch.zeros((m, self.dim), dtype=torch.float64)
        ok = torch.zeros(m, dtype=torch.bool)
        for g, rows in ((self.a, from_a), (self.b, ~from_a)):
            if rows.any():
                k = g._boundary_unit_dim("boundary")
                xg, _, okg = g._boundary_from_unit(v[rows, :k], "boundary")
                x[rows], ok[rows] = xg, okg
        ok &= self._classify(x, tol)[1]
        dup = ~from_a & ok
        if dup.any():
            ok[dup] = ~self.a._classify(x[dup], tol)[1]
        return x, self._normals(x, tol), ok

    def _kept_fraction(self) -> float:
        if "kept" not in self._cache:
            k = self._boundary_unit_dim("boundary")
            u = torch.from_numpy(sample_unit_cube(2 ** 14, k, "sobol", _MC_SEED))
            self._cache["kept"] = float(self._boundary_from_unit(u, "boundary")[-1].double().mean())
        return self._cache["kept"]

    def _boundary_rate(self, part):
        return max(self._kept_fraction(), 1e-3) * 0.95 if part == "boundary" else 0.5

    @property
    def boundary_measure(self) -> float:
        return self._kept_fraction() * (self.a.boundary_measure + self.b.boundary_measure)


class Union(CSG):
    """``a | b``: points in ``a`` or in ``b``."""

    symbol = "|"

    @property
    def bbox(self):
        (lo_a, hi_a), (lo_b, hi_b) = self.a.bbox, self.b.bbox
        return np.minimum(lo_a, lo_b), np.maximum(hi_a, hi_b)

    def _measure_from(self, ma, mb, mab):
        return ma + mb - mab

    def _solid(self, x):
        return adf.disjunction(self.a._solid(x), self.b._solid(x))

    def _keeps(self, owner, x):
        other = self.b if owner is self.a else self.a
        return -other._solid(x)

    def _combine(self, ia, oa, ib, ob, not_opposite):
        both = oa & ob & not_opposite
        use_a = (oa & ~ib) | both
        use_b = (ob & ~ia) | both
        return ia | ib, use_a | use_b, use_a, use_b


class Intersection(CSG):
    """``a & b``: points in both ``a`` and ``b``.  The bounding boxes must overlap."""

    symbol = "&"

    def __init__(self, a, b):
        super().__init__(a, b)
        lo, hi = self.bbox
        if np.any(lo > hi):
            raise ValueError(f"the intersection of {a!r} and {b!r} is empty "
                             f"(their bounding boxes do not overlap)")

    @property
    def bbox(self):
        (lo_a, hi_a), (lo_b, hi_b) = self.a.bbox, self.b.bbox
        return np.maximum(lo_a, lo_b), np.minimum(hi_a, hi_b)

    def _measure_from(self, ma, mb, mab):
        return mab

    def _solid(self, x):
        return adf.conjunction(self.a._solid(x), self.b._solid(x))

    def _keeps(self, owner, x):
        other = self.b if owner is self.a else self.a
        return other._solid(x)

    def _combine(self, ia, oa, ib, ob, not_opposite):
        strict_a, strict_b = ia & ~oa, ib & ~ob
        both = oa & ob & not_opposite
        use_a = (oa & strict_b) | both
        use_b = (ob & strict_a) | both
        on = use_a | use_b
        return (strict_a & strict_b) | on, on, use_a, use_b


class Difference(CSG):
    """``a - b``: points of ``a`` not in the interior of ``b`` (regularised).  On ``b``'s
    boundary the outward normal is ``-normal_b``, pointing into the removed region."""

    symbol = "-"

    @property
    def bbox(self):
        return self.a.bbox

    def _measure_from(self, ma, mb, mab):
        return ma - mab

    def _solid(self, x):
        return adf.conjunction(self.a._solid(x), -self.b._solid(x))

    def _keeps(self, owner, x):
        # a's boundary survives outside b, b's boundary (the hole's) inside a
        return -self.b._solid(x) if owner is self.a else self.a._solid(x)

    def _combine(self, ia, oa, ib, ob, not_opposite):
        strict_a = ia & ~oa
        both = oa & ob & not_opposite
        use_a = (oa & ~ib) | both
        use_b = (ob & strict_a) | both
        on = use_a | use_b
        return (strict_a & ~ib) | on, on, use_a, use_b
