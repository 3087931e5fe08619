"""Forward derivative propagation vs nested autograd, through the operators users call."""
from __future__ import annotations

import pytest
import torch

from kanpde import operators as op
from kanpde.models import KAN, MLP, ChebyKAN

TOL = 1e-10

MODELS = {
    "kan-G5-[2,6,1]": lambda d: KAN([d, 6, 1], grid_size=5, seed=1),
    "kan-G20-[d,4,3,1]": lambda d: KAN([d, 4, 3, 1], grid_size=20, seed=2),
    "kan-G100-[d,3,1]": lambda d: KAN([d, 3, 1], grid_size=100, seed=3),
    "chebykan-[d,5,1]": lambda d: ChebyKAN([d, 5, 1], degree=6),
    "chebykan-[d,4,4,1]": lambda d: ChebyKAN([d, 4, 4, 1], degree=4),
    "mlp-tanh-[d,8,8,1]": lambda d: MLP([d, 8, 8, 1], activation="tanh"),
    "mlp-sin-[d,16,1]": lambda d: MLP([d, 16, 1], activation="sin"),
    "mlp-gelu-[d,6,6,6,1]": lambda d: MLP([d, 6, 6, 6, 1], activation="gelu"),
}


def build(name, d):
    torch.manual_seed(0)
    return MODELS[name](d).double()


def points(n, d, scale=1.5, seed=0):
    g = torch.Generator().manual_seed(seed)
    # scale > 1 puts some points outside the KAN grid range [-1, 1]
    return scale * (2 * torch.rand(n, d, generator=g, dtype=torch.float64) - 1)


def derivatives(model, x, mode, time_axis=None):
    x = x.clone().requires_grad_(mode == "autograd")
    if time_axis is not None:
        op.with_time_axis(x, time_axis)
    u = op.evaluate(model, x, derivatives=mode)
    out = {"u": u, "grad": op.grad(u, x), "lap": op.laplacian(u, x)}
    for i in range(x.shape[1]):
        out[f"d{i}{i}"] = op.partial(u, x, i, i)
    if time_axis is not None:
        out["dt"] = op.dt(u, x)
        out["dtt"] = op.dt(u, x, order=2)
    return out


def assert_close(a, b, what):
    err = (a - b).abs().max().item()
    scale = max(1.0, b.abs().max().item())
    assert err <= TOL * scale, f"{what}: max difference {err:.3e}"


@pytest.mark.parametrize("name", sorted(MODELS))
@pytest.mark.parametrize("d", [1, 2, 3])
def test_values_and_derivatives_match_autograd(name, d):
    model = build(name, d)
    x = points(64, d)
    fwd, ref = derivatives(model, x, "forward"), derivatives(model, x, "autograd")
    for key in ref:
        assert_close(fwd[key], ref[key], f"{name} d={d} {key}")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_space_time_laplacian_and_time_derivatives(name):
    model = build(name, 3)
    x = points(48, 3, seed=1)
    fwd, ref = derivatives(model, x, "forward", time_axis=2), derivatives(model, x, "autograd", time_axis=2)
    for key in ref:
        assert_close(fwd[key], ref[key], f"{name} space-time {key}")
    # the spatial Laplacian leaves the time column out
    assert_close(fwd["lap"], fwd["d00"] + fwd["d11"], "spatial laplacian")


@pytest.mark.parametrize("name", sorted(MODELS))
def test_parameter_gradients_of_a_residual_loss_match(name):
    model = build(name, 2)
    x = points(80, 2, seed=2)
    f = torch.sin(x[:, :1]) * x[:, 1:]

    def grads(mode):
        model.zero_grad()
        xx = x.clone().requires_grad_(mode == "autograd")
        u = op.evaluate(model, xx, derivatives=mode)
        loss = (op.laplacian(u, xx) - f).pow(2).mean() + 0.1 * op.grad(u, xx).pow(2).mean()
        loss.backward()
        # an output bias does not reach the derivatives: its gradient is None on both paths
        return [None if p.grad is None else p.grad.clone() for p in model.parameters()]

    for gf, ga in zip(grads("forward"), grads("autograd")):
        if gf is None or ga is None:
            assert gf is None or not gf.any(), name
            assert ga is None or not ga.any(), name
            continue
        assert_close(gf, ga, f"{name} parameter gradient")


def test_kan_forward_path_after_grid_update_and_refine():
    model = KAN([2, 5, 1], grid_size=5, seed=4).double()
    x = points(200, 2, scale=0.8, seed=3)
    model.update_grid(x)
    model.refine(12)
    y = points(64, 2, seed=5)
    fwd, ref = derivatives(model, y, "forward"), derivatives(model, y, "autograd")
    for key in ref:
        assert_close(fwd[key], ref[key], f"adapted grid {key}")


@pytest.mark.parametrize("name", ["kan-G5-[2,6,1]", "chebykan-[d,5,1]", "mlp-tanh-[d,8,8,1]"])
def test_values_at_other_points_share_the_jet_pass(name):
    # evaluate_with_values: the collocation points' jet and plain values at extra point sets in
    # one pass, equal to separate calls; parameter gradients of a combined loss equal too
    model = build(name, 2)
    x, xb1, xb2 = points(50, 2), points(17, 2, seed=1), points(9, 2, seed=2)
    u, (v1, v2) = op.evaluate_with_values(model, x, [xb1, xb2], derivatives="forward")
    ref = op.evaluate(model, x, derivatives="forward")
    assert_close(u, ref, "u")
    assert_close(op.laplacian(u, x), op.laplacian(ref, x), "laplacian")
    assert_close(op.grad(u, x), op.grad(ref, x), "grad")
    assert_close(v1, model(xb1), "values at set 1")
    assert_close(v2, model(xb2), "values at set 2")
    params = list(model.parameters())

    def grads(lap, a, b):
        loss = lap.pow(2).mean() + a.pow(2).mean() + 3 * b.pow(2).mean()
        return torch.autograd.grad(loss, params, allow_unused=True)
    fused = grads(op.laplacian(u, x), v1, v2)
    sep = grads(op.laplacian(ref, x), model(xb1), model(xb2))
    for a, b in zip(fused, sep):
        if b is not None:
            assert_close(a, b, "parameter gradient")
    # autograd mode: separate plain calls, no jet attached to anything
    xa = x.clone().requires_grad_(True)
    ua, (va,) = op.evaluate_with_values(model, xa, [xb1], derivatives="autograd")
    assert_close(op.laplacian(ua, xa), op.laplacian(ref, x), "autograd laplacian")
    assert_close(va, model(xb1), "autograd values")
