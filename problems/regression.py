"""Function fitting (no PDE): the KAN paper's regression tasks (Liu et al. 2024, arXiv 2404.19756,
sec. 3.1) as problems whose residual is the misfit ``u(x) - f(x)`` at the collocation points.

The collocation points are the training samples (``sampler.n_interior`` of them, redrawn as the
sampler says) and the errors are measured on the evaluation set as for every problem.
"""
import torch

from kanpde import Problem, geometry

pi = torch.pi


class FunctionFit(Problem):
    """Base of the regression tasks: subclasses set ``domain`` and define ``target(x)``
    ``(N, 1)``; the residual is ``u - target(x)`` and no derivative of ``u`` is taken
    (``derivative_order = 0``)."""

    derivative_order = 0

    def target(self, x):
        raise NotImplementedError(f"Problem {self.name!r} must define target(self, x)")

    def target_values(self, x):
        """:meth:`target` at ``x`` checked to be ``(N, output_dim)`` (``(N,)`` accepted for one output)."""
        t = self.target(x)
        n, m = x.shape[0], self.output_dim
        if isinstance(t, torch.Tensor) and t.dim() == 1 and m == 1 and t.shape[0] == n:
            t = t.reshape(n, 1)
        if not isinstance(t, torch.Tensor) or tuple(t.shape) != (n, m):
            got = tuple(t.shape) if isinstance(t, torch.Tensor) else type(t).__name__
            raise ValueError(f"Problem {self.name!r}: target(x) returned shape {got} for x of shape "
                             f"{tuple(x.shape)}; expected ({n}, {m})")
        return t

    def residual(self, x, u):
        return u - self.target_values(x)

    def exact(self, x):
        return self.target_values(x)


class FitBessel(FunctionFit):
    """f(x) = J0(20 x) on [-1, 1]: a Bessel function with about six oscillations."""

    name = "fit_bessel"
    domain = geometry.Interval(-1, 1)

    def target(self, x):
        return torch.special.bessel_j0(20 * x)

    def exact_grad(self, x):
        # torch has no derivative formula for bessel_j0; J0' = -J1
        return -20 * torch.special.bessel_j1(20 * x)


class FitExpSin(FunctionFit):
    """f(x, y) = exp(sin(pi x) + y^2) on [-1, 1]^2."""

    name = "fit_exp_sin"
    domain = geometry.Rectangle([-1, -1], [1, 1])

    def target(self, x):
        return torch.exp(torch.sin(pi * x[:, :1]) + x[:, 1:] ** 2)


class FitProduct(FunctionFit):
    """f(x, y) = x y on [-1, 1]^2."""

    name = "fit_product"
    domain = geometry.Rectangle([-1, -1], [1, 1])

    def target(self, x):
        return x[:, :1] * x[:, 1:]


class FitHighDim(FunctionFit):
    """f(x) = exp(mean_i sin^2(pi x_i / 2)) on [-1, 1]^d, d = ``dim`` (100 in the KAN paper)."""

    name = "fit_highdim"
    params = {"dim": 100}

    def setup(self):
        if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
            raise ValueError(f"Problem {self.name!r}: dim must be an integer >= 1, got {self.dim!r}")
        self.domain = geometry.Box([-1.0] * self.dim, [1.0] * self.dim)

    def target(self, x):
        return torch.exp(torch.sin(pi / 2 * x).pow(2).mean(1, keepdim=True))
