"""Tests of the B-spline KAN (kanpde.models.kan) against analytic truth.

Reference values come from outside the implementation wherever possible: B-splines reproduce
polynomials of degree <= k with coefficients given by Marsden's identity, finite differences,
torch.autograd.gradcheck, nested autograd for the forward jets, scipy's J0.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.special
import torch
from torch.func import functional_call

from tests.helpers import fit_lbfgs

from kanpde.models.base import Jet, Model
from kanpde.models.kan import (KAN, KANLayer, force_backend, interval_polynomials, kernel_calls, kernel_status,
                               load_kernels, uniform_knots)

F64 = torch.float64


# timings of these small problems are dominated by thread hand-offs on a busy machine
pytestmark = pytest.mark.usefixtures("one_thread")


def rand(n, d, lo=-1.0, hi=1.0, seed=0, dtype=F64):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, d, generator=g, dtype=dtype)


def randomize(model, scale=0.3, seed=1):
    """Spline coefficients of order one (not the near-zero initial noise), so every term matters."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in model.layers:
            layer.spline_weight.copy_(scale * torch.randn(layer.spline_weight.shape, generator=g, dtype=F64))
            layer.spline_scaler.copy_(1 + 0.2 * torch.randn(layer.spline_scaler.shape, generator=g, dtype=F64))
            if layer.bias is not None:
                layer.bias.copy_(0.1 * torch.randn(layer.bias.shape, generator=g, dtype=F64))
    return model


def nonuniform_knots(grid_size, k, lo=-1.0, hi=1.0, seed=0):
    g = torch.Generator().manual_seed(seed)
    gaps = 0.3 + torch.rand(grid_size + 2 * k, generator=g, dtype=F64)
    t = torch.cat([torch.zeros(1, dtype=F64), gaps.cumsum(0)])
    t = (t - t[k]) / (t[k + grid_size] - t[k])  # interior knots span [0, 1]
    return lo + (hi - lo) * t


def marsden_coefficients(knots, k, poly):
    """B-spline coefficients of ``sum_m poly[m] x^m`` (degree <= k) on ``knots``:
    the coefficient of x^m on B_i is sigma_m(t_{i+1}, ..., t_{i+k}) / binom(k, m)."""
    t = np.asarray(knots, dtype=np.float64)
    n_basis = len(t) - k - 1
    coef = np.zeros(n_basis)
    for i in range(n_basis):
        c = np.poly(t[i + 1:i + k + 1])  # prod (x - t) = sum_m (-1)^m sigma_m x^(k-m)
        sigma = [(-1) ** m * c[m] for m in range(k + 1)]
        coef[i] = sum(poly[m] * sigma[m] / math.comb(k, m) for m in range(len(poly)))
    return torch.as_tensor(coef)


def polynomial_kan(knots, k, poly):
    """A KAN [1, 1] whose only edge is exactly the polynomial ``poly`` (no base, no bias)."""
    g = len(knots) - 2 * k - 1
    m = KAN([1, 1], grid_size=g, spline_order=k, base_activation="none", bias=False, dtype=F64)
    layer = m.layers[0]
    with torch.no_grad():
        layer.grid.copy_(torch.as_tensor(knots).view(1, -1))
        layer.spline_weight.copy_(marsden_coefficients(knots, k, poly).view(1, 1, -1))
    return m


def poly_eval(poly, x, deriv=0):
    p = np.polynomial.polynomial.Polynomial(poly).deriv(deriv)
    return torch.as_tensor(p(x.numpy()))


def autograd_jet(model, x):
    x = x.detach().requires_grad_(True)
    u = model(x)
    grads, hess = [], []
    kw = {"create_graph": True, "allow_unused": True, "materialize_grads": True}
    for q in range(u.shape[1]):
        (g,) = torch.autograd.grad(u[:, q].sum(), x, **kw)
        h = [torch.autograd.grad(g[:, j].sum(), x, **kw)[0][:, j] for j in range(x.shape[1])]
        grads.append(g)
        hess.append(torch.stack(h, 1))
    return u, torch.stack(grads, 1), torch.stack(hess, 1)


#: force_backend settings of each contraction path
PATHS = {
    "edge": {},                                                     # compiled edge jets where they build
    "edge-torch": {"kernels": "torch", "row_products": "gather"},   # no compiled kernel at all
    "row-gather": {"kernels": "torch", "layout": "rows", "row_products": "gather"},
    "row-csr": {"kernels": "torch", "layout": "rows", "row_products": "csr"},
    "row-native": {"layout": "rows"},                               # compiled row jets and products
}


@pytest.fixture(params=list(PATHS))
def path(request):
    """Run a test through each contraction path: edge by edge (second-order jets in the compiled
    kernel where it builds, or in torch), and the row product on gathered rows, as a CSR sparse
    product, or (second-order jets) in the compiled kernel."""
    if request.param == "row-native" and load_kernels() is None:
        pytest.skip(f"compiled kernels: {kernel_status()}")
    with force_backend(**PATHS[request.param]):
        yield request.param


