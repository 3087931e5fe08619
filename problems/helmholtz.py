"""Helmholtz equation with a manufactured solution."""
import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op

pi = torch.pi


class Helmholtz2D(Problem):
    """Lap u + k^2 u = q on [-1, 1]^2, u = sin(a1 pi x) sin(a2 pi y), u from the exact solution
    on the boundary.  (a1, a2) = (1, 4), k = 1 is the usual hard case (McClenny & Braga-Neto
    2023, arXiv 2009.04544; the adaptive PIKAN paper, arXiv 2407.17611, reports rel_l2 1.0e-3)."""

    name = "helmholtz2d"
    domain = geometry.Rectangle([-1, -1], [1, 1])
    params = {"k": 1.0, "a1": 1.0, "a2": 4.0}

    def setup(self):
        # the data face by face, as functions of the face's own coordinate (zero for whole
        # wave numbers); with hard constraints the network learns the solution, not the lift
        faces = {"left": (0, -1.0), "right": (0, 1.0), "bottom": (1, -1.0), "top": (1, 1.0)}
        self.conditions = [conditions.Dirichlet(face, value=conditions.on_face(self.exact, axis, at))
                           for face, (axis, at) in faces.items()]

    def residual(self, x, u):
        return op.laplacian(u, x) + self.k**2 * u - self.source(x)

    def source(self, x):
        return (self.k**2 - (self.a1**2 + self.a2**2) * pi**2) * self.exact(x)

    def exact(self, x):
        return torch.sin(self.a1 * pi * x[:, :1]) * torch.sin(self.a2 * pi * x[:, 1:])
