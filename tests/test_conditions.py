"""Conditions against closed-form solutions: residuals vanish (to 1e-12) for the exact
solution and equal the analytic defect for a perturbed one.  No network is needed: ``u_fn``
is a closed-form function of ``x``."""
import math

import numpy as np
import pytest
import torch

from kanpde import conditions as bc
from kanpde import geometry

TOL = 1e-12

# u(x, y) = sin(x) exp(y) on [0, 1] x [0, 2]
RECT = geometry.Rectangle([0, 0], [1, 2])


def u_star(x):
    return torch.sin(x[:, :1]) * torch.exp(x[:, 1:])


def u_star_flat(x):
    return torch.sin(x[:, 0]) * torch.exp(x[:, 1])


def du_dx(x):  # (N,)
    return torch.cos(x[:, 0]) * torch.exp(x[:, 1])


def du_dy(x):
    return torch.sin(x[:, 0]) * torch.exp(x[:, 1])


def small(r, tol=TOL):
    return r.detach().abs().max().item() < tol


def test_dirichlet_named_part_exact_and_perturbed():
    cond = bc.Dirichlet("left", value=u_star_flat)
    assert cond.name == "dirichlet_left" and not cond.needs_derivatives
    batch = cond.sample(RECT, 64, seed=0)
    assert batch["x"].shape == (64, 2) and batch["x"].dtype == torch.float64
    assert torch.all(batch["x"][:, 0] == 0.0)
    r = cond.residual(batch, u_star)
    assert r.shape == (64, 1) and small(r)
    r = cond.residual(batch, lambda x: u_star(x) + 0.25)
    assert torch.allclose(r, torch.full_like(r, 0.25), atol=TOL)


def test_dirichlet_constant_value_on_whole_boundary():
    # u = x (1 - x) y (2 - y) vanishes on the boundary of [0, 1] x [0, 2]
    cond = bc.Dirichlet("boundary", value=0.0)
    batch = cond.sample(RECT, 200, method="sobol", seed=3)
    bubble = lambda x: x[:, :1] * (1 - x[:, :1]) * x[:, 1:] * (2 - x[:, 1:])
    assert small(cond.residual(batch, bubble))
    r = cond.residual(batch, lambda x: bubble(x) + x[:, :1])
    assert torch.allclose(r, batch["x"][:, :1], atol=TOL)
    assert r.abs().max() > 0.5


def test_dirichlet_predicate_selects_exact_count():
    right = lambda x: x[:, 0] > 1 - 1e-9
    cond = bc.Dirichlet(right, value=u_star_flat)
    assert cond.name == "dirichlet_predicate"
    batch = cond.sample(RECT, 37, seed=1)
    assert batch["x"].shape == (37, 2)
    assert torch.all(batch["x"][:, 0] == 1.0)
    assert torch.allclose(batch["normal"], torch.tensor([1.0, 0.0], dtype=torch.float64).expand(37, 2))
    assert small(cond.residual(batch, u_star))
    assert not small(cond.residual(batch, lambda x: torch.cos(x[:, :1]) * torch.exp(x[:, 1:])), 1e-3)
    again = cond.sample(RECT, 37, seed=1)
    assert torch.equal(batch["x"], again["x"])


def test_predicate_that_selects_nothing_is_a_clear_error():
    cond = bc.Dirichlet(lambda x: x[:, 0] > 5.0, name="nowhere")
    with pytest.raises(ValueError, match=r"'nowhere'.*predicate.*selected only 0"):
        cond.sample(RECT, 10, seed=0)


def test_predicate_must_return_bool_mask():
    cond = bc.Dirichlet(lambda x: x[:, 0])
    with pytest.raises(ValueError, match="bool mask"):
        cond.sample(RECT, 10, seed=0)


@pytest.mark.parametrize("part, normal, derivative", [
    ("right", (1.0, 0.0), du_dx),
    ("left", (-1.0, 0.0), lambda x: -du_dx(x)),
    ("top", (0.0, 1.0), du_dy),
    ("bottom", (0.0, -1.0), lambda x: -du_dy(x)),
])
def test_neumann_against_analytic_normal_derivative(part, normal, derivative):
    cond = bc.Neumann(part, value=derivative)
    assert cond.needs_derivatives
    batch = cond.sample(RECT, 40, seed=2)
    assert torch.allclose(batch["normal"], torch.tensor(normal, dtype=torch.float64).expand(40, 2))
    r = cond.residual(batch, u_star)
    assert r.shape == (40, 1) and small(r)
    # u + 3 x y changes du/dn by 3 (n . (y, x))
    r = cond.residual(batch, lambda x: u_star(x) + 3 * x[:, :1] * x[:, 1:])
    x = batch["x"]
    expected = 3 * (normal[0] * x[:, 1:] + normal[1] * x[:, :1])
    assert torch.allclose(r, expected, atol=1e-12)
    assert not batch["x"].requires_grad  # the condition made its own grad copy