# ----------------------------------------------------------------------------- B-spline basis
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_partition_of_unity_uniform_and_adapted(k):
    layer = KANLayer(2, 1, grid_size=7, spline_order=k, dtype=F64)
    x = rand(500, 2, -1, 1)
    j, b = layer.basis(x)
    assert b.shape == (500, 2, k + 1) and j.min() >= 0 and j.max() <= 6
    torch.testing.assert_close(b.sum(-1), torch.ones(500, 2, dtype=F64), rtol=0, atol=1e-13)
    assert b.min() >= -1e-14
    layer.update_grid(rand(300, 2, -0.3, 0.9, seed=3) ** 3)
    assert not layer.grid_is_uniform
    lo, hi = layer.grid[:, k], layer.grid[:, k + 7]
    dense = layer.basis_matrix(lo + (hi - lo) * rand(400, 2, 0, 1, seed=4))
    assert dense.shape == (400, 2, 7 + k)
    torch.testing.assert_close(dense.sum(-1), torch.ones(400, 2, dtype=F64), rtol=0, atol=1e-12)
    assert dense.min() >= -1e-13


def test_uniform_pieces_are_the_cardinal_cubic_bspline():
    # on interval j the four nonzero cubic B-splines are (1-u)^3/6, (3u^3-6u^2+4)/6, (-3u^3+3u^2+3u+1)/6, u^3/6
    m = interval_polynomials(torch.arange(8, dtype=F64), 3)[0]
    expected = torch.tensor([[1, -3, 3, -1], [4, 0, -6, 3], [1, 3, 3, -3], [0, 0, 0, 1]], dtype=F64) / 6
    torch.testing.assert_close(m, expected, rtol=0, atol=1e-15)


