"""ChebyKAN: Chebyshev recurrences, edge functions, forward jets against nested autograd,
parameter counts, initialisation, serialisation and argument checks."""
import math

import numpy as np
import pytest
import torch
from numpy.polynomial import chebyshev as npcheb

from tests.helpers import (assert_model_gradchecks, assert_close, assert_jet_matches_autograd, assert_residual_param_grads_match, autograd_jet,
                     fit_lbfgs)
from kanpde.models import ChebyKAN, Jet
from kanpde.models.chebykan import ChebyKANLayer, chebyshev_basis

F64 = torch.float64


# ---------------------------------------------------------------- Chebyshev basis

def test_chebyshev_basis_matches_closed_forms():
    s = torch.linspace(-1, 1, 101, dtype=F64)
    T, dT, d2T = chebyshev_basis(s, 4, order=2)
    assert T.shape == dT.shape == d2T.shape == (101, 5)
    assert_close(T[:, 0], torch.ones_like(s))
    assert_close(T[:, 1], s)
    assert_close(T[:, 2], 2 * s**2 - 1)
    assert_close(T[:, 3], 4 * s**3 - 3 * s)
    assert_close(T[:, 4], 8 * s**4 - 8 * s**2 + 1)
    assert_close(dT[:, 0], torch.zeros_like(s))
    assert_close(dT[:, 2], 4 * s)
    assert_close(dT[:, 3], 12 * s**2 - 3)
    assert_close(dT[:, 4], 32 * s**3 - 16 * s)
    assert_close(d2T[:, 1], torch.zeros_like(s))
    assert_close(d2T[:, 3], 24 * s)
    assert_close(d2T[:, 4], 96 * s**2 - 16)


def test_chebyshev_derivatives_finite_at_endpoints():
    # T_n'(+-1) = (+-1)^(n+1) n^2 and T_n''(1) = n^2 (n^2 - 1) / 3: finite, unlike arccos formulas.
    s = torch.tensor([-1.0, 1.0], dtype=F64)
    _, dT, d2T = chebyshev_basis(s, 10, order=2)
    n = torch.arange(11, dtype=F64)
    assert_close(dT[1], n**2)
    assert_close(dT[0], (-1.0) ** (n + 1) * n**2)
    assert_close(d2T[1], n**2 * (n**2 - 1) / 3)


@pytest.mark.parametrize("degree", [0, 1, 2, 7, 13])
def test_chebyshev_basis_matches_numpy(degree):
    s = np.linspace(-1, 1, 57)
    T, dT, d2T = chebyshev_basis(torch.tensor(s), degree, order=2)
    for n in range(degree + 1):
        c = np.zeros(n + 1)
        c[n] = 1.0
        np.testing.assert_allclose(T[:, n].numpy(), npcheb.chebval(s, c), rtol=0, atol=1e-12)
        np.testing.assert_allclose(dT[:, n].numpy(), npcheb.chebval(s, npcheb.chebder(c)), rtol=0, atol=1e-10)
        np.testing.assert_allclose(d2T[:, n].numpy(), npcheb.chebval(s, npcheb.chebder(c, 2)),
                                   rtol=0, atol=1e-9)


def test_chebyshev_basis_orders_and_shapes():
    s = torch.rand(3, 4, dtype=F64) * 2 - 1
    assert len(chebyshev_basis(s, 5)) == 1
    assert len(chebyshev_basis(s, 5, order=1)) == 2
    T0, = chebyshev_basis(s, 5)
    T2, _, _ = chebyshev_basis(s, 5, order=2)
    assert T0.shape == (3, 4, 6)
    assert torch.equal(T0, T2)


def test_chebyshev_basis_autograd_derivatives():
    s = torch.linspace(-1, 1, 9, dtype=F64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda s: chebyshev_basis(s, 6, order=2), (s,))
    assert torch.autograd.gradgradcheck(lambda s: chebyshev_basis(s, 6, order=1), (s,))


@pytest.mark.parametrize("degree, exc",
                         [(-1, ValueError), (2.5, TypeError), (True, TypeError), ("3", TypeError)])
def test_chebyshev_basis_rejects_bad_degree(degree, exc):
    with pytest.raises(exc, match=f"degree.*{degree!r}"):
        chebyshev_basis(torch.zeros(3, dtype=F64), degree)


