"""The built-in problems (the zoo): every exact solution satisfies its own PDE and conditions.

The residual of the exact solution is computed by the problem's own ``residual`` with autograd
derivatives of ``exact`` (so a hand-derived source term that does not match the solution
fails), and once more with central finite differences of ``exact`` (independent of autograd
and of the operators module); each condition's residual on the exact solution is round-off.
"""
from __future__ import annotations

import math

import pytest
import torch

from kanpde import Problem
from kanpde.problems.advection import Advection1D
from kanpde.problems.helmholtz import Helmholtz2D
from kanpde.problems.klein_gordon import KleinGordon1D
from kanpde.problems.navier_stokes import Kovasznay
from kanpde.problems.poisson import PoissonAnnulus, PoissonLShape, PoissonND
from kanpde.problems.regression import FitBessel, FitExpSin, FitHighDim, FitProduct
from kanpde.problems.stokes import Stokes2D
from kanpde.problems.wave import Wave1D

CLOSED_FORMS = [PoissonLShape(), PoissonAnnulus(), PoissonAnnulus(inner="robin"), PoissonND(dim=5),
                PoissonND(dim=10), Helmholtz2D(), Advection1D(), Wave1D(), KleinGordon1D(), Kovasznay(),
                Stokes2D()]
FITS = [FitBessel(), FitExpSin(), FitProduct(), FitHighDim(dim=100)]


def interior(problem, n=256, seed=0):
    x = problem.domain.sample_interior(n, "sobol", seed)
    if problem.name == "poisson_lshape":  # keep away from the singular corner, where u_xx is unbounded
        x = x[x.norm(dim=1) > 0.05]
    return x


def exact_fn(problem):
    return lambda x: problem.exact_values(x)


# Source terms are O(1) to O(300) (Kovasznay's, Stokes' and Klein-Gordon's derivatives carry
# pi^3 and (5 pi)^2); a wrong term shows far above these tolerances.
AUTOGRAD_TOL = 1e-9
# second differences with h = 1e-4 in float64: truncation h^2 / 12 * (4th derivative) <= 1e-4
# here ((5 pi)^4 for Klein-Gordon) and round-off ~1e-16 / h^2 ~ 1e-8
FD_TOL = 1e-3


@pytest.mark.parametrize("problem", CLOSED_FORMS, ids=lambda p: f"{p.name}-{p.params}")
def test_the_exact_solution_solves_the_pde_by_autograd(problem):
    x = interior(problem).requires_grad_(True)
    terms = problem.residual_terms(x, problem.exact_values(x))
    worst = max(t.abs().max().item() for t in terms.values())
    assert worst < AUTOGRAD_TOL


def fd_residual(problem, x, h=1e-4):
    """The problem's residual with each derivative of exact() replaced by a central difference:
    the operators are patched to differentiate the exact solution numerically."""
    import kanpde.operators as op

    def shifted(axis, s):
        e = torch.zeros(x.shape[1], dtype=x.dtype)
        e[axis] = s * h
        return problem.exact_values(x + e)

    def pick(v, component):
        return v if component is None and v.shape[1] > 1 else v[:, [0 if component is None else component]]

    def partial(u, xx, *axes, component=None):
        if len(axes) == 1:
            (a,) = axes
            return pick((shifted(a, 1) - shifted(a, -1)) / (2 * h), component)
        a, b = axes
        if a == b:
            return pick((shifted(a, 1) - 2 * problem.exact_values(x) + shifted(a, -1)) / h**2, component)
        raise NotImplementedError

    def laplacian(u, xx, component=None):
        axes = range(x.shape[1] - (problem.time_axis is not None))
        return sum(partial(u, xx, a, a, component=component) for a in axes)

    def dt(u, xx, component=None):
        return partial(u, xx, problem.time_axis, component=component)

    saved = op.partial, op.laplacian, op.dt
    op.partial, op.laplacian, op.dt = partial, laplacian, dt
    try:
        return problem.residual_terms(x, problem.exact_values(x))
    finally:
        op.partial, op.laplacian, op.dt = saved


@pytest.mark.parametrize("problem", CLOSED_FORMS, ids=lambda p: f"{p.name}-{p.params}")
def test_the_exact_solution_solves_the_pde_by_finite_differences(problem):
    x = interior(problem).detach()
    terms = fd_residual(problem, x)
    worst = max(t.abs().max().item() for t in terms.values())
    assert worst < FD_TOL