def test_robin_on_left_face():
    a, b = 2.0, 0.5
    # on x = 0: normal (-1, 0), du/dn = -cos(0) e^y = -e^y, u = 0
    g = lambda x: a * u_star_flat(x) - b * du_dx(x)
    cond = bc.Robin("left", a=a, b=b, value=g)
    assert cond.needs_derivatives and cond.name == "robin_left"
    batch = cond.sample(RECT, 30, seed=4)
    assert small(cond.residual(batch, u_star))
    # perturbation 0.1 x: delta = a * 0 + b * (-0.1) on x = 0
    r = cond.residual(batch, lambda x: u_star(x) + 0.1 * x[:, :1])
    assert torch.allclose(r, torch.full_like(r, -0.1 * b), atol=TOL)
    # callable coefficients
    cond = bc.Robin("top", a=lambda x: 1 + x[:, 0], b=lambda x: x[:, 1:], value=lambda x: (1 + x[:, 0] + x[:, 1]) * u_star_flat(x))
    batch = cond.sample(RECT, 30, seed=5)
    assert small(cond.residual(batch, u_star), 1e-11)


def test_robin_without_derivative_term():
    cond = bc.Robin("top", a=1.0, b=0.0, value=u_star_flat)
    assert not cond.needs_derivatives
    assert small(cond.residual(cond.sample(RECT, 10, seed=0), u_star))


def test_periodic_box():
    box = geometry.Rectangle([0, 0], [2 * math.pi, 1])
    cond = bc.Periodic("left", "right", axis=0)
    assert cond.name == "periodic_left_right" and cond.needs_derivatives
    batch = cond.sample(box, 25, seed=0)
    assert torch.all(batch["x"][:, 0] == 0.0)
    assert torch.allclose(batch["x_pair"][:, 0], torch.full((25,), 2 * math.pi, dtype=torch.float64))
    assert torch.equal(batch["x"][:, 1], batch["x_pair"][:, 1])
    r = cond.residual(batch, u_star)  # sin(x) e^y is 2 pi periodic in x
    assert r.shape == (25, 2) and small(r)
    # x e^y: value jump -2 pi e^y, derivative jump 0
    r = cond.residual(batch, lambda x: x[:, :1] * torch.exp(x[:, 1:]))
    y = batch["x"][:, 1:]
    assert torch.allclose(r[:, :1], -2 * math.pi * torch.exp(y), atol=TOL)
    assert small(r[:, 1:])
    # x^2 / 2: value jump -2 pi^2, derivative jump -2 pi
    r = cond.residual(batch, lambda x: x[:, :1] ** 2 / 2)
    assert torch.allclose(r, torch.tensor([-2 * math.pi**2, -2 * math.pi], dtype=torch.float64).expand(25, 2))
    # reversed faces and no derivative
    cond = bc.Periodic("right", "left", axis=0, derivative=False)
    batch = cond.sample(box, 10, seed=1)
    assert torch.all(batch["x_pair"][:, 0] == 0.0)
    assert cond.residual(batch, u_star).shape == (10, 1) and not cond.needs_derivatives


def test_periodic_rejects_non_opposite_faces():
    box = geometry.Rectangle([0, 0], [1, 1])
    with pytest.raises(ValueError, match="part_b='top'"):
        bc.Periodic("left", "top", axis=0).sample(box, 10, seed=0)
    with pytest.raises(ValueError, match="do not lie on a face"):
        bc.Periodic("left", "right", axis=1).sample(box, 10, seed=0)


def test_initial_with_velocity_on_space_time_domain():
    domain = geometry.Interval(0, 1) * geometry.TimeDomain(0, 0.5)
    u0 = lambda x: torch.sin(math.pi * x[:, 0])
    cond = bc.Initial(value=u0, dt_value=u0)
    assert cond.name == "initial" and cond.needs_derivatives
    batch = cond.sample(domain, 30, seed=0)
    assert batch["x"].shape == (30, 2) and torch.all(batch["x"][:, 1] == 0.0)
    exact = lambda x: torch.sin(math.pi * x[:, :1]) * (torch.cos(x[:, 1:]) + torch.sin(x[:, 1:]))
    r = cond.residual(batch, exact)
    assert r.shape == (30, 2) and small(r)
    # + 0.3 t leaves u(x, 0) and shifts du/dt by 0.3
    r = cond.residual(batch, lambda x: exact(x) + 0.3 * x[:, 1:])
    assert small(r[:, :1]) and torch.allclose(r[:, 1:], torch.full((30, 1), 0.3, dtype=torch.float64))
    # without dt_value: value only, no derivatives
    cond = bc.Initial(value=u0)
    assert not cond.needs_derivatives
    r = cond.residual(cond.sample(domain, 10, seed=1), lambda x: exact(x) + 1.0)
    assert r.shape == (10, 1) and torch.allclose(r, torch.ones_like(r))


def test_initial_needs_space_time_domain():
    with pytest.raises(ValueError, match=r"'initial'.*space-time.*'boundary'"):
        bc.Initial(value=0.0).sample(RECT, 10)


