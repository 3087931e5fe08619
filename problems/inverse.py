"""Inverse problems: a coefficient of the PDE learned together with the solution from
observations of the solution.

The observations are made here, from the exact solution with Gaussian noise of standard
deviation ``noise`` times the observed values' root mean square (``noise=0.01``: "1 % noise"),
at ``n_observations`` points drawn uniformly in the domain with ``data_seed``; or they are read
from ``data_file`` (an ``.h5``/``.npz`` with arrays ``x`` and ``u``, or a ``.csv`` with columns
named like the inputs and ``u``).

- :class:`InversePoisson`: -kappa Lap u = f, the diffusivity kappa unknown (true 2.0);
- :class:`InverseHeat`: u_t = D u_xx, the diffusivity D unknown (true 0.1);
- :class:`PoissonSourceField`: -Lap u = f with the source f(x, y) unknown, a field.
"""
import numpy as np
import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op
from kanpde.unknowns import Field, Unknown

pi = torch.pi


class ObservedProblem(Problem):
    """A problem with observations of its solution (made from :meth:`exact` with noise, or
    read from ``data_file``) as a :class:`~kanpde.conditions.Data` condition named
    ``observations``."""

    params = {"n_observations": 100, "noise": 0.01, "data_seed": 0, "data_file": ""}

    def observations(self) -> conditions.Data:
        if self.data_file:
            # a CSV names its point columns like the inputs (x, y, t)
            x_name = list(self.input_names) if str(self.data_file).lower().endswith(".csv") else "x"
            return conditions.Data.from_file(self.data_file, x=x_name, values="u", name="observations")
        n, noise = self.n_observations, self.noise
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"Problem {self.name!r}: n_observations must be a positive integer, got {n!r}")
        if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not 0 <= noise < 1:
            raise ValueError(f"Problem {self.name!r}: noise must be a number in [0, 1) (relative to the "
                             f"observed values' root mean square), got {noise!r}")
        x = self.domain.sample_interior(n, method="uniform", seed=self.data_seed)
        u = self.exact(x).reshape(n, 1)
        rng = np.random.default_rng(self.data_seed + 1)
        scale = noise * float(u.pow(2).mean().sqrt())
        noisy = u + scale * torch.from_numpy(rng.standard_normal((n, 1)))
        return conditions.Data(x, noisy, name="observations")


class InversePoisson(ObservedProblem):
    """-kappa Lap u = f on [0, 1]^2, u = 0 on the boundary, with f = 2 pi^2 kappa* sin(pi x)
    sin(pi y) for the true kappa* = 2.0, which the solver does not know: it learns kappa
    (initial guess 1.0, kept positive) from observations of u = sin(pi x) sin(pi y)."""

    name = "inverse_poisson"
    domain = geometry.Rectangle([0, 0], [1, 1])
    unknowns = {"kappa": Unknown(1.0, positive=True)}
    TRUE_KAPPA = 2.0

    def setup(self):
        self.conditions = [conditions.Dirichlet("boundary", value=0.0), self.observations()]

    def residual(self, x, u):
        return -self.kappa * op.laplacian(u, x) - self.source(x)

    def source(self, x):
        return 2 * pi**2 * self.TRUE_KAPPA * self.exact(x)

    def exact(self, x):
        return torch.sin(pi * x[:, :1]) * torch.sin(pi * x[:, 1:])

    def true_unknowns(self):
        return {"kappa": self.TRUE_KAPPA}


class InverseHeat(ObservedProblem):
    """u_t = D u_xx on [0, 1] x [0, 1], u = 0 at x = 0, 1, u(x, 0) = sin(pi x); the diffusivity
    D (true 0.1; initial guess 0.05, kept positive) is learned from observations of
    u = exp(-D pi^2 t) sin(pi x)."""

    name = "inverse_heat"
    domain = geometry.Interval(0, 1) * geometry.TimeDomain(0, 1)
    unknowns = {"diffusivity": Unknown(0.05, positive=True)}
    TRUE_DIFFUSIVITY = 0.1

    def setup(self):
        self.conditions = [
            conditions.Dirichlet("boundary", value=0.0),
            conditions.Initial(value=lambda x: torch.sin(pi * x[:, :1])),
            self.observations(),
        ]

    def residual(self, x, u):
        return op.dt(u, x) - self.diffusivity * op.laplacian(u, x)

    def exact(self, x):
        return torch.exp(-self.TRUE_DIFFUSIVITY * pi**2 * x[:, 1:]) * torch.sin(pi * x[:, :1])

    def true_unknowns(self):
        return {"diffusivity": self.TRUE_DIFFUSIVITY}


class PoissonSourceField(ObservedProblem):
    """-Lap u = f on [0, 1]^2, u = 0 on the boundary, the source f(x, y) unknown: a field (an
    MLP [2, 32, 32, 1] by default) learned from observations of u = sin(pi x) sin(pi y); the
    truth is f = 2 pi^2 sin(pi x) sin(pi y)."""

    name = "inverse_poisson_source"
    domain = geometry.Rectangle([0, 0], [1, 1])
    params = {"n_observations": 400, "noise": 0.0}
    unknowns = {"f": Field([2, 32, 32, 1], model="mlp")}

    def setup(self):
        self.conditions = [conditions.Dirichlet("boundary", value=0.0), self.observations()]

    def residual(self, x, u):
        return -op.laplacian(u, x) - self.f(x)

    def exact(self, x):
        return torch.sin(pi * x[:, :1]) * torch.sin(pi * x[:, 1:])

    def true_source(self, x):
        return 2 * pi**2 * self.exact(x)

    def true_unknowns(self):
        return {"f": self.true_source}
