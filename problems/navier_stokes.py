"""Steady incompressible Navier-Stokes flow with an exact solution: a system with outputs (u, v, p)."""
import math

import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op

pi = torch.pi


class Kovasznay(Problem):
    """Kovasznay flow (Kovasznay 1948): u u_x + v u_y + p_x - (u_xx + u_yy) / Re = 0, the same
    for v with p_y, and u_x + v_y = 0 on [-0.5, 1] x [-0.5, 1.5]; outputs (u, v, p) in that
    order.  Exact u = 1 - e^(l x) cos(2 pi y), v = l / (2 pi) e^(l x) sin(2 pi y),
    p = (1 - e^(2 l x)) / 2 with l = Re / 2 - sqrt(Re^2 / 4 + 4 pi^2).  Velocities from the
    exact solution on the whole boundary; the pressure, fixed only up to a constant by the
    equations, from the exact solution on the outflow face (x = 1) (a constant there)."""

    name = "kovasznay"
    domain = geometry.Rectangle([-0.5, -0.5], [1.0, 1.5])
    output_dim = 3
    output_names = ("u", "v", "p")
    # the headline errors measure the velocities (rel_l2_p reports the pressure)
    error_outputs = (0, 1)
    params = {"reynolds": 20.0}

    def setup(self):
        if not (math.isfinite(self.reynolds) and self.reynolds > 0):
            raise ValueError(f"Problem {self.name!r}: reynolds must be a finite number > 0, got {self.reynolds!r}")
        self.lam = self.reynolds / 2 - math.sqrt(self.reynolds**2 / 4 + 4 * math.pi**2)
        # the data face by face, each a function of the face's own coordinate (the exact
        # solution with the face's fixed coordinate put in): with hard constraints the network
        # learns the flow, not a lift that already is it
        lo, hi = self.domain.bbox
        faces = {"left": (0, lo[0]), "right": (0, hi[0]), "bottom": (1, lo[1]), "top": (1, hi[1])}
        self.conditions = [conditions.Dirichlet(face, value=conditions.on_face(self.exact, axis, at, c),
                                                component=c, name=f"{'uv'[c]}_{face}")
                           for c in (0, 1) for face, (axis, at) in faces.items()]
        self.conditions.append(conditions.Dirichlet("right", value=conditions.on_face(self.exact, 0, hi[0], 2),
                                                    component=2, name="p_outflow"))

    def residual(self, x, u):
        vel_u, vel_v = u[:, :1], u[:, 1:2]
        nu = 1 / self.reynolds
        momentum = []
        for c in (0, 1):
            convection = vel_u * op.partial(u, x, 0, component=c) + vel_v * op.partial(u, x, 1, component=c)
            momentum.append(convection + op.partial(u, x, c, component=2) - nu * op.laplacian(u, x, component=c))
        continuity = op.partial(u, x, 0, component=0) + op.partial(u, x, 1, component=1)
        return {"momentum_x": momentum[0], "momentum_y": momentum[1], "continuity": continuity}

    def exact(self, x):
        X, Y = x[:, :1], x[:, 1:]
        e = torch.exp(self.lam * X)
        u = 1 - e * torch.cos(2 * pi * Y)
        v = self.lam / (2 * pi) * e * torch.sin(2 * pi * Y)
        p = (1 - e**2) / 2
        return torch.cat([u, v, p], 1)