@pytest.mark.parametrize("k,poly", [(3, [0.3, -1.2, 0.7, 2.0]), (2, [1.0, 0.5, -3.0]), (1, [0.25, -2.0])])
@pytest.mark.parametrize("uniform", [True, False])
def test_spline_reproduces_polynomials_with_derivatives(k, poly, uniform):
    g = 6
    knots = (torch.linspace(-1 - k * 2 / g, 1 + k * 2 / g, g + 2 * k + 1, dtype=F64) if uniform
             else nonuniform_knots(g, k, seed=5))
    model = polynomial_kan(knots, k, poly)
    assert model.layers[0].grid_is_uniform == uniform
    x = torch.cat([rand(200, 1, -1, 1), torch.tensor([[-3.0], [-1.0], [0.0], [1.0], [2.5]], dtype=F64)])
    u, grad, hess = autograd_jet(model, x)
    torch.testing.assert_close(u[:, 0], poly_eval(poly, x[:, 0]), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(grad[:, 0, 0], poly_eval(poly, x[:, 0], 1), rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(hess[:, 0, 0], poly_eval(poly, x[:, 0], 2), rtol=1e-10, atol=1e-10)
    jet = model.forward_jet(x)
    torch.testing.assert_close(jet.grad[:, 0, 0], poly_eval(poly, x[:, 0], 1), rtol=1e-11, atol=1e-11)
    torch.testing.assert_close(jet.hess_diag[:, 0, 0], poly_eval(poly, x[:, 0], 2), rtol=1e-10, atol=1e-10)


def test_derivatives_match_finite_differences():
    model = randomize(KAN([1, 1], grid_size=9, dtype=F64, seed=0))
    x = rand(50, 1, -1.2, 1.2, seed=7)
    h = 1e-5
    f = lambda z: model(z)[:, 0]
    fd1 = (f(x + h) - f(x - h)) / (2 * h)
    fd2 = (f(x + h) - 2 * f(x) + f(x - h)) / h ** 2
    jet = model.forward_jet(x)
    torch.testing.assert_close(jet.grad[:, 0, 0], fd1, rtol=0, atol=1e-8)
    torch.testing.assert_close(jet.hess_diag[:, 0, 0], fd2, rtol=0, atol=2e-4)


# ----------------------------------------------------------------------------- autograd
def test_gradcheck_and_gradgradcheck_inputs_and_parameters(path):
    model = randomize(KAN([2, 3, 2], grid_size=3, dtype=F64, seed=0), scale=0.5)
    model.update_grid(rand(64, 2, -0.8, 0.9, seed=11)) if path == "row-csr" else None
    names = [n for n, _ in model.named_parameters()]
    params = tuple(p.detach().clone().requires_grad_(True) for _, p in model.named_parameters())
    x = rand(5, 2, -1.3, 1.3, seed=2).requires_grad_(True)

    def fn(x, *ps):
        return functional_call(model, dict(zip(names, ps)), (x,))

    assert torch.autograd.gradcheck(fn, (x, *params), eps=1e-6, atol=1e-7)
    assert torch.autograd.gradgradcheck(fn, (x, *params), eps=1e-6, atol=1e-6)


# ----------------------------------------------------------------------------- forward jets
@pytest.mark.parametrize("widths,grid,lo,hi", [
    ([2, 1], 5, -1.0, 1.0),
    ([2, 5, 1], 4, -1.5, 1.5),          # points outside the grid range
    ([3, 4, 4, 2], 11, -1.0, 1.0),      # 3 input columns, deeper, 2 outputs
    ([2, 24, 24, 1], 7, -1.2, 1.2),     # wide hidden layer: row product
])
def test_forward_jet_equals_nested_autograd(widths, grid, lo, hi):
    model = randomize(KAN(widths, grid_size=grid, dtype=F64, seed=3), scale=0.2)
    x = rand(40, widths[0], lo, hi, seed=4)
    u, grad, hess = autograd_jet(model, x)
    jet = model.forward_jet(x, order=2)
    scale = max(1.0, hess.abs().max().item())
    # round-off only: the two paths sum the edges in different orders
    vtol = 1e-12 * max(1.0, u.abs().max().item())
    torch.testing.assert_close(jet.value, u, rtol=0, atol=vtol)
    torch.testing.assert_close(jet.grad, grad, rtol=0, atol=1e-11 * scale)
    torch.testing.assert_close(jet.hess_diag, hess, rtol=0, atol=1e-10 * scale)
    # the generic path (base Model.forward_jet seeds an explicit identity jet) agrees too
    generic = Model.forward_jet(model, x, order=2)
    torch.testing.assert_close(generic.hess_diag, jet.hess_diag, rtol=0, atol=1e-12 * scale)
    for order in (0, 1):
        low = model.forward_jet(x, order=order)
        assert low.order == order
        torch.testing.assert_close(low.value, u, rtol=0, atol=vtol)
        if order == 1:
            torch.testing.assert_close(low.grad, grad, rtol=0, atol=1e-11 * scale)


@pytest.mark.parametrize("k", [1, 2, 5])
def test_forward_jet_other_spline_orders(k, path):
    model = randomize(KAN([2, 6, 1], grid_size=4, spline_order=k, dtype=F64, seed=k), scale=0.2)
    x = rand(25, 2, -1.2, 1.2, seed=k)
    u, grad, hess = autograd_jet(model, x)
    jet = model.forward_jet(x)
    torch.testing.assert_close(jet.value, u, rtol=0, atol=1e-12)
    torch.testing.assert_close(jet.grad, grad, rtol=0, atol=1e-11)
    torch.testing.assert_close(jet.hess_diag, hess, rtol=0, atol=1e-10)
    with torch.no_grad():  # evaluation without a graph
        torch.testing.assert_close(model.forward_jet(x).hess_diag, hess.detach(), rtol=0, atol=1e-10)


@pytest.mark.parametrize("widths", [[2, 4, 1], [3, 3, 2]])
def test_forward_jet_parameter_gradients_equal_autograd(widths, path):
    model = randomize(KAN(widths, grid_size=6, dtype=F64, seed=5), scale=0.3)
    model.update_grid(rand(200, widths[0], -0.9, 0.8, seed=6))  # non-uniform knots
    x = rand(30, widths[0], -1.1, 1.1, seed=8)
    f = torch.sin(x.sum(1, keepdim=True))
    _, _, hess = autograd_jet(model, x)
    loss_a = ((hess.sum(-1) - f) ** 2).mean()
    ga = torch.autograd.grad(loss_a, list(model.parameters()), allow_unused=True, materialize_grads=True)
    jet = model.forward_jet(x)
    loss_f = ((jet.hess_diag.sum(-1) - f) ** 2).mean()
    gf = torch.autograd.grad(loss_f, list(model.parameters()), allow_unused=True, materialize_grads=True)
    torch.testing.assert_close(loss_f, loss_a, rtol=1e-12, atol=0)
    scale = max(g.abs().max().item() for g in ga)
    for a, b in zip(ga, gf):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("activation", ["silu", "tanh", "identity", "none"])
@pytest.mark.parametrize("k,uniform", [(1, True), (2, False), (3, True), (3, False)])
def test_fused_edge_jet_backward_all_channels(activation, k, uniform):
    """The fused edge-by-edge jet (one autograd node per layer, backward written out): a loss on
    value, gradient and Hessian diagonal gives the parameter and input gradients of nested
    autograd, for every base activation (third derivative in closed form) and spline order."""
    model = randomize(KAN([2, 3, 2, 2], grid_size=5, spline_order=k, base_activation=activation,
                          dtype=F64, seed=2), scale=0.3)
    if not uniform:
        model.update_grid(rand(100, 2, -0.9, 0.8, seed=6))
    x0 = rand(25, 2, -1.1, 1.1, seed=9)
    w = rand(3, 2, seed=10)

    def loss_of(u, g, h):
        return (w[0] * u.sin()).sum() + (w[1] * g.sum(-1)).pow(2).sum() + (w[2] * h.sum(-1)).pow(2).sum()

    x = x0.clone().requires_grad_(True)
    params = [x] + list(model.parameters())
    kw = {"create_graph": True, "allow_unused": True, "materialize_grads": True}
    u = model(x)
    gs, hs = [], []
    for q in range(u.shape[1]):
        (g,) = torch.autograd.grad(u[:, q].sum(), x, **kw)
        gs.append(g)
        hs.append(torch.stack([torch.autograd.grad(g[:, j].sum(), x, **kw)[0][:, j] for j in range(2)], 1))
    ga = torch.autograd.grad(loss_of(u, torch.stack(gs, 1), torch.stack(hs, 1)), params,
                             allow_unused=True, materialize_grads=True)
    x = x0.clone().requires_grad_(True)
    jet = model.forward_jet(x)
    gf = torch.autograd.grad(loss_of(jet.value, jet.grad, jet.hess_diag), [x] + list(model.parameters()),
                             allow_unused=True, materialize_grads=True)
    scale = max(a.abs().max().item() for a in ga)
    for a, b in zip(ga, gf):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-10 * scale)


@pytest.mark.parametrize("wide", [False, True])
def test_fused_edge_jet_gradcheck(wide):
    """The written-out backward of the fused jets (edge by edge, and the wide layers' row
    product) against finite differences (inputs and every parameter; the jet is differentiable
    once).  ``wide``: every layer after the first takes the row-product path."""
    with force_backend(layout="rows" if wide else "auto"), kernel_calls() as calls:
        check_jet_gradients()
    kind = "row_jet" if wide else "edge_jet"
    assert calls[f"{kind}/compiled"] + calls[f"{kind}/torch"] > 0


def check_jet_gradients():
    model = randomize(KAN([2, 3, 2, 1], grid_size=4, dtype=F64, seed=1), scale=0.3)
    names = [name for name, _ in model.named_parameters()]

    def fn(x, *ps):
        for name, q in zip(names, ps):  # the checked tensors stand in for the parameters
            mod, attr = model, name.split(".")
            for a in attr[:-1]:
                mod = getattr(mod, a)
            mod._parameters[attr[-1]] = q
        jet = model.forward_jet(x)
        return jet.value, jet.grad, jet.hess_diag

    x = rand(7, 2, -1.1, 1.1, seed=3).requires_grad_(True)
    inputs = (x, *[p.detach().clone().requires_grad_(True) for p in model.parameters()])
    assert torch.autograd.gradcheck(fn, inputs, eps=1e-6, atol=1e-7)


def test_backends_agree():
    model = randomize(KAN([2, 24, 24, 1], grid_size=5, dtype=F64, seed=9), scale=0.2)
    x = rand(64, 2, seed=10)
    out = {}
    for backend in ("gather", "csr"):
        with force_backend("torch", row_products=backend), kernel_calls() as calls:
            jet = model.forward_jet(x)
            loss = (jet.hess_diag.sum(-1) ** 2).mean()
            out[backend] = (jet.hess_diag, torch.autograd.grad(loss, list(model.parameters()), allow_unused=True,
                                                                materialize_grads=True))
        assert calls[f"row_product/{backend}"] > 0  # the wide layer's products ran on that backend
    torch.testing.assert_close(out["gather"][0], out["csr"][0], rtol=1e-12, atol=1e-12)
    for a, b in zip(out["gather"][1], out["csr"][1]):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


# ----------------------------------------------------------------------------- grid changes
def test_refine_nested_is_exact_and_replaces_parameters():
    model = randomize(KAN([2, 3, 1], grid_size=5, dtype=F64, seed=0))
    x = rand(300, 2, -1, 1)
    outside = rand(20, 2, -2, 2, seed=1)  # the end pieces continue outside the grid
    before, before_out = model(x), model(outside)
    old = model.layers[0].spline_weight
    assert model.refine(10) is model
    assert model.grid_size == 10 and all(layer.grid_size == 10 for layer in model.layers)
    assert model.layers[0].spline_weight is not old and model.layers[0].spline_weight.shape == (3, 2, 13)
    assert model.layers[0].grid.shape == (2, 17) and model.layers[0].grid_is_uniform
    assert model.state_dict()["layers.0.spline_weight"].shape == (3, 2, 13)
    torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)
    torch.testing.assert_close(model(outside), before_out, rtol=1e-10, atol=1e-10)
    model.refine(20)  # 5 -> 10 -> 20, as in the paper's grid extension
    torch.testing.assert_close(model(x), before, rtol=0, atol=1e-12)
    torch.testing.assert_close(model(outside), before_out, rtol=1e-10, atol=1e-10)
    # the new parameters train: a fresh optimizer sees them
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    model(x).square().mean().backward()
    opt.step()


