"""Viscous Burgers equation on a space-time domain (time is the last input column).

The benchmark of Raissi, Perdikaris & Karniadakis (2019, J. Comput. Phys. 378, 686-707) and of
Basdevant et al. (1986, Computers & Fluids 14, 23-41): a front of width ~ nu forms at x = 0
from t ~ 1/pi on.  The exact solution comes from the Cole-Hopf transformation
(:func:`kanpde.reference.burgers_cole_hopf`).
"""
import math

import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op
from kanpde.reference import burgers_cole_hopf, burgers_cole_hopf_derivatives

pi = torch.pi


class Burgers1D(Problem):
    """u_t + u u_x = nu u_xx on [-1, 1] x [0, 1], u(+-1, t) = 0, u(x, 0) = -sin(pi x);
    exact u by Cole-Hopf (nu = 0.01/pi by default)."""

    name = "burgers1d"
    domain = geometry.Interval(-1, 1) * geometry.TimeDomain(0, 1)
    params = {"nu": 0.01 / math.pi}

    def setup(self):
        if not (math.isfinite(self.nu) and self.nu > 0):
            raise ValueError(f"Problem {self.name!r}: nu must be a finite number > 0, got {self.nu!r}")
        self.conditions = [
            conditions.Dirichlet("boundary", value=0.0),
            conditions.Initial(value=lambda x: -torch.sin(pi * x[:, :1])),
        ]

    def residual(self, x, u):
        # u_xx as partial(u, x, 0, 0): right whether or not x is tagged as space-time
        return op.dt(u, x) + u * op.partial(u, x, 0) - self.nu * op.partial(u, x, 0, 0)

    def exact(self, x):
        """Cole-Hopf solution at x (N, 2) = (x, t): (N, 1) of x's dtype and device."""
        xs = x.detach().to("cpu", torch.float64).numpy()
        u = burgers_cole_hopf(xs[:, 0], xs[:, 1], self.nu)
        return torch.from_numpy(u).to(dtype=x.dtype, device=x.device).reshape(-1, 1)

    def exact_grad(self, x):
        """(u_x, u_t) of the Cole-Hopf solution, (N, 2) (exact() is numpy, not autograd)."""
        xs = x.detach().to("cpu", torch.float64).numpy()
        d = burgers_cole_hopf_derivatives(xs[:, 0], xs[:, 1], self.nu)
        grad = torch.stack([torch.from_numpy(d["u_x"]), torch.from_numpy(d["u_t"])], dim=1)
        return grad.to(dtype=x.dtype, device=x.device)
