"""Allen-Cahn equation with periodic boundary conditions (time is the last input column).

The benchmark of Raissi, Perdikaris & Karniadakis (2019, J. Comput. Phys. 378, 686-707):
u_t = d u_xx + r (u - u^3) with d = 1e-4, r = 5, u(x, 0) = x^2 cos(pi x); metastable interfaces
of width ~ sqrt(2 d / r) form quickly.  The reference solution is spectral
(:func:`kanpde.reference.allen_cahn_spectral`: Fourier in x, ETDRK4 in t).
"""
import math

import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op
from kanpde.reference import allen_cahn_spectral

pi = torch.pi


class AllenCahn1D(Problem):
    """u_t - d u_xx - r u + r u^3 = 0 on [-1, 1] x [0, 1], periodic in x (value and u_x),
    u(x, 0) = x^2 cos(pi x); reference solution by Fourier/ETDRK4."""

    name = "allen_cahn1d"
    domain = geometry.Interval(-1, 1) * geometry.TimeDomain(0, 1)
    params = {"diffusion": 1e-4, "reaction": 5.0}

    def setup(self):
        if not (math.isfinite(self.diffusion) and self.diffusion >= 0):
            raise ValueError(f"Problem {self.name!r}: diffusion must be a finite number >= 0, "
                             f"got {self.diffusion!r}")
        if not math.isfinite(self.reaction):
            raise ValueError(f"Problem {self.name!r}: reaction must be a finite number, "
                             f"got {self.reaction!r}")
        self.conditions = [
            conditions.Periodic("left", "right", axis=0),
            conditions.Initial(value=lambda x: x[:, :1] ** 2 * torch.cos(pi * x[:, :1])),
        ]

    def residual(self, x, u):
        # u_xx as partial(u, x, 0, 0): right whether or not x is tagged as space-time
        return (op.dt(u, x) - self.diffusion * op.partial(u, x, 0, 0)
                - self.reaction * u + self.reaction * u**3)

    def reference_solution(self):
        """The spectral reference solution (cached: the solve runs once per parameter set)."""
        return allen_cahn_spectral(self.diffusion, self.reaction)

    def exact(self, x):
        """Reference u at x (N, 2) = (x, t): (N, 1) of x's dtype and device."""
        xs = x.detach().to("cpu", torch.float64).numpy()
        u = self.reference_solution()(xs[:, 0], xs[:, 1])
        return torch.from_numpy(u).to(dtype=x.dtype, device=x.device).reshape(-1, 1)

    def exact_grad(self, x):
        """(u_x, u_t) of the reference solution, (N, 2) (exact() is numpy, not autograd)."""
        xs = x.detach().to("cpu", torch.float64).numpy()
        d = self.reference_solution().derivatives(xs[:, 0], xs[:, 1])
        grad = torch.stack([torch.from_numpy(d["u_x"]), torch.from_numpy(d["u_t"])], dim=1)
        return grad.to(dtype=x.dtype, device=x.device)
