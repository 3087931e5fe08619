"""Hard constraints u = lift + distance * N (Sukumar & Srivastava 2022): the hard flag of the
conditions, the lift and distance built from a problem, ConstrainedOutput's values, forward
jets against nested autograd, its cache and pass-throughs, and training with it."""
from __future__ import annotations

import copy
import math

import pytest
import torch

import kanpde
from kanpde import conditions as bc
from kanpde import constraints, geometry
from kanpde import operators as op
from kanpde.models import KAN, MLP, ConstrainedOutput, GridAdaptive
from kanpde.problem import Problem
from tests.helpers import assert_close, assert_residual_param_grads_match, autograd_jet, lbfgs, tiny


def _left(x):
    return torch.sin(3 * x[:, 1]) + 0.5


def _bottom(x):
    return 0.5 + x[:, 0] ** 2  # equals _left at the shared corner (0, 0)


class Plate(Problem):
    """Rectangle with non-constant hard data on two sides and a soft condition on a third."""
    domain = geometry.Rectangle([0, 0], [1, 2])
    conditions = [bc.Dirichlet("left", value=_left, hard=True),
                  bc.Dirichlet("bottom", value=_bottom, hard=True),
                  bc.Neumann("right", value=0.0)]

    def residual(self, x, u):
        return op.laplacian(u, x)


class Wave(Problem):
    """u_tt = c^2 u_xx on [0, 1] x [0, 1]: zero ends, u and u_t prescribed at t = 0 (all hard)."""
    domain = geometry.Interval(0, 1) * geometry.TimeDomain(0, 1)
    conditions = [bc.Dirichlet("boundary", value=0.0, hard=True),
                  bc.Initial(value=lambda x: torch.sin(math.pi * x[:, 0]),
                             dt_value=lambda x: 2 * torch.sin(math.pi * x[:, 0]), hard=True)]

    def residual(self, x, u):
        return op.dt(u, x, order=2) - op.laplacian(u, x)


def _heat_exact(x):
    return torch.cos(x[:, :1]) * torch.exp(-x[:, 2:]) + x[:, 1:2] * x[:, 2:]


class Heat(Problem):
    domain = geometry.Disk([0, 0], 1) * geometry.TimeDomain(0, 1)
    conditions = [bc.Dirichlet("boundary", value=_heat_exact, hard=True),
                  bc.Initial(value=_heat_exact, hard=True)]

    def residual(self, x, u):
        return op.dt(u, x) - op.laplacian(u, x)


def _inner(kind: str, d_in: int, d_out: int = 1):
    """A small float64 network of the given kind."""
    torch.manual_seed(0)
    net = MLP([d_in, 12, d_out]) if kind == "mlp" else KAN([d_in, 4, d_out], grid_size=4, seed=0)
    return net.double()


KINDS = ["mlp", "kan"]


# ----------------------------------------------------------------------------- conditions

def test_hard_flag_of_conditions():
    assert not bc.Dirichlet("left").hard and not bc.Neumann("left").hard
    d = bc.Dirichlet("left", value=1.0, hard=True)
    assert d.hard and "hard=True" in repr(d)
    assert bc.Initial(value=0.0, dt_value=1.0, hard=True).hard
    with pytest.raises(ValueError, match="predicate where.*cannot be hard"):
        bc.Dirichlet(lambda x: x[:, 0] < 0.5, hard=True)
    with pytest.raises(TypeError, match="hard must be True or False"):
        bc.Dirichlet("left", hard="yes")
    # a hard condition still samples and reports its residual
    problem = Plate()
    model = constraints.constrain(MLP([2, 8, 1]).double(), problem)
    batch = problem.conditions[0].sample(problem.domain, 64, seed=0)
    assert problem.conditions[0].residual(batch, model).abs().max() < 1e-13


def test_no_hard_condition_gives_none_and_leaves_the_model_alone():
    class Soft(Plate):
        conditions = [bc.Dirichlet("left", value=_left)]

    assert constraints.hard_constraint(Soft()) is None
    net = MLP([2, 8, 1]).double()
    assert constraints.constrain(net, Soft()) is net