@pytest.mark.parametrize("problem", CLOSED_FORMS, ids=lambda p: f"{p.name}-{p.params}")
def test_the_exact_solution_meets_every_condition(problem):
    u_fn = exact_fn(problem)
    for cond in problem.conditions:
        batch = cond.sample(problem.domain, 128, "sobol", 1)
        r = cond.residual(batch, u_fn)
        assert r.abs().max().item() < 1e-9, cond.name


def test_the_annulus_conditions_tell_the_circles_apart():
    problem = PoissonAnnulus(inner_radius=0.4)
    outer, inner = problem.conditions
    xo = outer.sample(problem.domain, 64, "sobol", 0)["x"]
    xi = inner.sample(problem.domain, 64, "sobol", 0)
    torch.testing.assert_close(xo.norm(dim=1), torch.ones(64, dtype=torch.float64))
    torch.testing.assert_close(xi["x"].norm(dim=1), torch.full((64,), 0.4, dtype=torch.float64))
    # the annulus's outward normal on the inner circle points at the centre
    torch.testing.assert_close(xi["normal"], -xi["x"] / 0.4)


def test_the_lshape_solution_is_the_corner_singularity():
    # along theta = 3 pi / 4 (the bisector of the domain's angle), u = r^(2/3) sin(pi / 2)
    r = torch.tensor([0.01, 0.1, 0.5], dtype=torch.float64)
    x = torch.stack([r * math.cos(3 * math.pi / 4), r * math.sin(3 * math.pi / 4)], 1)
    torch.testing.assert_close(PoissonLShape().exact_values(x)[:, 0], r ** (2 / 3))
    # and zero on the two edges that meet at the re-entrant corner
    edges = torch.tensor([[0.5, 0.0], [0.0, -0.5]], dtype=torch.float64)
    assert PoissonLShape().exact_values(edges).abs().max() < 1e-15


def test_the_lshape_gradient_is_the_closed_form_and_finite_at_the_corner():
    problem = PoissonLShape()
    x = interior(problem)
    torch.testing.assert_close(problem.exact_grad(x), Problem.exact_grad(problem, x))  # autograd
    x, _ = problem.domain.evaluation_points(2500)
    assert torch.isfinite(problem.exact_grad(x)).all()
    assert torch.equal(problem.exact_grad(torch.zeros(1, 2, dtype=torch.float64)), torch.zeros(1, 2, dtype=torch.float64))


def test_kovasznay_has_the_closed_form_lambda():
    # Re = 20: lambda = 10 - sqrt(100 + 4 pi^2) = -1.8100981...
    assert Kovasznay().lam == pytest.approx(10 - math.sqrt(100 + 4 * math.pi**2), rel=1e-15)
    assert Kovasznay().lam == pytest.approx(-1.8100981, abs=1e-7)


@pytest.mark.parametrize("problem", FITS, ids=lambda p: p.name)
def test_a_regression_task_is_the_misfit_and_takes_no_derivative(problem):
    assert problem.derivative_order == 0
    x = problem.domain.sample_interior(64, "sobol", 0)  # no requires_grad: no derivative is asked
    u = problem.exact_values(x) + 0.25
    torch.testing.assert_close(problem.residual_terms(x, u)["residual"], torch.full((64, 1), 0.25, dtype=x.dtype))


def test_the_regression_targets():
    x = torch.tensor([[0.0], [0.1]], dtype=torch.float64)
    # J0(0) = 1, J0(2) = 0.22389077914123567 (Abramowitz & Stegun table 9.1)
    torch.testing.assert_close(FitBessel().exact_values(x)[:, 0],
                               torch.tensor([1.0, 0.22389077914123567], dtype=torch.float64))
    # J0'(2) = -J1(2) = -0.5767248077568734, so d/dx J0(20 x) = -20 J1(2) at x = 0.1
    assert FitBessel().exact_grad(x[1:])[0, 0].item() == pytest.approx(-20 * 0.5767248077568734, rel=1e-12)
    ones = torch.ones(3, 100, dtype=torch.float64)
    torch.testing.assert_close(FitHighDim().exact_values(ones)[:, 0], torch.full((3,), math.e, dtype=torch.float64))


