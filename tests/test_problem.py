"""The Problem base class: the paper's Poisson problem as the design test, parameters,
residual normalisation and definition errors."""
import math

import pytest
import torch

from kanpde import Problem, conditions, geometry
from kanpde import operators as op


class PaperPoisson(Problem):
    """Lap u = f on [-1,1]^2, u = 0 on the boundary (KAN paper, section 3.4)."""
    domain = geometry.Rectangle([-1, -1], [1, 1])
    conditions = [conditions.Dirichlet("boundary", value=0.0)]

    def residual(self, x, u):
        return op.laplacian(u, x) - self.source(x)

    def source(self, x):
        X, Y = x[:, :1], x[:, 1:]
        return (-torch.pi**2 * (1 + 4 * Y**2) * torch.sin(torch.pi * X) * torch.sin(torch.pi * Y**2)
                + 2 * torch.pi * torch.sin(torch.pi * X) * torch.cos(torch.pi * Y**2))

    def exact(self, x):
        return torch.sin(torch.pi * x[:, :1]) * torch.sin(torch.pi * x[:, 1:] ** 2)


def interior(problem, n=500, seed=0):
    return problem.domain.sample_interior(n, seed=seed).requires_grad_(True)


def test_paper_poisson_design_test():
    problem = PaperPoisson()
    assert problem.name == "PaperPoisson"
    assert (problem.input_dim, problem.spatial_dim, problem.time_axis, problem.output_dim) == (2, 2, None, 1)
    assert problem.has_exact and not problem.has_output_transform
    x = interior(problem)
    terms = problem.residual_terms(x, problem.exact(x))
    assert list(terms) == ["residual"] and terms["residual"].shape == (500, 1)
    assert terms["residual"].abs().max().item() < 1e-9
    # a perturbed solution u* + x^2 has residual Lap(x^2) = 2
    r = problem.residual_terms(x, problem.exact(x) + x[:, :1] ** 2)["residual"]
    assert torch.allclose(r, torch.full_like(r, 2.0), atol=1e-9)
    # the boundary condition holds for the exact solution
    cond = problem.conditions[0]
    batch = cond.sample(problem.domain, 200, seed=0)
    assert cond.residual(batch, problem.exact).abs().max().item() < 1e-12


def test_conditions_are_copied_per_instance():
    a, b = PaperPoisson(), PaperPoisson()
    assert a.conditions is not b.conditions and a.conditions is not PaperPoisson.conditions
    a.conditions[0].weight = 10.0
    a.conditions.append(conditions.Dirichlet("left", value=1.0))
    assert b.conditions[0].weight == 1.0 and len(b.conditions) == 1
    assert PaperPoisson.conditions[0].weight == 1.0 and len(PaperPoisson.conditions) == 1


def test_exact_grad_default_autograd():
    problem = PaperPoisson()
    x = problem.domain.sample_interior(100, seed=1)
    g = problem.exact_grad(x)
    X, Y = x[:, 0], x[:, 1]
    expected = torch.stack([math.pi * torch.cos(math.pi * X) * torch.sin(math.pi * Y**2),
                            2 * math.pi * Y * torch.sin(math.pi * X) * torch.cos(math.pi * Y**2)], dim=1)
    assert g.shape == (100, 2) and not g.requires_grad
    assert torch.allclose(g, expected, atol=1e-12)


class Helmholtz(Problem):
    domain = geometry.Interval(0, 1)
    conditions = [conditions.Dirichlet("boundary", value=0.0)]
    params = {"k": 1.0, "label": "demo"}

    def residual(self, x, u):
        return op.laplacian(u, x) + (self.k * math.pi) ** 2 * u

    def exact(self, x):
        return torch.sin(self.k * math.pi * x[:, 0])  # (N,) is allowed


def test_parameters_defaults_and_overrides():
    p = Helmholtz()
    assert p.k == 1.0 and p.params == {"k": 1.0, "label": "demo"}
    q = Helmholtz(k=2)
    assert q.k == 2.0 and isinstance(q.k, float) and q.params["k"] == 2.0
    assert Helmholtz().k == 1.0  # overrides do not leak into the class
    x = torch.linspace(0.05, 0.95, 19, dtype=torch.float64)[:, None].requires_grad_(True)
    u = q.exact_values(x)
    assert u.shape == (19, 1)
    assert q.residual_terms(x, u)["residual"].abs().max().item() < 1e-9
    # the k=1 problem's residual for the k=2 solution is (pi^2 - 4 pi^2) u
    r = p.residual_terms(x, u)["residual"]
    assert torch.allclose(r, -3 * math.pi**2 * u, atol=1e-9)
    g = q.exact_grad(x.detach())
    assert torch.allclose(g, 2 * math.pi * torch.cos(2 * math.pi * x.detach()), atol=1e-12)
    assert "k=2.0" in repr(q)


def test_unknown_parameter_lists_settable_ones():
    with pytest.raises(TypeError, match=r"'Helmholtz'.*unknown parameter.*'kk'.*k=1\.0, label='demo'"):
        Helmholtz(kk=3.0)
    with pytest.raises(TypeError, match=r"unknown parameter.*settable parameters \(with defaults\): none"):
        PaperPoisson(k=1.0)


def test_subclass_extends_parent_params():
    class Damped(Helmholtz):
        params = {"gamma": 0.5}

    d = Damped(k=3.0, gamma=1.0)
    assert (d.k, d.gamma, d.label, d.name) == (3.0, 1.0, "demo", "Damped")


def test_param_clashing_with_method_is_rejected():
    with pytest.raises(ValueError, match="parameter 'exact' in params clashes"):
        class Bad(Problem):
            params = {"exact": 1.0}