def test_refine_adapted_grid_nested_and_non_nested():
    model = randomize(KAN([2, 2, 1], grid_size=4, dtype=F64, seed=2))
    samples = rand(400, 2, -0.7, 0.9, seed=3)
    model.update_grid(samples)
    before = model(samples)
    model.refine(8)
    assert not model.layers[0].grid_is_uniform
    torch.testing.assert_close(model(samples), before, rtol=0, atol=1e-11)
    model.refine(11)  # not nested: least squares, close but not exact
    err = (model(samples) - before).abs().max() / before.abs().max()
    assert err < 5e-2


def test_update_grid_exact_for_polynomial_edges():
    # a cubic lies in every cubic spline space, so re-gridding must keep it to round-off
    knots = torch.linspace(-1 - 6 / 5, 1 + 6 / 5, 12, dtype=F64)
    poly = [0.1, -0.4, 0.8, 1.3]
    model = polynomial_kan(knots, 3, poly)
    samples = rand(500, 1, -0.4, 0.9, seed=4) ** 2
    model.update_grid(samples)
    layer = model.layers[0]
    assert not layer.grid_is_uniform
    lo, hi = layer.grid[0, 3].item(), layer.grid[0, 3 + 5].item()
    assert lo == pytest.approx(samples.min().item()) and hi == pytest.approx(samples.max().item())
    x = rand(100, 1, lo, hi, seed=5)
    torch.testing.assert_close(model(x)[:, 0], poly_eval(poly, x[:, 0]), rtol=1e-11, atol=1e-11)
    x = rand(100, 1, -0.5, 1.3, seed=6)  # the end pieces continue outside
    torch.testing.assert_close(model(x)[:, 0], poly_eval(poly, x[:, 0]), rtol=1e-8, atol=1e-8)