def test_a_high_dimensional_box_is_evaluated_on_sobol_points():
    problem = PoissonND(dim=10)
    x, w = problem.domain.evaluation_points(4000)
    assert x.shape == (4000, 10) and w.sum().item() == pytest.approx(1.0)
    assert ((x > 0) & (x < 1)).all()
    # an equal-weight rule that integrates the exact solution: int sin(pi x / 2) dx over [0, 1] = 2 / pi
    integral = (w * problem.exact_values(x)[:, 0]).sum().item()
    assert integral == pytest.approx(10 * 2 / math.pi, rel=1e-3)


def test_problem_parameters_are_checked():
    with pytest.raises(TypeError, match="unknown parameter.*'kapa'.*settable parameters"):
        Helmholtz2D(kapa=2)
    with pytest.raises(ValueError, match="inner must be one of"):
        PoissonAnnulus(inner="dirichlet")
    with pytest.raises(ValueError, match="dim must be an integer >= 1, got 0"):
        PoissonND(dim=0)
    with pytest.raises(ValueError, match="reynolds must be a finite number > 0"):
        Kovasznay(reynolds=-1.0)


def test_a_regression_target_of_the_wrong_shape_names_the_shapes():
    class Broken(FitProduct):
        def target(self, x):
            return x  # (N, 2), not (N, 1)

    x = Broken().domain.sample_interior(32, "sobol", 0)
    with pytest.raises(ValueError, match=r"Broken.*target\(x\) returned shape \(32, 2\).*expected \(32, 1\)"):
        Broken().residual_terms(x, torch.zeros(32, 1, dtype=x.dtype))


@pytest.mark.parametrize("problem", [p for p in CLOSED_FORMS if p.name not in ("poisson_disk", "stokes2d")],
                         ids=lambda p: p.name)
def test_hard_constraints_do_not_hand_the_solution_to_the_lift(problem):
    # the data are functions of each part's own coordinates, so the lift (the data blended into
    # the interior) is not the exact solution there (closest for poisson_nd, whose sum of
    # one-variable terms the faces' data nearly determine: 2% of max |u| off); and any network
    # output meets the data
    from kanpde.constraints import hard_constraint, with_hard_conditions

    hard = with_hard_conditions(problem)
    lift, distance = hard_constraint(hard)
    x = interior(problem)
    gap = (lift(x) - problem.exact_values(x)).abs().max().item()
    assert gap > 0.005 * problem.exact_values(x).abs().max().item()
    net = lambda z: torch.sin(3 * z.sum(1, keepdim=True)).expand(-1, problem.output_dim)
    u_fn = lambda z: lift(z) + distance(z) * net(z)
    for cond in hard.conditions:
        if cond.hard:
            batch = cond.sample(problem.domain, 64, "sobol", 2)
            r = cond.residual(batch, u_fn)
            # Initial with dt_value: the time multiplier (t - t0)^2 keeps du/dt of the lift
            assert r.abs().max().item() < 1e-9, cond.name


def test_a_system_reports_each_output_and_its_headline_outputs():
    # Kovasznay's headline errors measure (u, v); the pressure's error is rel_l2_p
    from kanpde.metrics import evaluate_errors

    problem = Kovasznay()
    x, w = problem.domain.evaluation_points(900)
    shift = torch.tensor([0.0, 0.0, 0.1], dtype=torch.float64)
    metrics, _ = evaluate_errors(problem, lambda z: problem.exact_values(z) + shift, x, w)
    assert metrics["rel_l2"] < 1e-14 and metrics["rel_l2_u"] < 1e-14 and metrics["rel_l2_v"] < 1e-14
    p = problem.exact_values(x)[:, 2]
    assert metrics["rel_l2_p"] == pytest.approx(0.1 * math.sqrt(w.sum() / (w * p**2).sum()), rel=1e-12)
    # a shift of every output shows in the headline too
    metrics, _ = evaluate_errors(problem, lambda z: problem.exact_values(z) + 0.1, x, w)
    assert metrics["rel_l2"] > 0.01 and metrics["rel_l2_u"] > 0.01 and metrics["rel_l2_p"] > 0.01
