"""Poisson problems with known solutions.

- :class:`PaperPoisson`: the KAN paper's benchmark (Liu et al. 2024, arXiv 2404.19756, sec. 3.4)
- :class:`SinPoisson2D`: the sin(pi x) sin(pi y) problem of the reference implementation's tutorial
- :class:`Poisson1D`: u'' = f on [-1, 1] with u = sin(k pi x)
"""
import math

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


def corner_mode(x, y):
    """r^(2/3) sin(2 theta / 3) with theta = atan2(y, x) taken in [0, 2 pi)."""
    theta = torch.remainder(torch.atan2(y, x), 2 * pi)
    return (x**2 + y**2) ** (1 / 3) * torch.sin(2 * theta / 3)


class PoissonLShape(Problem):
    """-Lap u = 0 on the L-shaped domain [-1,1]^2 minus [0,1] x [-1,0], exact
    u = r^(2/3) sin(2 theta / 3), theta in [0, 3 pi / 2] measured from the positive x-axis.
    The gradient blows up like r^(-1/3) at the re-entrant corner (the origin), so u is in H^1
    but not in H^2: the classic test of singular solutions.

    The Dirichlet data are given edge by edge as functions of the edge's own coordinate (zero
    on the two edges at the corner), as boundary data come in practice: with hard constraints
    the network then learns the solution, not a lift that already is it."""

    name = "poisson_lshape"
    # edges: 0 bottom (y = -1), 1 and 2 at the re-entrant corner, 3 right (x = 1), 4 top, 5 left
    domain = geometry.Polygon([(-1, -1), (0, -1), (0, 0), (1, 0), (1, 1), (-1, 1)])

    def setup(self):
        on_face = conditions.on_face
        self.conditions = [
            conditions.Dirichlet("edge0", value=on_face(self.exact, 1, -1.0), name="dirichlet_bottom"),
            conditions.Dirichlet("edge1", value=0.0, name="dirichlet_corner_x0"),
            conditions.Dirichlet("edge2", value=0.0, name="dirichlet_corner_y0"),
            conditions.Dirichlet("edge3", value=on_face(self.exact, 0, 1.0), name="dirichlet_right"),
            conditions.Dirichlet("edge4", value=on_face(self.exact, 1, 1.0), name="dirichlet_top"),
            conditions.Dirichlet("edge5", value=on_face(self.exact, 0, -1.0), name="dirichlet_left"),
        ]

    def residual(self, x, u):
        return -op.laplacian(u, x)

    def exact(self, x):
        return corner_mode(x[:, :1], x[:, 1:])

    def exact_grad(self, x):
        """(2/3) r^(-1/3) (sin(2 theta/3) e_r + cos(2 theta/3) e_theta); at the corner itself,
        where it is infinite, 0: a point of measure zero that an evaluation grid may hold
        (the H1 error integrates the r^(-2/3) singularity, which is finite)."""
        X, Y = x[:, :1], x[:, 1:]
        theta = torch.remainder(torch.atan2(Y, X), 2 * pi)
        r = torch.sqrt(X**2 + Y**2)
        at_corner = r == 0
        scale = 2 / 3 * torch.where(at_corner, torch.ones_like(r), r).pow(-1 / 3)
        s, c = torch.sin(2 * theta / 3), torch.cos(2 * theta / 3)
        cos_t, sin_t = torch.cos(theta), torch.sin(theta)
        grad = scale * torch.cat([s * cos_t - c * sin_t, s * sin_t + c * cos_t], 1)
        return torch.where(at_corner, torch.zeros_like(grad), grad)


class PoissonAnnulus(Problem):
    """-Lap u = f on the annulus r_in <= |x| <= 1, u = sin(pi x) cos(pi y): Dirichlet data on
    the outer circle, Neumann data (the outward normal derivative, pointing at the centre) on
    the inner one, or Robin data ``u + du/dn`` with ``inner="robin"``."""

    name = "poisson_disk"
    params = {"inner_radius": 0.5, "inner": "neumann"}
    INNER_KINDS = ("neumann", "robin")

    def setup(self):
        if not (0 < self.inner_radius < 1):
            raise ValueError(f"Problem {self.name!r}: inner_radius must lie in (0, 1), got {self.inner_radius!r}")
        if self.inner not in self.INNER_KINDS:
            raise ValueError(f"Problem {self.name!r}: inner must be one of {self.INNER_KINDS}, got {self.inner!r}")
        self.domain = geometry.Disk([0, 0], 1.0) - geometry.Disk([0, 0], self.inner_radius)
        cut = (1 + self.inner_radius) / 2  # any radius between the circles tells them apart
        outer = lambda x: x.norm(dim=1) > cut
        inner = lambda x: x.norm(dim=1) < cut
        if self.inner == "neumann":
            inner_condition = conditions.Neumann(inner, value=self.inward_derivative, name="neumann_inner")
        else:
            inner_condition = conditions.Robin(inner, a=1.0, b=1.0, name="robin_inner",
                                               value=lambda x: self.exact(x) + self.inward_derivative(x))
        self.conditions = [conditions.Dirichlet(outer, value=self.exact, name="dirichlet_outer"), inner_condition]

    def residual(self, x, u):
        return -op.laplacian(u, x) - 2 * pi**2 * self.exact(x)

    def exact(self, x):
        return torch.sin(pi * x[:, :1]) * torch.cos(pi * x[:, 1:])

    def exact_grad(self, x):
        X, Y = x[:, :1], x[:, 1:]
        return torch.cat([pi * torch.cos(pi * X) * torch.cos(pi * Y), -pi * torch.sin(pi * X) * torch.sin(pi * Y)], 1)

    def inward_derivative(self, x):
        """du/dn on the inner circle, whose outward normal (out of the annulus) is -x/|x|."""
        return -(self.exact_grad(x) * x).sum(1, keepdim=True) / x.norm(dim=1, keepdim=True)


class PoissonND(Problem):
    """-Lap u = f on [0, 1]^d (d = ``dim``), u = sum_i sin(pi x_i / 2): Poisson in many
    dimensions (the forward-derivative path's Laplacian costs one pass for any d).  The
    Dirichlet data are given face by face (``x{i}_min``: x_i = 0, ``x{i}_max``: x_i = 1) as
    functions of the face's own coordinates."""

    name = "poisson_nd"
    params = {"dim": 5}

    def setup(self):
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"Problem {self.name!r}: dim must be an integer >= 1, got {self.dim!r}")
        self.domain = geometry.Box([0.0] * self.dim, [1.0] * self.dim)
        self.conditions = [conditions.Dirichlet(f"x{i}_{side}", value=self.face_data(i, float(side == "max")))
                           for i in range(self.dim) for side in ("min", "max")]

    def face_data(self, axis, at):
        """u on the face x_axis = at, as a function of the other coordinates."""
        def data(x):
            others = torch.cat([x[:, :axis], x[:, axis + 1:]], 1)
            return torch.sin(pi / 2 * others).sum(1, keepdim=True) + math.sin(pi / 2 * at)
        return data

    def residual(self, x, u):
        return -op.laplacian(u, x) - (pi / 2) ** 2 * self.exact(x)

    def exact(self, x):
        return torch.sin(pi / 2 * x).sum(1, keepdim=True)