@pytest.mark.parametrize("grid_eps", [0.0, 0.02, 0.5, 1.0])
def test_update_grid_knots_blend_quantiles_and_uniform(grid_eps):
    layer = KANLayer(1, 1, grid_size=4, spline_order=2, grid_eps=grid_eps, dtype=F64)
    samples = (torch.arange(101, dtype=F64) / 100).square().unsqueeze(1)  # quantile i/4 is (i/4)^2
    layer.update_grid(samples[torch.randperm(101, generator=torch.Generator().manual_seed(0))])
    quantiles = (torch.arange(5, dtype=F64) / 4).square()
    uniform = torch.arange(5, dtype=F64) / 4
    inner = grid_eps * uniform + (1 - grid_eps) * quantiles
    expected = torch.cat([inner[:1] - torch.tensor([0.5, 0.25], dtype=F64), inner,
                          inner[-1:] + torch.tensor([0.25, 0.5], dtype=F64)])  # k = 2 knots of (max-min)/G
    torch.testing.assert_close(layer.grid[0], expected, rtol=0, atol=1e-15)


def test_update_grid_keeps_function_and_parameter_identity():
    model = KAN([2, 5, 1], grid_size=10, dtype=F64, seed=6)
    with torch.no_grad():  # smooth edges: sin of the knot position as coefficients
        for layer in model.layers:
            t = layer.grid[:, 1:1 + layer.n_basis]
            layer.spline_weight.copy_(torch.sin(2 * t).unsqueeze(0).expand_as(layer.spline_weight))
    samples = rand(1000, 2, -0.8, 0.6, seed=7)
    before = model(samples)
    params = [id(p) for p in model.parameters()]
    model.update_grid(samples)
    assert [id(p) for p in model.parameters()] == params
    rel = ((model(samples) - before).norm() / before.norm()).item()
    assert rel < 1e-2, rel
    # each layer's knots now span its own inputs
    first = model.layers[0]
    torch.testing.assert_close(first.grid[:, 3], samples.min(0).values)
    torch.testing.assert_close(first.grid[:, 3 + 10], samples.max(0).values)


def test_update_grid_degenerate_inputs_stay_finite():
    model = KAN([2, 3, 1], grid_size=5, dtype=F64, seed=0, grid_eps=0.0)
    x = torch.zeros(50, 2, dtype=F64)
    x[:25, 1] = 0.5  # first input constant, second takes two values
    model.update_grid(x)
    for layer in model.layers:
        assert torch.isfinite(layer.grid).all() and (layer.grid.diff(dim=1) > 0).all()
        assert torch.isfinite(layer.spline_weight).all()
    assert torch.isfinite(model(rand(10, 2))).all()


# ----------------------------------------------------------------------------- training
def test_fits_bessel_j0_with_lbfgs():
    model = KAN([1, 1], grid_size=50, dtype=F64, seed=0)
    x = torch.linspace(-1, 1, 800, dtype=F64).unsqueeze(1)
    y = torch.as_tensor(scipy.special.j0(20 * x.numpy()))
    fit_lbfgs(model, x, y, lr=1, max_iter=300, history_size=50, tolerance_grad=1e-14, tolerance_change=1e-16)
    xt = rand(2000, 1, seed=9)
    mse = ((model(xt) - torch.as_tensor(scipy.special.j0(20 * xt.numpy()))) ** 2).mean().item()
    assert mse < 1e-5, mse


# ----------------------------------------------------------------------------- state
def test_state_dict_round_trip_bit_exact_also_after_grid_changes():
    model = randomize(KAN([2, 4, 1], grid_size=5, dtype=F64, seed=1))
    x = rand(50, 2, -1.5, 1.5)
    model.update_grid(rand(200, 2, -0.5, 0.8, seed=2))
    model.refine(7)
    state = model.state_dict()
    fresh = KAN([2, 4, 1], grid_size=7, dtype=F64, seed=99)
    fresh.load_state_dict(state)
    for key, value in state.items():
        assert torch.equal(fresh.state_dict()[key], value), key
    assert torch.equal(fresh(x), model(x))
    assert torch.equal(fresh.forward_jet(x).hess_diag, model.forward_jet(x).hess_diag)
    with pytest.raises(RuntimeError):
        KAN([2, 4, 1], grid_size=5, dtype=F64).load_state_dict(state)