def test_chebyshev_basis_rejects_bad_order_and_input():
    with pytest.raises(ValueError, match="order.*3"):
        chebyshev_basis(torch.zeros(3), 4, order=3)
    with pytest.raises(TypeError, match="int64"):
        chebyshev_basis(torch.zeros(3, dtype=torch.int64), 4)


# ---------------------------------------------------------------- layer and model values

def test_edge_function_is_chebyshev_series_of_tanh():
    torch.manual_seed(0)
    model = ChebyKAN([1, 1], degree=6, dtype=F64)
    with torch.no_grad():
        model.layers[0].bias.fill_(0.3)
    x = torch.linspace(-4, 4, 41, dtype=F64)[:, None]
    c = np.concatenate([[0.3], model.layers[0].coef.detach().numpy()[0, 0]])
    expected = npcheb.chebval(np.tanh(x.numpy()), c)
    np.testing.assert_allclose(model(x).detach().numpy(), expected, rtol=0, atol=1e-13)


def test_layer_sums_edges_at_nodes():
    torch.manual_seed(1)
    layer = ChebyKANLayer(3, 2, degree=4, dtype=F64)
    with torch.no_grad():
        layer.bias.copy_(torch.tensor([0.5, -1.0], dtype=F64))
    h = torch.randn(7, 3, dtype=F64)
    T, = chebyshev_basis(torch.tanh(h), 4)
    expected = torch.einsum("npk,pqk->nq", T[..., 1:], layer.coef) + layer.bias
    assert_close(layer(h), expected)
    edges = layer.edge_jets(h, order=0)[:, 0]  # (N, in, out)
    assert_close(edges.sum(1) + layer.bias, expected)


def test_edge_jets_derivatives_match_autograd():
    torch.manual_seed(2)
    layer = ChebyKANLayer(2, 3, degree=5, dtype=F64)
    h = (3 * torch.randn(6, 2, dtype=F64)).requires_grad_(True)
    E = layer.edge_jets(h, order=2)
    assert E.shape == (6, 3, 2, 3)
    for p in range(2):
        for q in range(3):
            (d1,) = torch.autograd.grad(E[:, 0, p, q].sum(), h, create_graph=True, retain_graph=True)
            (d2,) = torch.autograd.grad(d1[:, p].sum(), h, retain_graph=True)
            assert_close(E[:, 1, p, q], d1[:, p])
            assert_close(E[:, 2, p, q], d2[:, p])


def test_activation_curves_shapes_and_values():
    torch.manual_seed(3)
    model = ChebyKAN([2, 3, 1], degree=4, dtype=F64)
    curves = model.activation_curves(n=11)
    assert [c["phi"].shape for c in curves] == [(11, 2, 3), (11, 3, 1)]
    assert [c["x"].shape for c in curves] == [(11, 2), (11, 3)]
    layer = model.layers[1]
    x = curves[1]["x"]
    T, = chebyshev_basis(torch.tanh(x), 4)
    assert_close(curves[1]["phi"][:, 2, 0], T[:, 2, 1:] @ layer.coef[2, 0])


# ---------------------------------------------------------------- forward jets

CASES = [
    ([1, 1], 1),
    ([2, 3, 1], 3),
    ([3, 4, 5, 2], 3),   # layer 2 contracts by features, layer 3 by edges
    ([2, 12, 12, 1], 8),  # wide hidden layer: feature path
    ([3, 2, 2], 5),
]


@pytest.mark.parametrize("widths, degree", CASES)
def test_forward_jet_matches_nested_autograd(widths, degree):
    torch.manual_seed(4)
    model = ChebyKAN(widths, degree=degree, dtype=F64)
    x = 1.5 * torch.randn(13, widths[0], dtype=F64)
    assert_jet_matches_autograd(model, x)


@pytest.mark.parametrize("path", ["_jet_by_edges", "_jet_by_features"])
def test_both_contraction_orders_are_exact(path):
    torch.manual_seed(5)
    first = ChebyKANLayer(3, 4, degree=6, dtype=F64)
    second = ChebyKANLayer(4, 3, degree=6, dtype=F64)
    x = torch.randn(9, 3, dtype=F64)
    inner = first.forward_jet(Jet.seed(x))
    jet = getattr(second, path)(inner)

    def model(z):
        return second(first(z))

    u, g, h = autograd_jet(model, x)
    assert_close(jet.value, u)
    assert_close(jet.grad, g)
    assert_close(jet.hess_diag, h)


