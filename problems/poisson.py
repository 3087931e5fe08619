"""Poisson problems with known solutions.

- :class:`PaperPoisson`: the KAN paper's benchmark (Liu et al. 2024, arXiv 2404.19756, sec. 3.4)
- :class:`SinPoisson2D`: the sin(pi x) sin(pi y) problem of the reference implementation's tutorial
- :class:`Poisson1D`: u'' = f on [-1, 1] with u = sin(k pi x)
"""
import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op

pi = torch.pi


class PaperPoisson(Problem):
    """Lap u = f on [-1,1]^2, u = 0 on the boundary, exact u = sin(pi x) sin(pi y^2)."""

    name = "poisson2d_paper"
    domain = geometry.Rectangle([-1, -1], [1, 1])
    conditions = [conditions.Dirichlet("boundary", value=0.0)]

    def residual(self, x, u):
        return op.laplacian(u, x) - self.source(x)

    def source(self, x):
        X, Y = x[:, :1], x[:, 1:]
        return (-pi**2 * (1 + 4 * Y**2) * torch.sin(pi * X) * torch.sin(pi * Y**2)
                + 2 * pi * torch.sin(pi * X) * torch.cos(pi * Y**2))

    def exact(self, x):
        return torch.sin(pi * x[:, :1]) * torch.sin(pi * x[:, 1:] ** 2)


class SinPoisson2D(Problem):
    """Lap u = -2 pi^2 sin(pi x) sin(pi y) on [-1,1]^2, u = 0 on the boundary."""

    name = "poisson2d_sin"
    domain = geometry.Rectangle([-1, -1], [1, 1])
    conditions = [conditions.Dirichlet("boundary", value=0.0)]

    def residual(self, x, u):
        return op.laplacian(u, x) + 2 * pi**2 * self.exact(x)

    def exact(self, x):
        return torch.sin(pi * x[:, :1]) * torch.sin(pi * x[:, 1:])


class Poisson1D(Problem):
    """u'' = -(k pi)^2 sin(k pi x) on [-1, 1], u(+-1) from the exact solution u = sin(k pi x)."""

    name = "poisson1d"
    domain = geometry.Interval(-1, 1)
    params = {"k": 2.0}

    def setup(self):
        self.conditions = [conditions.Dirichlet("boundary", value=self.exact)]

    def residual(self, x, u):
        return op.laplacian(u, x) + (self.k * pi) ** 2 * self.exact(x)

    def exact(self, x):
        return torch.sin(self.k * pi * x)