def test_seed_reproducible_and_widths_not_mutated():
    widths = [2, 3, 1]
    a, b = KAN(widths, seed=4), KAN(widths, seed=4)
    assert widths == [2, 3, 1] and a.widths is not widths
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert not torch.equal(KAN(widths, seed=5).layers[0].base_weight, a.layers[0].base_weight)
    # spline coefficients start as small noise, scalers at one, biases at zero
    layer = a.layers[0]
    assert layer.spline_weight.abs().max() <= 0.5 * 0.1 / 5 + 1e-12
    assert torch.equal(layer.spline_scaler, torch.ones_like(layer.spline_scaler))
    assert torch.equal(layer.bias, torch.zeros_like(layer.bias))
    bound = math.sqrt(6 / (2 + 3))
    assert 0 < layer.base_weight.abs().max() <= bound


def test_n_params_and_repr():
    model = KAN([2, 10, 1], grid_size=5, spline_order=3)
    g, k = 5, 3
    assert model.n_params == 2 * 10 * (g + k + 2) + 10 + 10 * 1 * (g + k + 2) + 1
    assert KAN([2, 10, 1], base_activation="none", bias=False).n_params == 30 * (g + k + 1)
    text = repr(model)
    assert "grid_size=5" in text and "spline_order=3" in text and "uniform" in text


# ----------------------------------------------------------------------------- dtypes, range
def test_float32_matches_float64():
    m64 = randomize(KAN([2, 5, 1], grid_size=6, dtype=F64, seed=2))
    m32 = KAN([2, 5, 1], grid_size=6, dtype=torch.float32)
    m32.load_state_dict({k: v.float() for k, v in m64.state_dict().items()})
    x = rand(100, 2)
    torch.testing.assert_close(m32(x.float()).double(), m64(x), rtol=0, atol=1e-5)
    jet32 = m32.forward_jet(x.float())
    assert jet32.hess_diag.dtype == torch.float32
    torch.testing.assert_close(jet32.hess_diag.double(), m64.forward_jet(x).hess_diag, rtol=0, atol=1e-3)


def test_outside_grid_range_finite_with_nonzero_gradient():
    model = randomize(KAN([2, 3, 1], grid_size=5, dtype=F64, seed=3))
    x = torch.tensor([[-5.0, 50.0], [40.0, -3.0], [1e3, 0.0]], dtype=F64, requires_grad=True)
    u = model(x)
    (g,) = torch.autograd.grad(u.sum(), x)
    assert torch.isfinite(u).all() and torch.isfinite(g).all()
    assert (g.abs() > 0).all()
    spline_only = polynomial_kan(torch.linspace(-1.6, 1.6, 9, dtype=F64), 2, [0.0, 1.0, 1.0])
    z = torch.tensor([[-4.0], [6.0]], dtype=F64, requires_grad=True)
    (gz,) = torch.autograd.grad(spline_only(z).sum(), z)
    torch.testing.assert_close(gz[:, 0], 1 + 2 * z[:, 0].detach())  # end pieces continue: d(x + x^2)/dx


# ----------------------------------------------------------------------------- interpretability
def test_activation_curves_and_regularization():
    model = KAN([2, 3, 1], grid_size=4, base_activation="none", dtype=F64, seed=0)
    const = torch.tensor([[0.5, -1.0], [2.0, 0.0], [0.25, 1.0]], dtype=F64)  # phi_qp = const[q, p]
    with torch.no_grad():
        first = model.layers[0]
        first.spline_weight.copy_(const.unsqueeze(-1).expand_as(first.spline_weight))
        model.layers[1].spline_weight.fill_(0.1)
    curves = model.activation_curves(n=50)
    assert len(curves) == 2 and curves[0]["x"].shape == (50, 2) and curves[0]["phi"].shape == (50, 2, 3)
    torch.testing.assert_close(curves[0]["x"][[0, -1]], torch.tensor([[-1.0, -1.0], [1.0, 1.0]], dtype=F64))
    torch.testing.assert_close(curves[0]["phi"], const.t().expand(50, 2, 3))  # partition of unity
    x = rand(100, 2)
    reg = model.regularization_loss(x, lamb_l1=1.0, lamb_entropy=0.0)
    # layer 1: sum_qp |c_qp| = 4.75; layer 2: 3 edges of value 0.1 each
    torch.testing.assert_close(reg, torch.tensor(4.75 + 0.3, dtype=F64))
    p = const.abs().flatten() / 4.75
    entropy = -(p[p > 0] * p[p > 0].log()).sum() + math.log(3)
    torch.testing.assert_close(model.regularization_loss(x, 0.0, 1.0), entropy)
    reg.backward()
    assert model.layers[0].spline_weight.grad.abs().sum() > 0