def test_forward_jet_large_inputs():
    # tanh saturates: derivatives vanish smoothly instead of overflowing
    torch.manual_seed(6)
    model = ChebyKAN([3, 5, 1], degree=8, dtype=F64)
    x = torch.cat([40 * torch.randn(10, 3, dtype=F64), torch.tensor([[1e3, -1e4, 5.0]], dtype=F64)])
    u, g, h = autograd_jet(model, x)
    jet = model.forward_jet(x)
    for a in (jet.value, jet.grad, jet.hess_diag):
        assert torch.isfinite(a).all()
    assert_close(jet.value, u)
    assert_close(jet.grad, g)
    assert_close(jet.hess_diag, h)
    assert jet.grad[-1, 0, 0] == 0 and jet.grad[-1, 0, 1] == 0


def test_forward_jet_lower_orders():
    torch.manual_seed(7)
    model = ChebyKAN([2, 4, 2], degree=4, dtype=F64)
    x = torch.randn(8, 2, dtype=F64)
    u, g, _ = autograd_jet(model, x)
    j0 = model.forward_jet(x, order=0)
    j1 = model.forward_jet(x, order=1)
    assert j0.grad is None and j0.hess_diag is None and j1.hess_diag is None
    assert_close(j0.value, u)
    assert_close(j1.grad, g)
    generic = Jet.seed(x, order=1)
    for layer in model.layers:
        generic = layer.forward_jet(generic)
    assert_close(generic.grad, g)
    with pytest.raises(ValueError, match="order.*3"):
        model.forward_jet(x, order=3)


@pytest.mark.parametrize("widths", [[2, 5, 1], [3, 4, 3, 2]])
def test_residual_loss_parameter_gradients_match_autograd(widths):
    torch.manual_seed(8)
    model = ChebyKAN(widths, degree=5, dtype=F64)
    x = torch.rand(20, widths[0], dtype=F64) * 2 - 1
    f = torch.sin(3 * x[:, :1]) * torch.ones(1, widths[-1], dtype=F64)
    assert_residual_param_grads_match(model, x, f)


def test_gradcheck_forward_and_jet_inputs_and_parameters():
    torch.manual_seed(9)
    model = ChebyKAN([2, 3, 2], degree=3, dtype=F64)
    assert_model_gradchecks(model, torch.randn(4, 2, dtype=F64, requires_grad=True))


def test_gradgradcheck_layer_jet():
    torch.manual_seed(10)
    layer = ChebyKANLayer(2, 2, degree=3, dtype=F64)
    x = torch.randn(3, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: layer.forward_jet(Jet.seed(x)).hess_diag, (x,))


def test_float32_jet_agrees_with_float64():
    torch.manual_seed(11)
    m64 = ChebyKAN([2, 6, 1], degree=6, dtype=F64)
    m32 = ChebyKAN([2, 6, 1], degree=6, dtype=torch.float32)
    m32.load_state_dict({k: v.float() for k, v in m64.state_dict().items()})
    x = torch.rand(50, 2, dtype=F64) * 2 - 1
    j64, j32 = m64.forward_jet(x), m32.forward_jet(x.float())
    assert j32.hess_diag.dtype == torch.float32
    torch.testing.assert_close(j32.hess_diag.double(), j64.hess_diag, rtol=1e-4, atol=1e-4)


# ---------------------------------------------------------------- training, parameters, state

def test_fits_sin_pi_x():
    torch.manual_seed(12)
    model = ChebyKAN([1, 1], degree=8, dtype=F64)
    x = torch.linspace(-1, 1, 200, dtype=F64)[:, None]
    y = torch.sin(math.pi * x)
    assert fit_lbfgs(model, x, y, max_iter=300, tolerance_grad=1e-12, tolerance_change=1e-15) < 1e-4


@pytest.mark.parametrize("widths, degree, bias", [([2, 10, 1], 8, True), ([2, 10, 1], 8, False),
                                                  ([3, 4, 5, 2], 3, True), ([1, 1], 1, False)])
def test_n_params_formula(widths, degree, bias):
    model = ChebyKAN(widths, degree=degree, bias=bias)
    pairs = list(zip(widths[:-1], widths[1:]))
    expected = sum(a * b * degree for a, b in pairs) + (sum(b for _, b in pairs) if bias else 0)
    assert model.n_params == expected
    if widths == [2, 10, 1] and bias:
        assert model.n_params == 251


