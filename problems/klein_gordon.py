"""The nonlinear Klein-Gordon equation with a manufactured solution (time is the last input column)."""
import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op

pi = torch.pi


class KleinGordon1D(Problem):
    """u_tt - u_xx + u^3 = f on [0, 1] x [0, 1], exact u = x cos(5 pi t) + (x t)^3 (the test of
    Wang, Teng & Perdikaris 2021, arXiv 2001.04536); u from the exact solution at x = 0, 1 and
    at t = 0, with u_t(x, 0) = 0, each given as a function of the part's own coordinate."""

    name = "klein_gordon1d"
    domain = geometry.Interval(0, 1) * geometry.TimeDomain(0, 1)

    def setup(self):
        self.conditions = [
            conditions.Dirichlet("left", value=0.0),
            conditions.Dirichlet("right", value=conditions.on_face(self.exact, 0, 1.0)),
            conditions.Initial(value=lambda x: x[:, :1], dt_value=0.0),
        ]

    def residual(self, x, u):
        return op.partial(u, x, 1, 1) - op.partial(u, x, 0, 0) + u**3 - self.source(x)

    def source(self, x):
        X, T = x[:, :1], x[:, 1:]
        u_tt = -(5 * pi) ** 2 * X * torch.cos(5 * pi * T) + 6 * X**3 * T
        u_xx = 6 * X * T**3
        return u_tt - u_xx + self.exact(x) ** 3

    def exact(self, x):
        X, T = x[:, :1], x[:, 1:]
        return X * torch.cos(5 * pi * T) + (X * T) ** 3