# ----------------------------------------------------------------------------- errors
@pytest.mark.parametrize("kwargs,exc,match", [
    ({"widths": [2]}, ValueError, "at least 2 entries"),
    ({"widths": [2, 0, 1]}, ValueError, "positive"),
    ({"widths": "21"}, TypeError, "widths"),
    ({"widths": [2, 1], "grid_size": 0}, ValueError, "grid_size must be an integer >= 1, got 0"),
    ({"widths": [2, 1], "grid_size": 2.5}, TypeError, "grid_size"),
    ({"widths": [2, 1], "spline_order": 0}, ValueError, "spline_order must be an integer >= 1, got 0"),
    ({"widths": [2, 1], "grid_range": (1, -1)}, ValueError, "grid_range"),
    ({"widths": [2, 1], "grid_range": 3}, TypeError, "grid_range"),
    ({"widths": [2, 1], "base_activation": "relu"}, ValueError,
     r"base_activation must be one of \['identity', 'none', 'silu', 'tanh'\], got 'relu'"),
    ({"widths": [2, 1], "grid_eps": 1.5}, ValueError, "grid_eps"),
    ({"widths": [2, 1], "dtype": torch.int64}, TypeError, "dtype"),
])
def test_bad_constructor_arguments(kwargs, exc, match):
    with pytest.raises(exc, match=match):
        KAN(**kwargs)


def test_bad_inputs():
    model = KAN([2, 3, 1], dtype=F64)
    with pytest.raises(ValueError, match=r"\(N, 2\), got \(5, 3\)"):
        model(torch.zeros(5, 3, dtype=F64))
    with pytest.raises(TypeError, match="floating-point"):
        model(torch.zeros(5, 2, dtype=torch.int64))
    with pytest.raises(TypeError, match="float64 parameters but got a torch.float32 input"):
        model(torch.zeros(5, 2, dtype=torch.float32))
    with pytest.raises(ValueError, match="order must be 0, 1 or 2"):
        model.forward_jet(torch.zeros(5, 2, dtype=F64), order=3)
    with pytest.raises(ValueError, match="new_grid_size must be an integer >= 1, got 0"):
        model.refine(0)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        model.update_grid(torch.zeros(5, 1, dtype=F64))
    with pytest.raises(ValueError, match="jet.grad of shape"):
        model.layers[1].forward_jet(Jet(torch.zeros(4, 3, dtype=F64), torch.zeros(4, 2, 2, dtype=F64),
                                        torch.zeros(4, 2, 2, dtype=F64)))
    with pytest.raises(ValueError, match="lamb_l1"):
        model.regularization_loss(torch.zeros(4, 2, dtype=F64), lamb_l1=-1.0)


# ----------------------------------------------------------------------------- higher orders
def _nested(fn, z, order):
    """``d^order fn / dz^order`` elementwise by nested autograd (``fn`` elementwise)."""
    z = z.detach().requires_grad_(True)
    out = fn(z)
    for _ in range(order):
        (out,) = torch.autograd.grad(out.sum(), z, create_graph=True)
    return out.detach()


