"""Operators against closed-form derivatives (float64, to 1e-10)."""
import math

import pytest
import torch

from kanpde import operators as op
from kanpde.models.base import Jet

torch.set_default_dtype(torch.float64)
TOL = 1e-10


def points(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (2 * torch.rand(n, d, generator=g, dtype=torch.float64) - 1).requires_grad_(True)


def close(a, b, tol=TOL):
    assert a.shape == b.shape, (a.shape, b.shape)
    err = (a - b).abs().max().item()
    assert err < tol, err


def test_1d_derivatives():
    x = points(50, 1)
    u = torch.sin(3 * x) * torch.exp(x)
    X = x.detach()
    du = 3 * torch.cos(3 * X) * torch.exp(X) + torch.sin(3 * X) * torch.exp(X)
    d2u = (-9 * torch.sin(3 * X) + 6 * torch.cos(3 * X) + torch.sin(3 * X)) * torch.exp(X)
    close(op.grad(u, x), du)
    close(op.partial(u, x, 0), du)
    close(op.partial(u, x, 0, 0), d2u)
    close(op.laplacian(u, x), d2u)
    close(op.hessian(u, x), d2u[:, :, None])
    d3u = torch.exp(X) * (-26 * torch.sin(3 * X) - 18 * torch.cos(3 * X))
    close(op.partial(u, x, 0, 0, 0), d3u)


def test_2d_gradient_laplacian_hessian():
    x = points(64, 2)
    X, Y = x[:, :1], x[:, 1:]
    u = torch.sin(math.pi * X) * torch.sin(math.pi * Y**2) + X**3 * Y
    Xd, Yd = X.detach(), Y.detach()
    pi = math.pi
    ux = pi * torch.cos(pi * Xd) * torch.sin(pi * Yd**2) + 3 * Xd**2 * Yd
    uy = 2 * pi * Yd * torch.sin(pi * Xd) * torch.cos(pi * Yd**2) + Xd**3
    uxx = -pi**2 * torch.sin(pi * Xd) * torch.sin(pi * Yd**2) + 6 * Xd * Yd
    uyy = (2 * pi * torch.sin(pi * Xd) * torch.cos(pi * Yd**2)
           - 4 * pi**2 * Yd**2 * torch.sin(pi * Xd) * torch.sin(pi * Yd**2))
    uxy = 2 * pi**2 * Yd * torch.cos(pi * Xd) * torch.cos(pi * Yd**2) + 3 * Xd**2
    close(op.grad(u, x), torch.cat([ux, uy], 1))
    close(op.laplacian(u, x), uxx + uyy)
    H = op.hessian(u, x)
    close(H, torch.cat([torch.cat([uxx, uxy], 1)[:, None], torch.cat([uxy, uyy], 1)[:, None]], 1))
    close(op.partial(u, x, 0, 1), uxy)
    close(op.partial(u, x, 1, 0), uxy)


def test_3d_vector_field_div_and_components():
    x = points(40, 3)
    a, b, c = x[:, :1], x[:, 1:2], x[:, 2:]
    u = torch.cat([a**2 * b, torch.sin(b) * c, torch.exp(a * c)], dim=1)
    A, B, C = a.detach(), b.detach(), c.detach()
    close(op.div(u, x), 2 * A * B + torch.cos(B) * C + A * torch.exp(A * C))
    lap = op.laplacian(u, x)
    expected = torch.cat([2 * B, -torch.sin(B) * C, (A**2 + C**2) * torch.exp(A * C)], 1)
    close(lap, expected)
    close(op.laplacian(u, x, component=2), expected[:, 2:])
    g = op.grad(u, x)
    assert g.shape == (40, 3, 3)
    close(g[:, 1], torch.cat([torch.zeros_like(A), torch.cos(B) * C, torch.sin(B)], 1))


def test_space_time_heat_solution():
    # u = exp(-2 t) sin(x) sin(y) solves u_t = Lap u in space-time (x, y, t).
    x = op.with_time_axis(points(30, 3), 2)
    X, Y, T = x[:, :1], x[:, 1:2], x[:, 2:]
    u = torch.exp(-2 * T) * torch.sin(X) * torch.sin(Y)
    close(op.dt(u, x), op.laplacian(u, x))
    Xd, Yd, Td = X.detach(), Y.detach(), T.detach()
    close(op.dt(u, x, order=2), 4 * torch.exp(-2 * Td) * torch.sin(Xd) * torch.sin(Yd))
    # untagged points: laplacian sums every column (time included) unless told otherwise
    x2 = points(30, 3, seed=1)
    u2 = torch.exp(-2 * x2[:, 2:]) * torch.sin(x2[:, :1]) * torch.sin(x2[:, 1:2])
    close(op.laplacian(u2, x2, time_axis=2), op.dt(u2, x2))
    full = op.laplacian(u2, x2)
    close(full, op.dt(u2, x2) + 4 * u2.detach())


def test_normal_derivative():
    x = points(20, 2)
    n = torch.nn.functional.normalize(torch.randn(20, 2, dtype=torch.float64), dim=1)
    u = x[:, :1] ** 2 + 3 * x[:, 1:]
    expected = (2 * x[:, :1].detach() * n[:, :1] + 3 * n[:, 1:])
    close(op.normal_derivative(u, x, n), expected)


def test_derivatives_are_cached_once_per_tensor():
    x = points(10, 2)
    u = (x**3).sum(1, keepdim=True)
    calls = []
    orig = torch.autograd.grad

    def counting(*a, **k):
        calls.append(1)
        return orig(*a, **k)

    torch.autograd.grad = counting
    try:
        op.laplacian(u, x)
        n1 = len(calls)
        op.laplacian(u, x)
        op.grad(u, x)
        op.partial(u, x, 0, 0)
        assert len(calls) == n1 == 3  # one gradient + one Hessian row per axis
    finally:
        torch.autograd.grad = orig


class _AnalyticJetModel(torch.nn.Module):
    """u = sin(x0) * exp(x1): provides an exact jet so the forward path is used."""

    supports_jet = True

    def forward(self, x):
        return torch.sin(x[:, :1]) * torch.exp(x[:, 1:2])

    def forward_jet(self, x, order=2):
        s, c, e = torch.sin(x[:, 0]), torch.cos(x[:, 0]), torch.exp(x[:, 1])
        value = (s * e)[:, None]
        grad = torch.stack([c * e, s * e], 1)[:, None, :]
        hess = torch.stack([-s * e, s * e], 1)[:, None, :]
        return Jet(value, grad, hess if order >= 2 else None)


def test_forward_path_is_read_from_the_jet():
    model = _AnalyticJetModel()
    x = points(16, 2).detach()  # no requires_grad: only the jet can answer
    u = op.evaluate(model, x, derivatives="forward")
    X, Y = x[:, :1], x[:, 1:]
    close(op.laplacian(u, x), torch.zeros_like(X))
    close(op.grad(u, x), torch.cat([torch.cos(X) * torch.exp(Y), torch.sin(X) * torch.exp(Y)], 1))
    close(op.partial(u, x, 1, 1), torch.sin(X) * torch.exp(Y))
    with pytest.raises(op.ForwardPathUnavailable, match="mixed"):
        op.partial(u, x, 0, 1)


def test_auto_falls_back_to_autograd_for_mixed_derivatives():
    model = _AnalyticJetModel()
    x = points(16, 2)
    u = op.evaluate(model, x, derivatives="auto")
    X, Y = x[:, :1].detach(), x[:, 1:].detach()
    close(op.partial(u, x, 0, 1), torch.cos(X) * torch.exp(Y))
    u2 = op.evaluate(model, x, derivatives="autograd")
    assert getattr(u2, "_kanpde_jet", None) is None
    close(op.laplacian(u2, x), torch.zeros_like(X))


def test_bad_input_messages():
    x = points(5, 2)
    u = x.sum(1, keepdim=True)
    with pytest.raises(ValueError, match="derivatives must be one of"):
        op.evaluate(lambda z: z, x, derivatives="fast")
    with pytest.raises(ValueError, match="1-D tensor"):
        op.laplacian(u[:, 0], x)
    with pytest.raises(ValueError, match="component 3 is out of range"):
        op.grad(u, x, component=3)
    with pytest.raises(ValueError, match="requires_grad"):
        op.grad(x.detach().sum(1, keepdim=True), x.detach())
    with pytest.raises(ValueError, match="axis 5 is out of range"):
        op.partial(u, x, 5)
    with pytest.raises(ValueError, match="div: u has 1 components"):
        op.div(u, x)
    with pytest.raises(op.ForwardPathUnavailable, match="no forward_jet"):
        op.evaluate(lambda z: z, x, derivatives="forward")


def test_second_derivative_axes_records_what_the_residual_asks_for():
    x = torch.rand(6, 3, dtype=torch.float64, requires_grad=True)
    u = (x[:, :1] ** 2) * torch.sin(x[:, 1:2]) * torch.exp(x[:, 2:])
    with op.second_derivative_axes() as axes:
        op.partial(u, x, 0)            # first derivatives are not recorded
        op.partial(u, x, 2, 2)
    assert axes == {2}
    with op.second_derivative_axes() as axes:
        op.partial(u, x, 0, 1)
    assert axes == {0, 1}
    with op.second_derivative_axes() as axes:
        op.laplacian(u, op.with_time_axis(x, 2))   # spatial axes only
    assert axes == {0, 1}
    with op.second_derivative_axes() as axes:
        op.hessian(u, x)
    assert axes == {0, 1, 2}
    op.partial(u, x, 1, 1)  # outside a block: nothing recorded, nothing kept
    assert axes == {0, 1, 2}
