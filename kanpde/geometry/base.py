"""The :class:`Geometry` protocol (point tests, samplers, quadrature grid, composition
operators) and the small helpers the concrete geometries share.  See :mod:`kanpde.geometry` for
the conventions."""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from typing import Callable, Sequence

import numpy as np
import torch

from kanpde.sampling import check_count, check_method, check_seed, sample_unit_cube

# The rejection sampler gives up when the accepted fraction drops below this.
_MIN_ACCEPTANCE = 1e-6
_MAX_DRAW = 50_000_000

FromUnit = Callable[[torch.Tensor], tuple]


def _plain(value):
    """Nested sequences (lists, tuples, OmegaConf ListConfig, tensors) -> nested lists/floats."""
    if torch.is_tensor(value):
        return value.detach().cpu().tolist()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (str, bytes)):
        return value
    try:
        return [_plain(v) for v in value]
    except TypeError:
        return value


def _as_vector(value, name: str, dim: int | None = None) -> np.ndarray:
    try:
        arr = np.asarray(_plain(value), dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a sequence of numbers, got {value!r}") from None
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D sequence of numbers, got {value!r}")
    if dim is not None and arr.size != dim:
        raise ValueError(f"{name} must have {dim} components, got {arr.size}: {arr.tolist()}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite, got {arr.tolist()}")
    return arr


def _as_scalar(value, name: str) -> float:
    if isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be a real number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a real number, got {value!r}") from None
    if not math.isfinite(out):
        raise ValueError(f"{name} must be finite, got {value!r}")
    return out


def _check_geometry(value, name: str) -> "Geometry":
    if not isinstance(value, Geometry):
        raise TypeError(f"{name} must be a Geometry, got {value!r} ({type(value).__name__})")
    return value


def _unit_normalise(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-300)



def _unit_points(m: int, k: int, method: str, seed) -> torch.Tensor:
    if k == 0:
        return torch.zeros((m, 0), dtype=torch.float64)
    return torch.from_numpy(sample_unit_cube(m, k, method, seed))


def _alternate(m: int, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rows a, b, a, b, ... (the boundary of a 1-D set is two points: split them evenly)."""
    first = (torch.arange(m) % 2 == 0).unsqueeze(1)
    return torch.where(first, a.expand(m, -1), b.expand(m, -1))


def _cell_centres(lo: np.ndarray, hi: np.ndarray, counts: Sequence[int]) -> torch.Tensor:
    axes = [torch.from_numpy(lo[i] + (hi[i] - lo[i]) * (np.arange(c) + 0.5) / c)
            for i, c in enumerate(counts)]
    mesh = torch.meshgrid(*axes, indexing="ij")
    return torch.stack([g.reshape(-1) for g in mesh], dim=1)



class Geometry(ABC):
    """A closed domain in ``R^dim``; see the module docstring for the conventions.

    Subclasses implement ``_classify`` (inside and on-boundary masks), ``_normals``,
    ``bbox``, ``measure``, ``boundary_measure`` and the unit-cube maps used by the samplers.
    """

    dim: int
    time_axis: int | None = None

    # ---- description ----------------------------------------------------------------------
    @property
    @abstractmethod
    def bbox(self) -> tuple[np.ndarray, np.ndarray]:
        """``(lo, hi)``: float64 arrays of shape ``(dim,)`` with ``lo <= x <= hi`` on the set."""

    @property
    def parts(self) -> tuple[str, ...]:
        """Names of the boundary parts accepted by ``part=``; always starts with ``"boundary"``."""
        return ("boundary",)

    @property
    @abstractmethod
    def measure(self) -> float:
        """Length / area / volume of the domain."""

    @property
    @abstractmethod
    def boundary_measure(self) -> float:
        """Length / area of the boundary (number of end points for 1-D sets)."""

    @property
    def _scale(self) -> float:
        lo, hi = self.bbox
        return float(max(1.0, np.max(hi - lo), np.max(np.abs(lo)), np.max(np.abs(hi))))

    # ---- point tests ------------------------------------------------------------------------
    def _points(self, x, tol):
        """Validate ``x``; return (float64 tensor, function moving results back, tolerance)."""
        as_numpy = not torch.is_tensor(x)
        if as_numpy:
            try:
                t = torch.from_numpy(np.asarray(_plain(x) if not isinstance(x, np.ndarray) else x,
                                                dtype=np.float64))
            except (TypeError, ValueError):
                raise TypeError(f"x must be a tensor or array of shape (N, {self.dim}), "
                                f"got {type(x).__name__}") from None
        else:
            t = x.detach()
        if t.ndim != 2 or t.shape[1] != self.dim:
            raise ValueError(f"x must have shape (N, {self.dim}), got {tuple(t.shape)}")
        in_dtype, device = t.dtype, t.device
        if tol is None:
            eps = torch.finfo(in_dtype).eps if in_dtype.is_floating_point else 2.0 ** -52
            tol = max(1e-8, 64 * eps) * self._scale
        else:
            tol = _as_scalar(tol, "tol")
            if tol < 0:
                raise ValueError(f"tol must be >= 0, got {tol!r}")
        work = torch.device("cpu") if device.type == "mps" else device  # no float64 on MPS
        t = t.to(device=work, dtype=torch.float64)
        out_dtype = in_dtype if in_dtype.is_floating_point else torch.float64

        def back(result: torch.Tensor):
            if as_numpy:
                return result.cpu().numpy()
            if result.is_floating_point():
                result = result.to(dtype=out_dtype)
            return result.to(device)

        return t, back, tol

    @abstractmethod
    def _classify(self, x: torch.Tensor, tol: float) -> tuple[torch.Tensor, torch.Tensor]:
        """``(inside, on_boundary)`` boolean masks ``(N,)`` for float64 points ``x``."""

    @abstractmethod
    def _normals(self, x: torch.Tensor, tol: float) -> torch.Tensor:
        """Outward unit normals ``(N, dim)`` at float64 points ``x``."""

    def _part_mask(self, x: torch.Tensor, part: str, tol: float) -> torch.Tensor:
        """Mask of points on the named part (``part`` is already validated, not "boundary")."""
        raise NotImplementedError(part)  # only reached by subclasses that add parts

    def inside(self, x, tol: float | None = None):
        """Boolean mask ``(N,)``: which points of ``x`` ``(N, dim)`` lie in the closed domain
        (boundary included, up to ``tol``)."""
        t, back, tol = self._points(x, tol)
        return back(self._classify(t, tol)[0])

    def on_boundary(self, x, tol: float | None = None):
        """Boolean mask ``(N,)``: which points of ``x`` ``(N, dim)`` lie on the boundary
        (within ``tol``)."""
        t, back, tol = self._points(x, tol)
        return back(self._classify(t, tol)[1])

    def boundary_normal(self, x, tol: float | None = None):
        """Outward unit normals ``(N, dim)`` at the points ``x`` ``(N, dim)``.

        Meant for boundary points; see the module docstring for corners and points off the
        boundary."""
        t, back, tol = self._points(x, tol)
        return back(self._normals(t, tol))

    def check_part(self, part) -> str:
        """Return ``part`` if it names a boundary part of this geometry, else raise
        ``TypeError``/``ValueError`` listing :attr:`parts`."""
        if not isinstance(part, str):
            raise TypeError(f"part must be a string, one of {', '.join(self.parts)}; "
                            f"got {part!r} ({type(part).__name__})")
        if part not in self.parts:
            raise ValueError(f"unknown boundary part {part!r} for {self!r}; available parts: "
                             f"{', '.join(self.parts)}")
        return part

    def part_mask(self, x, part: str, tol: float | None = None):
        """Boolean mask ``(N,)``: which points of ``x`` lie on the boundary part ``part``."""
        part = self.check_part(part)
        t, back, tol = self._points(x, tol)
        if part == "boundary":
            return back(self._classify(t, tol)[1])
        return back(self._part_mask(t, part, tol))

    def on_part(self, x, part: str, tol: float | None = None):
        """Alias of :meth:`part_mask`."""
        return self.part_mask(x, part, tol)

    # ---- approximate distance functions -------------------------------------------------------
    def distance(self, x, part: str = "boundary") -> torch.Tensor:
        """Approximate distance function (ADF) of the boundary part ``part``.

        Zero on the part (to round-off), positive in the domain off the part, smooth inside
        the domain and normalised to first order (``|grad d| = 1`` on the part away from
        corners); built from R-functions as in Sukumar & Srivastava 2022 (see
        :mod:`kanpde.geometry.adf`).  Differentiable in ``x`` (twice, without NaNs, also on the
        boundary), so it can multiply a network for exact boundary conditions.

        Args:
            x: points ``(N, dim)``; a floating torch tensor keeps its dtype, device and graph,
                anything else is read as float64.
            part: a name from :attr:`parts`.

        Returns:
            ``(N,)`` tensor in ``x``'s dtype and device.  Values outside the domain carry no
            meaning.
        """
        part = self.check_part(part)
        if torch.is_tensor(x) and x.is_floating_point():
            t = x
        else:
            try:
                t = torch.as_tensor(np.asarray(_plain(x), dtype=np.float64))
            except (TypeError, ValueError):
                raise TypeError(f"x must be a tensor or array of shape (N, {self.dim}), "
                                f"got {type(x).__name__}") from None
        if t.ndim != 2 or t.shape[1] != self.dim:
            raise ValueError(f"x must have shape (N, {self.dim}), got {tuple(t.shape)}")
        return self._adf(t, part)

    def _constant(self, value, x: torch.Tensor) -> torch.Tensor:
        """A geometry constant (number or array) as a tensor in ``x``'s dtype and device."""
        return torch.as_tensor(value, dtype=x.dtype, device=x.device)

    def _adf(self, x: torch.Tensor, part: str) -> torch.Tensor:
        """ADF ``(N,)`` of ``part`` (validated) at points ``x`` ``(N, dim)`` (see
        :meth:`distance`); only required to be meaningful in the closed domain."""
        raise NotImplementedError(f"{type(self).__name__} has no distance function")

    def _solid(self, x: torch.Tensor) -> torch.Tensor:
        """Signed ADF ``(N,)`` of the whole set: positive inside, zero on the boundary, negative
        outside, everywhere in ``R^dim`` (what CSG combines with R-functions)."""
        raise NotImplementedError(f"{type(self).__name__} cannot take part in a CSG distance "
                                  f"function (it has no signed distance)")

    def _part_adf(self, x: torch.Tensor, part: str, side: int = 1) -> torch.Tensor:
        """ADF ``(N,)`` of the named ``part`` whose zero set in all of ``R^dim`` is the part
        itself (not, say, the whole plane of a face), for CSG, where other points of that plane
        may lie inside the combined domain.  ``side = 1``: it increases into this set, like
        :meth:`_adf`; ``side = -1``: it increases out of it (the part bounds a hole of a
        difference).  Default: :meth:`_adf` for ``side = 1``."""
        if side != 1:
            raise NotImplementedError(f"{type(self).__name__} has no outward part distance")
        return self._adf(x, part)

    # ---- unit-cube maps used by the samplers ------------------------------------------------
    @property
    def _interior_unit_dim(self) -> int:
        return self.dim

    @property
    def _interior_rate(self) -> float:
        """Expected fraction of ``_interior_from_unit`` points accepted (1.0: no rejection)."""
        lo, hi = self.bbox
        return min(1.0, self.measure / float(np.prod(hi - lo)))

    def _interior_from_unit(self, u: torch.Tensor):
        """Map unit-cube points ``(m, _interior_unit_dim)`` to ``(x, None, accepted)``.

        Default: affine map onto the bounding box, accept the points inside."""
        lo, hi = (torch.from_numpy(a) for a in self.bbox)
        x = lo + (hi - lo) * u
        return x, None, self._classify(x, self._default_tol)[0]

    @abstractmethod
    def _boundary_unit_dim(self, part: str) -> int:
        """Number of unit-cube coordinates consumed by ``_boundary_from_unit(., part)``."""

    def _boundary_rate(self, part: str) -> float:
        return 1.0

    @abstractmethod
    def _boundary_from_unit(self, u: torch.Tensor, part: str):
        """Map unit-cube points to ``(x, normals, accepted)`` on the boundary part ``part``."""

    @property
    def _default_tol(self) -> float:
        return 1e-8 * self._scale

    # ---- samplers ---------------------------------------------------------------------------
    def _draw(self, n: int, method: str, seed, unit_dim: int, from_unit: FromUnit, rate: float):
        """Exactly ``n`` rows of ``from_unit`` output, rejecting the non-accepted ones."""
        n = check_count(n, "n")
        method = check_method(method)
        seed = check_seed(seed)
        m = n if rate >= 1.0 else int(math.ceil(1.2 * n / max(rate, 1e-3))) + 16
        while True:
            out = from_unit(_unit_points(m, unit_dim, method, seed))
            keep = torch.nonzero(out[-1], as_tuple=True)[0]
            if len(keep) >= n:
                break
            observed = len(keep) / m
            if observed < _MIN_ACCEPTANCE and m >= 100_000 or m >= _MAX_DRAW:
                raise RuntimeError(f"could not draw {n} points on {self!r}: only {len(keep)} of "
                                   f"{m} candidates were accepted; is the set empty?")
            m = min(_MAX_DRAW, int(math.ceil(1.5 * n / max(observed, _MIN_ACCEPTANCE))) + 16,
                    max(4 * m, 1024))
        if len(keep) > n:
            if method == "grid":
                # Grid points come in lexicographic order: the first n would cut off a region.
                rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
                keep = keep[torch.from_numpy(np.sort(rng.choice(len(keep), n, replace=False)))]
            else:
                keep = keep[:n]
        return tuple(None if t is None else t[keep].contiguous() for t in out[:-1])

    def sample_interior(self, n: int, method: str = "uniform", seed=None) -> torch.Tensor:
        """``n`` points of the domain, uniformly distributed w.r.t. its measure.

        Args:
            n: number of points (exact).
            method: one of ``uniform``, ``grid``, ``lhs``, ``sobol``, ``halton``.
            seed: ``None``, a non-negative integer, or a ``numpy.random.Generator``.

        Returns:
            float64 CPU tensor ``(n, dim)``.
        """
        x, _ = self._draw(n, method, seed, self._interior_unit_dim, self._interior_from_unit,
                          self._interior_rate)
        return x

    def sample_boundary(self, n: int, method: str = "uniform", seed=None,
                        part: str = "boundary") -> tuple[torch.Tensor, torch.Tensor]:
        """``n`` points of the boundary part ``part``, uniform w.r.t. surface measure, and
        the outward unit normals there.

        Returns:
            ``(x, normals)``, float64 CPU tensors of shape ``(n, dim)``.
        """
        part = self.check_part(part)
        return self._draw(n, method, seed, self._boundary_unit_dim(part),
                          lambda u: self._boundary_from_unit(u, part), self._boundary_rate(part))

    def evaluation_points(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A regular grid of about ``n`` points in the domain, with quadrature weights.

        Default: cell centres of a grid with cubic cells of volume ``measure / n`` over the
        bounding box, keeping the centres inside the domain; each weight is
        ``measure / (number kept)``, so the weights sum to :attr:`measure`.

        Returns:
            ``(x, weights)``: float64 CPU tensors of shape ``(N, dim)`` and ``(N,)``.
        """
        n = check_count(n, "n")
        lo, hi = self.bbox
        h = (self.measure / n) ** (1.0 / self.dim)
        counts = [max(1, int(round((hi[i] - lo[i]) / h))) for i in range(self.dim)]
        x = _cell_centres(lo, hi, counts)
        x = x[self._classify(x, self._default_tol)[0]]
        if len(x) == 0:
            raise RuntimeError(f"no grid cell centre of {self!r} fell inside the domain; "
                               f"ask for more than n={n} points")
        weights = torch.full((len(x),), self.measure / len(x), dtype=torch.float64)
        return x, weights

    # ---- composition ------------------------------------------------------------------------
    # (imports inside: the operations live in modules that build on this one)
    def __or__(self, other):
        from kanpde.geometry.csg import Union
        return Union(self, other) if isinstance(other, Geometry) else NotImplemented

    def __and__(self, other):
        from kanpde.geometry.csg import Intersection
        return Intersection(self, other) if isinstance(other, Geometry) else NotImplemented

    def __sub__(self, other):
        from kanpde.geometry.csg import Difference
        return Difference(self, other) if isinstance(other, Geometry) else NotImplemented

    def __mul__(self, other):
        from kanpde.geometry.box import TimeDomain
        from kanpde.geometry.spacetime import SpaceTime
        if not isinstance(other, TimeDomain):
            raise TypeError(f"a geometry can only be multiplied by a TimeDomain (giving a "
                            f"space-time domain), got {other!r} ({type(other).__name__})")
        return SpaceTime(self, other)