def test_refusals_name_the_problem():
    dom = geometry.Rectangle([0, 0], [1, 1])
    neumann = bc.Neumann("left")
    neumann.hard = True
    with pytest.raises(TypeError, match="only Dirichlet and Initial"):
        constraints.HardConstraint(dom, [neumann])
    pred = bc.Dirichlet("left")
    pred.where, pred.hard = (lambda x: x[:, 0] < 1e-9), True
    with pytest.raises(ValueError, match="predicate"):
        constraints.HardConstraint(dom, [pred])
    with pytest.raises(ValueError, match="both hard on part 'left'"):
        constraints.HardConstraint(dom, [bc.Dirichlet("left", hard=True),
                                         bc.Dirichlet("left", value=1.0, hard=True, name="again")])
    with pytest.raises(ValueError, match="component=1 is out of range"):
        constraints.HardConstraint(dom, [bc.Dirichlet("left", component=1, hard=True)], output_dim=1)
    with pytest.raises(ValueError, match="not a boundary part"):
        constraints.HardConstraint(dom, [bc.Dirichlet("initial", hard=True)])

    class Both(Plate):
        def output_transform(self, x, u):
            return u

    with pytest.raises(ValueError, match="output_transform and hard conditions"):
        constraints.hard_constraint(Both())


# ----------------------------------------------------------------------------- lift and distance

def test_lift_is_the_transfinite_interpolation_and_distance_the_r_equivalence():
    problem = Plate()
    lift, distance = constraints.hard_constraint(problem)
    x = problem.domain.sample_interior(200, seed=1)
    phi = torch.stack([x[:, 0], x[:, 1]], 1)  # the plane distances of "left" and "bottom"
    # w_left = phi_bottom / (phi_left + phi_bottom), and distance = 1 / (1/phi_left + 1/phi_bottom)
    expected = (phi[:, 1] * _left(x) + phi[:, 0] * _bottom(x)) / phi.sum(1)
    assert_close(lift(x)[:, 0], expected)
    assert_close(distance(x)[:, 0], phi.prod(1) / phi.sum(1))
    for part, data in (("left", _left), ("bottom", _bottom)):
        xb, _ = problem.domain.sample_boundary(100, seed=2, part=part)
        assert_close(lift(xb)[:, 0], data(xb), tol=1e-14)
        assert distance(xb).abs().max() == 0


@pytest.mark.parametrize("kind", KINDS)
def test_dirichlet_data_hold_to_round_off(kind):
    problem = Plate()
    model = constraints.constrain(_inner(kind, 2), problem)
    assert isinstance(model, ConstrainedOutput)
    for part, data in (("left", _left), ("bottom", _bottom)):
        xb, _ = problem.domain.sample_boundary(200, seed=3, part=part)
        assert_close(model(xb)[:, 0], data(xb), tol=1e-14)
        assert_close(model.forward_jet(xb).value[:, 0], data(xb), tol=1e-14)
    # elsewhere the network is free: the output is not the lift
    xr, _ = problem.domain.sample_boundary(50, seed=3, part="right")
    lift, _ = constraints.hard_constraint(problem)
    assert (model(xr) - lift(xr)).abs().max() > 1e-3


@pytest.mark.parametrize("kind", KINDS)
def test_boundary_and_initial_values_on_a_space_time_cylinder(kind):
    problem = Heat()
    model = constraints.constrain(_inner(kind, 3), problem)
    for part in ("boundary", "initial"):
        xb, _ = problem.domain.sample_boundary(200, seed=4, part=part)
        assert_close(model(xb), _heat_exact(xb), tol=1e-13)
        assert_close(model.forward_jet(xb).value, _heat_exact(xb), tol=1e-13)