def test_initialisation_spectral_decay():
    torch.manual_seed(13)
    layer = ChebyKANLayer(300, 200, degree=4, dtype=F64)
    n = torch.arange(1, 5, dtype=F64)
    expected_var = n**-4 / (300 * (n**-4).sum())
    var = layer.coef.detach().pow(2).mean(dim=(0, 1))  # 60000 samples per degree
    torch.testing.assert_close(var, expected_var, rtol=0.03, atol=0)
    assert abs(layer.coef.detach().mean().item()) < 1e-3
    assert torch.count_nonzero(layer.bias) == 0
    # total coefficient energy per output is 1, so outputs start O(1)
    torch.testing.assert_close(var.sum() * 300, torch.tensor(1.0, dtype=F64), rtol=0.03, atol=0)


def test_reset_parameters_redraws():
    torch.manual_seed(14)
    model = ChebyKAN([2, 3, 1], degree=4)
    before = [p.detach().clone() for p in model.parameters()]
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(7.0)
    model.reset_parameters()
    assert not torch.equal(model.layers[0].coef, before[0])
    assert torch.count_nonzero(model.layers[0].bias) == 0
    assert model.layers[0].coef.abs().max() < 7.0


def test_state_dict_round_trip_is_bit_exact():
    torch.manual_seed(15)
    a = ChebyKAN([2, 5, 1], degree=6, dtype=F64)
    torch.manual_seed(16)
    b = ChebyKAN([2, 5, 1], degree=6, dtype=F64)
    x = torch.randn(10, 2, dtype=F64)
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))
    assert torch.equal(a.forward_jet(x).hess_diag, b.forward_jet(x).hess_diag)


def test_constructor_style():
    widths = (2, 4, 1)
    model = ChebyKAN(widths, degree=3, dtype=F64)
    assert model.widths == [2, 4, 1] and widths == (2, 4, 1)
    assert model.in_features == 2 and model.out_features == 1
    assert all(p.dtype == F64 for p in model.parameters())
    widths_list = [2, 4, 1]
    model = ChebyKAN(widths_list)
    model.widths.append(9)
    assert widths_list == [2, 4, 1]
    assert "widths=[2, 4, 1, 9], degree=8, bias=True" in repr(model)
    assert "in_features=2, out_features=4, degree=8" in repr(model.layers[0])
    assert next(ChebyKAN([1, 1]).parameters()).dtype == torch.get_default_dtype()


# ---------------------------------------------------------------- argument checks

@pytest.mark.parametrize("widths, exc, text", [
    ([2], ValueError, r"\[2\]"),
    ([2, 0, 1], ValueError, r"\[2, 0, 1\]"),
    ([2, 1.5, 1], TypeError, "1.5"),
    ("21", TypeError, "'21'"),
])
def test_rejects_bad_widths(widths, exc, text):
    with pytest.raises(exc, match=f"widths.*{text}"):
        ChebyKAN(widths)


@pytest.mark.parametrize("degree, exc",
                         [(0, ValueError), (-2, ValueError), (2.0, TypeError), (None, TypeError)])
def test_rejects_bad_degree(degree, exc):
    with pytest.raises(exc, match=f"degree must be an integer >= 1, got {degree!r}"):
        ChebyKAN([2, 1], degree=degree)


def test_rejects_bad_dtype():
    with pytest.raises(TypeError, match="dtype.*torch.int32"):
        ChebyKAN([2, 1], dtype=torch.int32)


def test_rejects_bad_inputs():
    model = ChebyKAN([3, 2, 1], dtype=F64)
    with pytest.raises(ValueError, match=r"\(N, 3\).*\(5, 2\)"):
        model(torch.zeros(5, 2, dtype=F64))
    with pytest.raises(ValueError, match=r"\(N, 3\).*\(5, 2\)"):
        model.forward_jet(torch.zeros(5, 2, dtype=F64))
    with pytest.raises(TypeError, match="int64"):
        model(torch.zeros(5, 3, dtype=torch.int64))
    with pytest.raises(TypeError, match="float32"):
        model.forward_jet(torch.zeros(5, 3, dtype=torch.float32))


def test_empty_batch_gives_empty_outputs():
    model = ChebyKAN([2, 8, 1], degree=4, dtype=F64)
    x = torch.zeros(0, 2, dtype=F64, requires_grad=True)
    u = model(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    jet = model.forward_jet(x, order=2)
    assert u.shape == (0, 1) and g.shape == (0, 2) and jet.hess_diag.shape == (0, 1, 2)