def test_data_all_points_and_seeded_subset():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(50, 2, generator=gen, dtype=torch.float64) * torch.tensor([1.0, 2.0], dtype=torch.float64)
    cond = bc.Data(x, u_star_flat(x))
    assert cond.n_points == 50 and cond.name == "data" and not cond.needs_derivatives
    batch = cond.sample(RECT)
    assert torch.equal(batch["x"], x)
    assert small(cond.residual(batch, u_star))
    r = cond.residual(batch, lambda z: u_star(z) - 2.0)
    assert torch.allclose(r, torch.full_like(r, -2.0), atol=TOL)
    sub = cond.sample(RECT, 10, seed=7)
    assert sub["x"].shape == (10, 2) and len(set(map(tuple, sub["x"].tolist()))) == 10
    assert torch.equal(sub["x"], cond.sample(RECT, 10, seed=7)["x"])
    assert small(cond.residual(sub, u_star))
    with pytest.raises(ValueError, match=r"values must have shape \(50,\) or \(50, 1\)"):
        bc.Data(x, torch.zeros(49))
    with pytest.raises(ValueError, match="3 coordinates"):
        bc.Data(np.zeros((4, 3)), np.zeros(4)).sample(RECT)


def test_residual_after_loop_cast_to_float32():
    cond = bc.Neumann("right", value=du_dx)
    batch = {k: v.to(torch.float32) for k, v in cond.sample(RECT, 16, seed=0).items()}
    r = cond.residual(batch, u_star)
    assert r.dtype == torch.float32 and r.abs().max() < 1e-5


def test_vector_output_component():
    cond = bc.Dirichlet("top", value=lambda x: x[:, 0], component=1)
    assert cond.name == "dirichlet_top_c1"
    batch = cond.sample(RECT, 8, seed=0)
    u = lambda x: torch.cat([torch.zeros_like(x[:, :1]), x[:, :1]], dim=1)
    assert small(cond.residual(batch, u))
    with pytest.raises(ValueError, match="component=1 is out of range"):
        cond.residual(batch, lambda x: x[:, :1])


def test_unknown_part_lists_domain_parts():
    with pytest.raises(ValueError, match=r"'dirichlet_lft'.*where='lft'.*'left', 'right', 'bottom', 'top'"):
        bc.Dirichlet("lft").sample(RECT, 10)
    with pytest.raises(ValueError, match="part_b='east'"):
        bc.Periodic("left", "east", axis=0).sample(RECT, 10)


def test_value_callable_shape_is_checked():
    cond = bc.Dirichlet("left", value=lambda x: x, name="wall")
    with pytest.raises(ValueError, match=r"condition 'wall': value\(x\) must return shape \(5,\) or \(5, 1\).*got \(5, 2\)"):
        cond.sample(RECT, 5, seed=0)


@pytest.mark.parametrize("kwargs, match", [
    ({"weight": -1.0}, "weight must be a finite number >= 0"),
    ({"component": -1}, "component must be an integer >= 0"),
    ({"value": "zero"}, "value must be a number or a callable"),
    ({"n_points": 0}, "n_points must be an integer >= 1"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        bc.Dirichlet("left", **kwargs)


def test_bad_where_and_method():
    with pytest.raises(TypeError, match="where must be a boundary part name"):
        bc.Dirichlet(3)
    with pytest.raises(ValueError, match="method must be one of"):
        bc.Dirichlet("left").sample(RECT, 4, method="random")
    with pytest.raises(ValueError, match="needs a number of points"):
        bc.Dirichlet("left").sample(RECT)
    assert bc.Dirichlet("left", n_points=6).sample(RECT)["x"].shape == (6, 2)


def test_on_face_fixes_one_coordinate_and_picks_a_component():
    def field(x):
        return torch.cat([x[:, :1] * 10 + x[:, 1:], x[:, :1] - x[:, 1:]], 1)

    x = torch.tensor([[0.25, 0.5], [0.75, -0.5]], dtype=torch.float64)
    whole = bc.on_face(field, axis=0, at=1.0)(x)
    torch.testing.assert_close(whole, torch.tensor([[10.5, 0.5], [9.5, 1.5]], dtype=torch.float64), rtol=0, atol=0)
    second = bc.on_face(field, axis=1, at=-2.0, component=1)(x)
    torch.testing.assert_close(second, torch.tensor([[2.25], [2.75]], dtype=torch.float64), rtol=0, atol=0)
    assert x[0, 0] == 0.25  # the caller's points are left alone


@pytest.mark.parametrize("kwargs, message", [
    ({"function": 3.0, "axis": 0, "at": 0.0}, "function must be callable"),
    ({"function": torch.sin, "axis": -1, "at": 0.0}, "axis must be"),
    ({"function": torch.sin, "axis": 0, "at": float("nan")}, "at must be a finite number"),
    ({"function": torch.sin, "axis": 0, "at": 0.0, "component": 1.5}, "component must be"),
])
def test_on_face_bad_arguments_are_named(kwargs, message):
    with pytest.raises((TypeError, ValueError), match=message):
        bc.on_face(**kwargs)


def test_on_face_axis_beyond_the_points_is_named():
    with pytest.raises(ValueError, match="axis 2 is not a column"):
        bc.on_face(torch.sin, axis=2, at=0.0)(torch.zeros(3, 2, dtype=torch.float64))