def test_second_order_initial_condition_fixes_value_and_velocity():
    problem = Wave()
    model = constraints.constrain(MLP([2, 12, 1]).double(), problem)
    x0, _ = problem.domain.sample_boundary(100, seed=5, part="initial")
    jet = model.forward_jet(x0)
    s = torch.sin(math.pi * x0[:, 0])
    assert_close(jet.value[:, 0], s, tol=1e-13)
    assert_close(jet.grad[:, 0, 1], 2 * s, tol=1e-12)  # du/dt = dt_value at t = t0
    _, grad, _ = autograd_jet(model, x0)
    assert_close(grad[:, 0, 1], 2 * s, tol=1e-12)
    xb, _ = problem.domain.sample_boundary(100, seed=5, part="boundary")
    assert model(xb).abs().max() < 1e-14


def test_conditions_on_one_component_leave_the_other_free():
    class Two(Plate):
        output_dim = 2
        conditions = [bc.Dirichlet("top", value=_left, component=1, hard=True)]

    problem = Two()
    inner = MLP([2, 8, 2]).double()
    model = constraints.constrain(inner, problem)
    x = problem.domain.sample_interior(50, seed=7)
    assert torch.equal(model(x)[:, 0], inner(x)[:, 0])
    xb, _ = problem.domain.sample_boundary(100, seed=7, part="top")
    assert_close(model(xb)[:, 1], _left(xb), tol=1e-14)
    assert (model(xb)[:, 0] - _left(xb)).abs().max() > 1e-3


# ----------------------------------------------------------------------------- forward jets

@pytest.mark.parametrize("kind", KINDS)
def test_forward_jet_equals_nested_autograd(kind):
    problem = Plate()
    model = constraints.constrain(_inner(kind, 2), problem)
    x = torch.cat([problem.domain.sample_interior(60, seed=8),
                   problem.domain.sample_boundary(20, seed=8)[0]])
    u, g, h = autograd_jet(model, x)
    for order in (2, 1, 0):  # the second and third calls come from the cache
        jet = model.forward_jet(x, order=order)
        assert_close(jet.value, u)
        assert jet.order == order
        if order >= 1:
            assert_close(jet.grad, g)
        if order == 2:
            assert_close(jet.hess_diag, h)
    assert_residual_param_grads_match(model, x, torch.ones(len(x), 1, dtype=x.dtype))


@pytest.mark.parametrize("kind", KINDS)
def test_forward_jet_of_vector_output_with_per_component_distance(kind):
    class Two(Plate):
        output_dim = 2
        conditions = [bc.Dirichlet("left", value=_left, component=0, hard=True),
                      bc.Dirichlet("boundary", value=_bottom, component=1, hard=True)]

    model = constraints.constrain(_inner(kind, 2, 2), Two())
    x = Two.domain.sample_interior(40, seed=9)
    u, g, h = autograd_jet(model, x)
    jet = model.forward_jet(x)
    assert_close(jet.value, u)
    assert_close(jet.grad, g)
    assert_close(jet.hess_diag, h)


def test_jet_stays_differentiable_in_points_that_require_grad():
    model = constraints.constrain(MLP([2, 8, 1]).double(), Plate())
    x = Plate.domain.sample_interior(30, seed=10).requires_grad_(True)
    jet = model.forward_jet(x)
    (dx,) = torch.autograd.grad(jet.value.sum(), x, create_graph=True)
    assert_close(dx, jet.grad[:, 0])
    (d2,) = torch.autograd.grad(jet.grad[:, 0, 0].sum(), x)
    assert_close(d2[:, 0], jet.hess_diag[:, 0, 0])


def test_evaluate_on_the_forward_path_matches_autograd():
    problem = Heat()
    model = constraints.constrain(MLP([3, 10, 1]).double(), problem)
    x = op.with_time_axis(problem.domain.sample_interior(50, seed=11), 2)
    u = op.evaluate(model, x, derivatives="forward")
    r_forward = problem.residual(x, u)
    xg = op.with_time_axis(x.detach().clone().requires_grad_(True), 2)
    r_autograd = problem.residual(xg, op.evaluate(model, xg, derivatives="autograd"))
    assert_close(r_forward, r_autograd)


# ----------------------------------------------------------------------------- cache

