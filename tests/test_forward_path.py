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
