"""Space-time cylinders ``space x [t0, t1]``: :class:`SpaceTime`."""
from __future__ import annotations

import numpy as np
import torch

from kanpde.geometry.base import Geometry, _check_geometry, _plain
from kanpde.geometry.box import TimeDomain
from kanpde.sampling import check_count


class SpaceTime(Geometry):
    """The cylinder ``space x [t0, t1]``; made by ``space * TimeDomain(t0, t1)``.

    Time is the last column (``time_axis = dim - 1``).  Parts:

    - ``"boundary"``: the lateral boundary ``boundary(space) x [t0, t1]``, normals
      ``(n_space, 0)``;
    - ``"initial"`` / ``"final"``: the spatial domain at ``t = t0`` / ``t = t1``, normals
      ``(0, ..., 0, -1)`` / ``(0, ..., 0, +1)``;
    - every other part ``p`` of ``space`` (``"left"``, ``"edge2"``, ...): ``p x [t0, t1]``.

    ``on_boundary`` tests the lateral boundary only.  ``boundary_normal`` gives ``(n_space, 0)``
    on the lateral boundary and ``(0, ..., 0, -+1)`` on the initial / final slices elsewhere.
    Interior samples are drawn jointly: one unit-cube point of dimension (spatial coordinates
    + 1) per sample, so QMC methods stay low-discrepancy in space-time.
    """

    def __init__(self, space: Geometry, time):
        space = _check_geometry(space, "space")
        if space.time_axis is not None:
            raise TypeError(f"space={space!r} already has a time axis; a space-time domain is "
                            f"made from a purely spatial geometry")
        if not isinstance(time, TimeDomain):
            try:
                t0, t1 = _plain(time)
            except (TypeError, ValueError):
                raise TypeError(f"time must be a TimeDomain or a pair (t0, t1), "
                                f"got {time!r}") from None
            time = TimeDomain(t0, t1)
        self.space, self.time = space, time
        self.dim = space.dim + 1
        self.time_axis = self.dim - 1

    def __repr__(self) -> str:
        return f"({self.space!r} * {self.time!r})"

    @property
    def t0(self) -> float:
        return self.time.t0

    @property
    def t1(self) -> float:
        return self.time.t1

    @property
    def bbox(self):
        lo, hi = self.space.bbox
        return np.append(lo, self.t0), np.append(hi, self.t1)

    @property
    def parts(self):
        spatial = tuple(p for p in self.space.parts if p != "boundary")
        return ("boundary", "initial", "final") + spatial

    @property
    def measure(self) -> float:
        return self.space.measure * (self.t1 - self.t0)

    @property
    def boundary_measure(self) -> float:
        """Measure of the lateral boundary ``boundary(space) x [t0, t1]``."""
        return self.space.boundary_measure * (self.t1 - self.t0)

    def _split(self, x, tol):
        xs, t = x[:, :-1], x[:, -1]
        in_time = (t >= self.t0 - tol) & (t <= self.t1 + tol)
        return xs, t, in_time

    def _classify(self, x, tol):
        xs, _, in_time = self._split(x, tol)
        inside, on = self.space._classify(xs, tol)
        return inside & in_time, on & in_time

    def _normals(self, x, tol):
        xs, t, _ = self._split(x, tol)
        _, on = self.space._classify(xs, tol)
        normal = torch.zeros_like(x)
        normal[:, :-1] = self.space._normals(xs, tol)
        lateral = on.unsqueeze(1)
        cap = torch.zeros_like(x)
        cap[:, -1] = torch.where((t - self.t0).abs() <= (t - self.t1).abs(), -1.0, 1.0).to(x.dtype)
        return torch.where(lateral, normal, cap)

    def _part_mask(self, x, part, tol):
        xs, t, in_time = self._split(x, tol)
        if part in ("initial", "final"):
            t_cap = self.t0 if part == "initial" else self.t1
            return self.space._classify(xs, tol)[0] & ((t - t_cap).abs() <= tol)
        return self.space._part_mask(xs, part, tol) & in_time

    def _adf(self, x, part):
        """``"initial"``: ``t - t0``; ``"final"``: ``t1 - t``; ``"boundary"`` and spatial parts:
        the spatial ADF of the space columns (constant in time)."""
        if part == "initial":
            return x[:, -1] - self.t0
        if part == "final":
            return self.t1 - x[:, -1]
        return self.space._adf(x[:, :-1], part)

    @property
    def _interior_unit_dim(self) -> int:
        return self.space._interior_unit_dim + 1

    @property
    def _interior_rate(self) -> float:
        return self.space._interior_rate

    def _times(self, u_t: torch.Tensor) -> torch.Tensor:
        return (self.t0 + (self.t1 - self.t0) * u_t).unsqueeze(1)

    def _interior_from_unit(self, u):
        xs, _, ok = self.space._interior_from_unit(u[:, :-1])
        return torch.cat([xs, self._times(u[:, -1])], dim=1), None, ok

    def _boundary_unit_dim(self, part):
        if part in ("initial", "final"):
            return self.space._interior_unit_dim
        return self.space._boundary_unit_dim(part) + 1

    def _boundary_rate(self, part):
        if part in ("initial", "final"):
            return self.space._interior_rate
        return self.space._boundary_rate(part)

    def _boundary_from_unit(self, u, part):
        if part in ("initial", "final"):
            xs, _, ok = self.space._interior_from_unit(u)
            t_cap = self.t0 if part == "initial" else self.t1
            t = torch.full((len(u), 1), t_cap, dtype=torch.float64)
            normal = torch.zeros((len(u), self.dim), dtype=torch.float64)
            normal[:, -1] = -1.0 if part == "initial" else 1.0
            return torch.cat([xs, t], dim=1), normal, ok
        xs, ns, ok = self.space._boundary_from_unit(u[:, :-1], part)
        zero = torch.zeros((len(u), 1), dtype=torch.float64)
        return torch.cat([xs, self._times(u[:, -1])], dim=1), torch.cat([ns, zero], dim=1), ok

    def evaluation_points(self, n):
        """Tensor product of the spatial evaluation points with the midpoint rule in time; the
        number of time levels matches the spatial resolution ``(measure / n)**(1/dim)``."""
        n = check_count(n, "n")
        duration = self.t1 - self.t0
        h = (self.measure / n) ** (1.0 / self.dim)
        n_t = max(1, int(round(duration / h)))
        xs, ws = self.space.evaluation_points(max(1, int(round(n / n_t))))
        t = torch.from_numpy(self.t0 + duration * (np.arange(n_t) + 0.5) / n_t)
        x = torch.cat([xs.repeat_interleave(n_t, dim=0), t.repeat(len(xs)).unsqueeze(1)], dim=1)
        weights = ws.repeat_interleave(n_t) * (duration / n_t)
        return x, weights
