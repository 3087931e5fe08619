"""Heat equation on a space-time domain (time is the last input column)."""
import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op

pi = torch.pi


class Heat1D(Problem):
    """u_t = nu u_xx on [0, 1] x [0, 1], u = 0 at x = 0, 1, u(x, 0) = sin(pi x);
    exact u = exp(-nu pi^2 t) sin(pi x)."""

    name = "heat1d"
    domain = geometry.Interval(0, 1) * geometry.TimeDomain(0, 1)
    params = {"nu": 0.1}

    def setup(self):
        self.conditions = [
            conditions.Dirichlet("boundary", value=0.0),
            conditions.Initial(value=lambda x: torch.sin(pi * x[:, :1])),
        ]

    def residual(self, x, u):
        return op.dt(u, x) - self.nu * op.laplacian(u, x)

    def exact(self, x):
        return torch.exp(-self.nu * pi**2 * x[:, 1:]) * torch.sin(pi * x[:, :1])
