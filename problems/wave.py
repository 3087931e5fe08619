"""The wave equation (time is the last input column)."""
import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op

pi = torch.pi


class Wave1D(Problem):
    """u_tt = c^2 u_xx on [0, 1] x [0, 1], u = 0 at x = 0, 1, u(x, 0) and u_t(x, 0) = 0 from
    the exact standing waves u = sin(pi x) cos(c pi t) + a sin(4 pi x) cos(4 c pi t) (c = 2,
    a = 0.5: the Wave1d-C problem of the PINNacle benchmark, arXiv 2306.08827)."""

    name = "wave1d"
    domain = geometry.Interval(0, 1) * geometry.TimeDomain(0, 1)
    params = {"speed": 2.0, "amplitude": 0.5}

    def setup(self):
        self.conditions = [
            conditions.Dirichlet("boundary", value=0.0),
            conditions.Initial(value=self.initial_value, dt_value=0.0),
        ]

    def initial_value(self, x):
        """u(x, 0), a function of x alone."""
        X = x[:, :1]
        return torch.sin(pi * X) + self.amplitude * torch.sin(4 * pi * X)

    def residual(self, x, u):
        return op.partial(u, x, 1, 1) - self.speed**2 * op.partial(u, x, 0, 0)

    def exact(self, x):
        X, T = x[:, :1], x[:, 1:]
        w = self.speed * pi
        return torch.sin(pi * X) * torch.cos(w * T) + self.amplitude * torch.sin(4 * pi * X) * torch.cos(4 * w * T)
