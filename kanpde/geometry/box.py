"""Axis-aligned boxes: :class:`Box` (any dimension), :class:`Interval`, :class:`Rectangle`
and the time interval :class:`TimeDomain`."""
from __future__ import annotations

import numpy as np
import torch

from kanpde.geometry import adf
from kanpde.geometry.base import (Geometry, _alternate, _as_scalar, _as_vector, _cell_centres,
                                  _unit_normalise)
from kanpde.sampling import check_count, sample_unit_cube

#: boxes of this many dimensions or more are evaluated on Sobol' points, not a grid
QMC_EVAL_MIN_DIM = 4
_EVAL_SEED = 20241207


class Box(Geometry):
    """The axis-aligned box ``[lo_0, hi_0] x ... x [lo_{d-1}, hi_{d-1}]``, any dimension.

    Boundary parts: ``"boundary"`` and, for each axis ``i``, the faces ``"x{i}_min"``
    (``x_i = lo_i``) and ``"x{i}_max"`` (``x_i = hi_i``).  1-D boxes also call their end
    points ``"left"`` and ``"right"``; 2-D boxes call their edges ``"left"``, ``"right"``
    (``x0`` min/max), ``"bottom"`` and ``"top"`` (``x1`` min/max).  Higher dimensions have no
    aliases (which face is "top" is a matter of taste there).

    Boundary samples are spread over the faces in proportion to their areas; in 1-D the two
    end points alternate (``lo, hi, lo, ...``) so both always appear.
    :meth:`evaluation_points` is the cell-centred (midpoint-rule) grid.
    """

    def __init__(self, lo, hi):
        lo = _as_vector(lo, "lo")
        hi = _as_vector(hi, "hi", dim=lo.size)
        if np.any(lo >= hi):
            raise ValueError(f"lo must be < hi in every component, got lo={lo.tolist()}, "
                             f"hi={hi.tolist()}")
        self.lo, self.hi = lo, hi
        self.dim = lo.size
        self._faces: dict[str, tuple[int, int]] = {}
        for name, face in self._aliases().items():
            self._faces[name] = face
        for i in range(self.dim):
            self._faces[f"x{i}_min"] = (i, 0)
            self._faces[f"x{i}_max"] = (i, 1)

    def _aliases(self) -> dict[str, tuple[int, int]]:
        if self.dim == 1:
            return {"left": (0, 0), "right": (0, 1)}
        if self.dim == 2:
            return {"left": (0, 0), "right": (0, 1), "bottom": (1, 0), "top": (1, 1)}
        return {}

    def __repr__(self) -> str:
        return f"Box(lo={self.lo.tolist()}, hi={self.hi.tolist()})"

    @property
    def bbox(self):
        return self.lo.copy(), self.hi.copy()

    @property
    def parts(self):
        return ("boundary",) + tuple(self._faces)

    @property
    def measure(self) -> float:
        return float(np.prod(self.hi - self.lo))

    def _face_areas(self) -> np.ndarray:
        ext = self.hi - self.lo
        return np.array([float(np.prod(np.delete(ext, i))) for i in range(self.dim)])

    @property
    def boundary_measure(self) -> float:
        return 2.0 if self.dim == 1 else float(2 * self._face_areas().sum())

    def _tensors(self, device=None):
        return (torch.as_tensor(self.lo, device=device), torch.as_tensor(self.hi, device=device))

    def _classify(self, x, tol):
        lo, hi = self._tensors(x.device)
        inside = ((x >= lo - tol) & (x <= hi + tol)).all(dim=1)
        near = ((x - lo).abs() <= tol) | ((x - hi).abs() <= tol)
        return inside, inside & near.any(dim=1)

    def _normals(self, x, tol):
        lo, hi = self._tensors(x.device)
        d_lo, d_hi = (x - lo).abs(), (x - hi).abs()
        normal = (d_hi <= tol).to(x.dtype) - (d_lo <= tol).to(x.dtype)
        # Off the boundary: the nearest face.
        none = normal.abs().sum(dim=1) == 0
        if none.any():
            nearest = torch.cat([d_lo[none], d_hi[none]], dim=1).argmin(dim=1)
            axis, side = nearest % self.dim, nearest // self.dim
            fix = torch.zeros_like(normal[none])
            fix[torch.arange(len(fix), device=x.device), axis] = 2.0 * side.to(x.dtype) - 1.0
            normal[none] = fix
        return _unit_normalise(normal)

    def _part_mask(self, x, part, tol):
        axis, side = self._faces[part]
        bound = (self.lo, self.hi)[side][axis]
        return self._classify(x, tol)[0] & ((x[:, axis] - bound).abs() <= tol)

    # ADFs: the faces are pieces of the planes x_i = lo_i, x_i = hi_i; the signed plane
    # distances x_i - lo_i and hi_i - x_i are exact ADFs of the faces inside the (convex) box.
    def _face_distances(self, x: torch.Tensor) -> torch.Tensor:
        """Signed distances ``(N, 2 dim)`` to the face planes, columns ``x0_min, x0_max, x1_min,
        ...``, positive inside."""
        lo, hi = self._constant(self.lo, x), self._constant(self.hi, x)
        return torch.stack([x - lo, hi - x], dim=2).reshape(len(x), 2 * self.dim)

    def _adf(self, x, part):
        """``"boundary"``: R-equivalence (:func:`~kanpde.geometry.adf.join`) of the ``2 dim``
        plane distances; a face: its plane distance."""
        if part == "boundary":
            return adf.join(self._face_distances(x))
        axis, side = self._faces[part]
        return self._face_distances(x)[:, 2 * axis + side]

    def _solid(self, x):
        """R-conjunction of the ``2 dim`` half-spaces."""
        faces = self._face_distances(x)
        out = faces[:, 0]
        for k in range(1, faces.shape[1]):
            out = adf.conjunction(out, faces[:, k])
        return out

    def _part_adf(self, x, part, side=1):
        """A face: ``side`` times its plane distance, trimmed (:func:`~kanpde.geometry.adf.trim`)
        to the face by the R-conjunction of the slabs ``lo_j <= x_j <= hi_j`` of the other axes
        (in 1-D the face is a point and needs no trimming)."""
        if part == "boundary":
            return super()._part_adf(x, part, side)
        plane = side * self._adf(x, part)
        if self.dim == 1:
            return plane
        axis, _ = self._faces[part]
        lo, hi = self._constant(self.lo, x), self._constant(self.hi, x)
        slabs = [(x[:, j] - lo[j]) * (hi[j] - x[:, j]) / (hi[j] - lo[j])
                 for j in range(self.dim) if j != axis]
        t = slabs[0]
        for s in slabs[1:]:
            t = adf.conjunction(t, s)
        return adf.trim(plane, t, adf.band(x, self._scale))

    @property
    def _interior_rate(self) -> float:
        return 1.0

    def _interior_from_unit(self, u):
        lo, hi = self._tensors()
        return lo + (hi - lo) * u, None, torch.ones(len(u), dtype=torch.bool)

    def _boundary_unit_dim(self, part):
        return self.dim - 1

    def _face_points(self, coords: torch.Tensor, axis: int, side: int):
        """Points of face (axis, side) from unit coordinates ``(m, dim-1)`` on that face."""
        lo, hi = self._tensors()
        free = [j for j in range(self.dim) if j != axis]
        x = torch.empty((len(coords), self.dim), dtype=torch.float64)
        x[:, free] = lo[free] + (hi[free] - lo[free]) * coords
        x[:, axis] = float((self.lo, self.hi)[side][axis])
        normal = torch.zeros_like(x)
        normal[:, axis] = 2.0 * side - 1.0
        return x, normal

    def _boundary_from_unit(self, u, part):
        m = len(u)
        ok = torch.ones(m, dtype=torch.bool)
        if part != "boundary":
            return (*self._face_points(u, *self._faces[part]), ok)
        if self.dim == 1:
            lo, hi = self._tensors()
            x = _alternate(m, lo.view(1, 1), hi.view(1, 1))
            return x, torch.where(x == float(self.lo[0]), -1.0, 1.0).to(torch.float64), ok
        # The first coordinate picks a face with probability proportional to its area; what is
        # left of it, rescaled to [0, 1), is the first coordinate on that face.
        weights = np.repeat(self._face_areas(), 2) / (2 * self._face_areas().sum())
        edges = np.concatenate([[0.0], np.cumsum(weights)])
        edges[-1] = 1.0
        first = u[:, 0].numpy()
        face = np.clip(np.searchsorted(edges, first, side="right") - 1, 0, 2 * self.dim - 1)
        rest = np.clip((first - edges[face]) / weights[face], 0.0, np.nextafter(1.0, 0.0))
        coords = torch.cat([torch.from_numpy(rest).unsqueeze(1), u[:, 1:]], dim=1)
        x = torch.empty((m, self.dim), dtype=torch.float64)
        normal = torch.empty_like(x)
        face_t = torch.from_numpy(face)
        for k in range(2 * self.dim):
            rows = face_t == k
            if rows.any():
                x[rows], normal[rows] = self._face_points(coords[rows], k // 2, k % 2)
        # A sample may land on an edge or corner (the grid method does): use the corner convention.
        at_edge = ((x - self._tensors()[0]).abs() <= self._default_tol).sum(dim=1) \
            + ((x - self._tensors()[1]).abs() <= self._default_tol).sum(dim=1) > 1
        if at_edge.any():
            normal[at_edge] = self._normals(x[at_edge], self._default_tol)
        return x, normal, ok

    def evaluation_points(self, n):
        """Cell centres of a regular grid of about ``n`` cells with (nearly) cubic cells; each
        weight is the cell volume, so the weights sum to :attr:`measure` (midpoint rule).

        From :data:`QMC_EVAL_MIN_DIM` dimensions on, a grid of about ``n`` cells has too few
        cells per axis to be a useful rule (2 per axis is already 1024 points in 10-D), so the
        points are ``n`` scrambled Sobol' points (fixed seed) with equal weights instead."""
        n = check_count(n, "n")
        if self.dim >= QMC_EVAL_MIN_DIM:
            u = torch.from_numpy(sample_unit_cube(n, self.dim, "sobol", _EVAL_SEED))
            lo, hi = self._tensors()
            return lo + (hi - lo) * u, torch.full((n,), self.measure / n, dtype=torch.float64)
        ext = self.hi - self.lo
        per_length = (n / self.measure) ** (1.0 / self.dim)
        counts = [max(1, int(round(e * per_length))) for e in ext]
        if self.dim == 1:
            counts = [n]
        x = _cell_centres(self.lo, self.hi, counts)
        weights = torch.full((len(x),), self.measure / len(x), dtype=torch.float64)
        return x, weights


class Interval(Box):
    """The interval ``[a, b]``; boundary parts ``"boundary"``, ``"left"`` (``x = a``) and
    ``"right"`` (``x = b``), also known as ``"x0_min"``/``"x0_max"``."""

    def __init__(self, a: float, b: float):
        a, b = _as_scalar(a, "a"), _as_scalar(b, "b")
        if not a < b:
            raise ValueError(f"Interval needs a < b, got a={a!r}, b={b!r}")
        super().__init__([a], [b])

    def __repr__(self) -> str:
        return f"Interval({float(self.lo[0])!r}, {float(self.hi[0])!r})"


class Rectangle(Box):
    """The rectangle ``[lo_0, hi_0] x [lo_1, hi_1]``; boundary parts ``"boundary"``,
    ``"left"``, ``"right"``, ``"bottom"``, ``"top"`` (also ``"x0_min"`` ... ``"x1_max"``)."""

    def __init__(self, lo, hi):
        super().__init__(_as_vector(lo, "lo", dim=2), _as_vector(hi, "hi", dim=2))

    def __repr__(self) -> str:
        return f"Rectangle(lo={self.lo.tolist()}, hi={self.hi.tolist()})"


class TimeDomain(Interval):
    """The time interval ``[t0, t1]``.  On its own a 1-D geometry with ``time_axis = 0`` and
    parts ``"initial"`` (``t = t0``) and ``"final"`` (``t = t1``); its use is
    ``geometry * TimeDomain(t0, t1)`` (see :class:`SpaceTime`)."""

    time_axis = 0

    def __init__(self, t0: float, t1: float):
        t0, t1 = _as_scalar(t0, "t0"), _as_scalar(t1, "t1")
        if not t0 < t1:
            raise ValueError(f"TimeDomain needs t0 < t1, got t0={t0!r}, t1={t1!r}")
        super().__init__(t0, t1)

    def _aliases(self):
        return {"initial": (0, 0), "final": (0, 1)}

    @property
    def t0(self) -> float:
        return float(self.lo[0])

    @property
    def t1(self) -> float:
        return float(self.hi[0])

    def __repr__(self) -> str:
        return f"TimeDomain({self.t0!r}, {self.t1!r})"
