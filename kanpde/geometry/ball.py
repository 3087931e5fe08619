"""Balls: :class:`Ball` (any dimension) and :class:`Disk` (2-D)."""
from __future__ import annotations

import math

import torch

from kanpde.geometry.base import Geometry, _alternate, _as_scalar, _as_vector, _unit_normalise


def _ball_volume(d: int, r: float) -> float:
    return math.pi ** (d / 2) / math.gamma(d / 2 + 1) * r ** d


def _sphere_area(d: int, r: float) -> float:
    if d == 1:
        return 2.0  # two end points, counting measure
    return 2 * math.pi ** (d / 2) / math.gamma(d / 2) * r ** (d - 1)



class Ball(Geometry):
    """The closed ball ``|x - center| <= radius`` in any dimension; one part, ``"boundary"``.

    Interior sampling is uniform in volume: ``r = radius * u**(1/d)`` with polar angle(s) from
    the other coordinates (``d = 2, 3``), or a normalised Gaussian direction (inverse normal CDF
    of ``d`` coordinates, one more for the radius) when ``d >= 4``.  Boundary sampling is
    uniform in surface measure by the same maps.
    """

    def __init__(self, center, radius: float):
        self.center = _as_vector(center, "center")
        self.radius = _as_scalar(radius, "radius")
        if self.radius <= 0:
            raise ValueError(f"radius must be > 0, got {radius!r}")
        self.dim = self.center.size

    def __repr__(self) -> str:
        return f"Ball(center={self.center.tolist()}, radius={self.radius!r})"

    @property
    def bbox(self):
        return self.center - self.radius, self.center + self.radius

    @property
    def measure(self) -> float:
        return _ball_volume(self.dim, self.radius)

    @property
    def boundary_measure(self) -> float:
        return _sphere_area(self.dim, self.radius)

    def _classify(self, x, tol):
        dist = (x - torch.as_tensor(self.center, device=x.device)).norm(dim=1)
        return dist <= self.radius + tol, (dist - self.radius).abs() <= tol

    def _normals(self, x, tol):
        v = x - torch.as_tensor(self.center, device=x.device)
        at_centre = v.norm(dim=1) == 0
        v[at_centre, 0] = 1.0  # any direction will do at the centre
        return _unit_normalise(v)

    def _adf(self, x, part):
        """``(radius^2 - |x - center|^2) / (2 radius)``: zero on the sphere, gradient the inward
        unit normal there, smooth everywhere (S&S sec. 3)."""
        r = self.radius
        return (r * r - ((x - self._constant(self.center, x)) ** 2).sum(dim=1)) / (2 * r)

    def _solid(self, x):
        return self._adf(x, "boundary")

    def _directions(self, u: torch.Tensor) -> torch.Tensor:
        """Unit vectors, uniform on the sphere, from ``_sphere_unit_dim`` unit coordinates."""
        d, m = self.dim, len(u)
        if d == 1:
            return _alternate(m, torch.tensor([[-1.0]], dtype=torch.float64),
                              torch.tensor([[1.0]], dtype=torch.float64))
        if d == 2:
            angle = 2 * math.pi * u[:, 0]
            return torch.stack([torch.cos(angle), torch.sin(angle)], dim=1)
        if d == 3:
            z = 1 - 2 * u[:, 0]  # Archimedes: z is uniform on [-1, 1]
            phi = 2 * math.pi * u[:, 1]
            s = torch.sqrt((1 - z * z).clamp_min(0))
            return torch.stack([s * torch.cos(phi), s * torch.sin(phi), z], dim=1)
        g = torch.special.ndtri(u[:, :d].clamp(2.0 ** -53, 1 - 2.0 ** -53))
        zero = g.norm(dim=1) == 0
        g[zero, 0] = 1.0
        return _unit_normalise(g)

    @property
    def _sphere_unit_dim(self) -> int:
        return {1: 0, 2: 1, 3: 2}.get(self.dim, self.dim)

    @property
    def _interior_unit_dim(self) -> int:
        return 1 if self.dim == 1 else self._sphere_unit_dim + 1

    @property
    def _interior_rate(self) -> float:
        return 1.0

    def _interior_from_unit(self, u):
        c = torch.from_numpy(self.center)
        ok = torch.ones(len(u), dtype=torch.bool)
        if self.dim == 1:
            return c + self.radius * (2 * u - 1), None, ok
        r = self.radius * u[:, -1] ** (1.0 / self.dim)
        return c + r.unsqueeze(1) * self._directions(u[:, :-1]), None, ok

    def _boundary_unit_dim(self, part):
        return self._sphere_unit_dim

    def _boundary_from_unit(self, u, part):
        n = self._directions(u)
        x = torch.from_numpy(self.center) + self.radius * n
        return x, n, torch.ones(len(u), dtype=torch.bool)


class Disk(Ball):
    """The closed disk ``|x - center| <= radius`` in 2-D; one part, ``"boundary"``."""

    def __init__(self, center, radius: float):
        super().__init__(_as_vector(center, "center", dim=2), radius)

    def __repr__(self) -> str:
        return f"Disk(center={self.center.tolist()}, radius={self.radius!r})"
