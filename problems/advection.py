"""Linear advection on a periodic interval (time is the last input column)."""
import math

import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op


class Advection1D(Problem):
    """u_t + c u_x = 0 on [0, 2 pi] x [0, 1], periodic in x, u(x, 0) = sin(x); exact
    u = sin(x - c t).  The default c = 10 carries the wave 1.6 periods; PINN failure-mode
    studies (Krishnapriyan et al. 2021, arXiv 2109.01050) use c = 30 to 50
    (``problem.speed=30``)."""

    name = "advection1d"
    domain = geometry.Interval(0, 2 * math.pi) * geometry.TimeDomain(0, 1)
    params = {"speed": 10.0}
    derivative_order = 1

    def setup(self):
        if not math.isfinite(self.speed):
            raise ValueError(f"Problem {self.name!r}: speed must be a finite number, got {self.speed!r}")
        self.conditions = [
            conditions.Periodic("left", "right", axis=0, derivative=False),
            conditions.Initial(value=lambda x: torch.sin(x[:, :1])),
        ]

    def residual(self, x, u):
        return op.dt(u, x) + self.speed * op.partial(u, x, 0)

    def exact(self, x):
        return torch.sin(x[:, :1] - self.speed * x[:, 1:])