def test_setup_hook_builds_parameter_dependent_domain():
    class Rod(Problem):
        params = {"length": 2.0}
        conditions = [conditions.Dirichlet("left", value=0.0)]

        def setup(self):
            self.domain = geometry.Interval(0, self.length) * geometry.TimeDomain(0, 1)

        def residual(self, x, u):
            return op.dt(u, x) - op.laplacian(u, x)

    rod = Rod(length=3.0)
    assert rod.domain.bbox[1].tolist() == [3.0, 1.0]
    assert (rod.input_dim, rod.spatial_dim, rod.time_axis) == (2, 1, 1)


def test_residual_terms_normalisation():
    class System(Problem):
        domain = geometry.Rectangle([0, 0], [1, 1])
        output_dim = 2
        mode = "tuple"

        def residual(self, x, u):
            a, b = u[:, 0], u[:, 1:] * 2
            if self.mode == "tuple":
                return a, b
            if self.mode == "list":
                return [a]
            return {"momentum": b, "mass": a}

    p = System()
    x = torch.rand(20, 2, dtype=torch.float64)
    u = torch.rand(20, 2, dtype=torch.float64)
    terms = p.residual_terms(x, u)
    assert list(terms) == ["residual_0", "residual_1"]
    assert terms["residual_0"].shape == (20, 1) and torch.equal(terms["residual_0"][:, 0], u[:, 0])
    assert torch.equal(terms["residual_1"], 2 * u[:, 1:])
    p.mode = "list"
    assert list(p.residual_terms(x, u)) == ["residual_0"]
    p.mode = "dict"
    terms = p.residual_terms(x, u)
    assert list(terms) == ["momentum", "mass"] and terms["mass"].shape == (20, 1)


def test_residual_terms_shape_errors():
    class Broken(Problem):
        domain = geometry.Rectangle([0, 0], [1, 1])
        kind = "rows"

        def residual(self, x, u):
            if self.kind == "rows":
                return {"pde": u[:-1]}
            if self.kind == "broadcast":
                return u - x[:, 0]  # (N, 1) - (N,) -> (N, N)
            if self.kind == "3d":
                return u[:, :, None]
            return 3.0

    p = Broken()
    x = torch.rand(40, 2, dtype=torch.float64)
    u = torch.rand(40, 1, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"Problem 'Broken': residual term 'pde' has shape \(39, 1\); "
                                         r"expected \(40,\) or \(40, k\)"):
        p.residual_terms(x, u)
    p.kind = "broadcast"
    with pytest.raises(ValueError, match=r"'residual' has shape \(40, 40\); expected \(40, 1\).*subtracting an \(N,\) tensor"):
        p.residual_terms(x, u)
    p.kind = "3d"
    with pytest.raises(ValueError, match=r"shape \(40, 1, 1\)"):
        p.residual_terms(x, u)
    p.kind = "number"
    with pytest.raises(TypeError, match="'Broken': residual\\(\\) must return a tensor"):
        p.residual_terms(x, u)


def test_definition_errors():
    class NoResidual(Problem):
        domain = geometry.Interval(0, 1)

    with pytest.raises(TypeError, match="'NoResidual' must define residual"):
        NoResidual()

    class NoDomain(Problem):
        def residual(self, x, u):
            return u

    with pytest.raises(TypeError, match="'NoDomain': domain must be a kanpde geometry"):
        NoDomain()

    class NotConditions(Problem):
        domain = geometry.Interval(0, 1)
        conditions = [conditions.Dirichlet("left"), "u=0 on the right"]

        def residual(self, x, u):
            return u

    with pytest.raises(TypeError, match=r"conditions\[1\] must be a kanpde.conditions.Condition"):
        NotConditions()

    class WrongPart(Problem):
        domain = geometry.Interval(0, 1)
        conditions = [conditions.Neumann("top", value=0.0)]

        def residual(self, x, u):
            return u

    with pytest.raises(ValueError, match=r"'neumann_top'.*where='top'.*'boundary', 'left', 'right'"):
        WrongPart()

    class Duplicate(Problem):
        domain = geometry.Interval(0, 1)
        conditions = [conditions.Dirichlet("left"), conditions.Dirichlet("left", value=1.0)]

        def residual(self, x, u):
            return u

    with pytest.raises(ValueError, match="both named 'dirichlet_left'"):
        Duplicate()

    class BadComponent(Problem):
        domain = geometry.Interval(0, 1)
        conditions = [conditions.Dirichlet("left", component=1)]

        def residual(self, x, u):
            return u

    with pytest.raises(ValueError, match="component 1 but output_dim is 1"):
        BadComponent()


def test_output_transform_and_no_exact():
    class Hard(Problem):
        domain = geometry.Interval(0, 1)

        def residual(self, x, u):
            return op.laplacian(u, x) + 2

        def output_transform(self, x, u):
            return x * (1 - x) * u

    p = Hard()
    assert p.has_output_transform and not p.has_exact and p.conditions == []
    x = torch.rand(10, 1, dtype=torch.float64).requires_grad_(True)
    u = p.output_transform(x, torch.ones(10, 1, dtype=torch.float64))  # x(1-x): Lap = -2
    assert p.residual_terms(x, u)["residual"].abs().max().item() < 1e-12
    with pytest.raises(NotImplementedError, match="no exact solution"):
        p.exact_grad(x)


def test_exact_with_wrong_shape_is_reported():
    class Wrong(PaperPoisson):
        def exact(self, x):
            return x

    with pytest.raises(ValueError, match=r"'Wrong': exact\(x\) returned shape \(5, 2\).*expected \(5,\) or \(5, 1\)"):
        Wrong().exact_values(torch.zeros(5, 2, dtype=torch.float64))