def test_fourth_derivative_by_nested_autograd():
    """Four nested autograd passes through a KAN: the spline part (a cubic) contributes nothing
    to the 4th derivative inside an interval, so it equals w_b * silu''''(x) exactly (closed
    form: silu'''' = z sigma'''' + 4 sigma''')."""
    model = randomize(KAN([1, 1], grid_size=6, dtype=F64, seed=2))
    x = rand(40, 1, -1.5, 1.5, seed=5).requires_grad_(True)
    out = model(x)
    for _ in range(4):
        (out,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    s = torch.sigmoid(x.detach())
    d3 = s * (1 - s) * (1 - 6 * s + 6 * s * s)
    d4 = s * (1 - s) * (1 - 2 * s) * (1 - 12 * s + 12 * s * s)
    wb = model.layers[0].base_weight.detach()[0, 0]
    torch.testing.assert_close(out.detach(), wb * (x.detach() * d4 + 4 * d3), rtol=1e-10, atol=1e-10)
    # and the parameter gradient of a loss on it exists and is finite (a 5th-order node)
    out.square().mean().backward()
    assert torch.isfinite(model.layers[0].base_weight.grad).all()
    assert model.layers[0].base_weight.grad.abs().sum() > 0


def test_third_derivative_matches_finite_differences_of_second():
    model = randomize(KAN([2, 4, 1], grid_size=5, dtype=F64, seed=4), scale=0.3)
    x0 = rand(30, 2, -0.9, 0.9, seed=8)

    def d2(x):
        x = x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad(g[:, 0].sum(), x, create_graph=True)
        return h[:, 0]

    x = x0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(model(x).sum(), x, create_graph=True)
    (h,) = torch.autograd.grad(g[:, 0].sum(), x, create_graph=True)
    (t,) = torch.autograd.grad(h[:, 0].sum(), x)
    eps = 1e-5
    shift = torch.tensor([eps, 0.0], dtype=F64)
    fd = (d2(x0 + shift) - d2(x0 - shift)) / (2 * eps)
    # piecewise cubic splines: points within eps of a knot of some hidden edge are excluded
    ok = (fd - t[:, 0]).abs() < 1e-3
    assert ok.float().mean() > 0.8
    torch.testing.assert_close(t[ok, 0], fd[ok], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("activation", ["silu", "tanh", "none"])
def test_wide_layer_jet_every_base_activation(activation):
    """The row-product jet (base weights folded into the table as one more row per block) for
    each base branch, against nested autograd, values and parameter gradients."""
    model = randomize(KAN([2, 24, 24, 1], grid_size=6, base_activation=activation, dtype=F64, seed=9), scale=0.2)
    model.update_grid(rand(300, 2, -0.9, 0.9, seed=1))
    x = rand(25, 2, -1.1, 1.1, seed=2)
    u, grad, hess = autograd_jet(model, x)
    with kernel_calls() as calls:
        jet = model.forward_jet(x)
    assert calls["row_jet/compiled"] + calls["row_jet/torch"] == 1  # the 24x24 layer is a wide one
    scale = max(1.0, hess.abs().max().item())
    torch.testing.assert_close(jet.value, u, rtol=0, atol=1e-12 * max(1.0, u.abs().max().item()))
    torch.testing.assert_close(jet.grad, grad, rtol=0, atol=1e-11 * scale)
    torch.testing.assert_close(jet.hess_diag, hess, rtol=0, atol=1e-10 * scale)
    kw = {"allow_unused": True, "materialize_grads": True}  # the last bias has no Hessian
    ga = torch.autograd.grad(hess.square().mean(), list(model.parameters()), **kw)
    gf = torch.autograd.grad(jet.hess_diag.square().mean(), list(model.parameters()), **kw)
    gscale = max(g.abs().max().item() for g in ga)
    for a, b in zip(ga, gf):
        torch.testing.assert_close(b, a, rtol=0, atol=1e-10 * gscale)


def test_refine_is_bit_reproducible_wherever_the_arrays_sit():
    """The dense least-squares refit gives the same bits for copies at different addresses
    (LAPACK's gelsy, torch's default CPU driver, does not: 16 distinct results in 40 tries)."""
    base = randomize(KAN([2, 6, 1], grid_size=5, dtype=F64, seed=3))
    base.update_grid(rand(300, 2, -0.9, 0.9, seed=4))
    results = set()
    keep = []
    for i in range(12):
        keep.append(torch.empty(3 * i + 1, dtype=F64))  # different alignment for what follows
        model = KAN([2, 6, 1], grid_size=5, dtype=F64)
        model.load_state_dict(base.state_dict())
        model.refine(11)
        results.add(b"".join(p.detach().numpy().tobytes() for p in model.parameters()))
    assert len(results) == 1


def test_float32_model_converted_to_float64_keeps_an_exactly_uniform_grid():
    # the trainer builds models in the default dtype and converts them: a uniform float32 grid
    # becomes the exact float64 uniform grid (the one the float32 forward pass already used),
    # not float32-rounded knots that would count as non-uniform; adapted grids keep their knots
    for lo, hi in ((-1.0, 1.0), (-0.3, 0.7)):
        m = KAN([2, 5, 1], grid_size=7, grid_range=(lo, hi), seed=0)
        m32 = [layer.grid.clone() for layer in m.layers]
        m.double()
        for layer, g32 in zip(m.layers, m32):
            assert layer.grid.dtype == torch.float64 and layer.grid_is_uniform
            assert (layer.grid - g32.double()).abs().max() <= 4 * torch.finfo(torch.float32).eps * (hi - lo)
            ref = uniform_knots(float(g32[0, 3]), float(g32[0, 10]), 7, 3, dtype=torch.float64)
            assert torch.equal(layer.grid[0], ref)
    ref = KAN([2, 5, 1], grid_size=7, seed=0, dtype=torch.float64)
    conv = KAN([2, 5, 1], grid_size=7, seed=0).double()
    assert all(torch.equal(a.grid, b.grid) for a, b in zip(conv.layers, ref.layers))
    adapted = KAN([2, 5, 1], grid_size=7, seed=0)
    adapted.update_grid(torch.rand(300, 2) ** 3)
    before = [layer.grid.clone() for layer in adapted.layers]
    adapted.double()
    assert all(torch.equal(layer.grid, b.double()) for layer, b in zip(adapted.layers, before))
    assert not adapted.layers[0].grid_is_uniform


def test_an_empty_batch_gives_empty_outputs_on_every_path(path):
    model = KAN([2, 33, 20, 1], grid_size=5, dtype=F64, seed=0)  # narrow, wide and narrow layers
    x = torch.zeros(0, 2, dtype=F64, requires_grad=True)
    u = model(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    assert u.shape == (0, 1) and g.shape == (0, 2)
    for order in (0, 1, 2):
        jet = model.forward_jet(x, order=order)
        assert jet.value.shape == (0, 1)
    (jet.value.sum() + jet.hess_diag.sum()).backward()
    assert all(p.grad is None or torch.count_nonzero(p.grad) == 0 for p in model.parameters())