def test_fixed_jets_are_cached_per_point_set():
    calls = []
    lift, distance = constraints.hard_constraint(Plate())

    def counted(x):
        calls.append(x.shape[0])
        return distance(x)

    model = ConstrainedOutput(MLP([2, 8, 1]).double(), lift, counted)
    x = Plate.domain.sample_interior(40, seed=12)
    first = model.forward_jet(x)
    n = len(calls)
    model.forward_jet(x)
    model.forward_jet(x.clone())  # a new tensor with the same points
    model.forward_jet(x, order=1)
    assert len(calls) == n
    x[0, 0] += 0.01  # moved in place
    moved = model.forward_jet(x)
    assert len(calls) == n + 1 and not torch.equal(moved.grad, first.grad)
    model.forward_jet(x.double() + 0.01)  # other points
    assert len(calls) == n + 2
    model.clear_cache()
    model.forward_jet(x)
    assert len(calls) == n + 3


# ----------------------------------------------------------------------------- pass-throughs

def test_grid_adaptive_only_when_the_inner_model_is():
    lift, distance = constraints.hard_constraint(Plate())
    kan = ConstrainedOutput(KAN([2, 4, 1], grid_size=4, seed=0).double(), lift, distance)
    mlp = ConstrainedOutput(MLP([2, 4, 1]).double(), lift, distance)
    assert isinstance(kan, GridAdaptive) and not isinstance(mlp, GridAdaptive)
    assert hasattr(kan, "activation_curves") and not hasattr(mlp, "activation_curves")
    assert kan.widths == [2, 4, 1] and kan.n_params == kan.inner.n_params
    x = Plate.domain.sample_interior(200, seed=13)
    before = kan(x).detach()
    assert kan.refine(8) is kan and kan.grid_size == kan.inner.grid_size == 8
    assert_close(kan(x).detach(), before, tol=1e-2)
    kan.update_grid(x)
    assert len(kan.activation_curves(20)) == 2
    twin = copy.deepcopy(kan)
    assert type(twin) is type(kan) and torch.equal(twin(x), kan(x))
    with pytest.raises(TypeError, match="inner must be a kanpde model"):
        ConstrainedOutput(lambda x: x, lift, distance)
    with pytest.raises(ValueError, match=r"distance\(x\) must return shape"):
        ConstrainedOutput(MLP([2, 4, 1]).double(), lift, lambda x: x)(x)


# ----------------------------------------------------------------------------- training

def _disk_exact(x):
    r2 = (x ** 2).sum(1, keepdim=True)
    return x[:, :1] * x[:, 1:] + (1 - r2) * torch.cos(x[:, :1] + x[:, 1:]) / 2


class DiskPoisson(Problem):
    """-Lap u = f on the unit disk; on the circle u = x y (the hard condition, kept out of the
    list: this problem is what the loss sees)."""
    domain = geometry.Disk([0, 0], 1)
    conditions = []

    def residual(self, x, u):
        return -op.laplacian(u, x) - self.source(x)

    def source(self, x):
        with torch.enable_grad():
            xs = x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(_disk_exact(xs).sum(), xs, create_graph=True)
            lap = sum(torch.autograd.grad(g[:, i].sum(), xs, retain_graph=True)[0][:, i] for i in range(2))
        return -lap.detach().unsqueeze(1)

    def exact(self, x):
        return _disk_exact(x)


class DiskPoissonHard(DiskPoisson):
    conditions = [bc.Dirichlet("boundary", value=lambda x: x[:, 0] * x[:, 1], hard=True)]


@pytest.mark.parametrize("kind", KINDS)
def test_poisson_on_a_disk_trains_on_the_forward_path(kind):
    model = constraints.constrain(_inner(kind, 2), DiskPoissonHard())
    res = kanpde.solve(DiskPoisson(), model, **tiny(lbfgs(100), seed=0, derivatives="forward", n_interior=300))
    assert res.metrics["rel_l2"] < 5e-3, res.metrics
    xb, _ = DiskPoisson.domain.sample_boundary(100, seed=14)
    assert_close(model(xb.to(next(model.parameters()).dtype))[:, 0].double(), xb[:, 0] * xb[:, 1], tol=1e-12)
