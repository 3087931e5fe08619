"""MLP: forward jets against nested autograd, Glorot initialisation, parameter counts, fitting,
serialisation and argument checks (its activations: tests/models/test_activations.py)."""
import math

import pytest
import torch

from kanpde.models import MLP, Jet
from kanpde.models.mlp import MLP_ACTIVATIONS, DenseLayer
from tests.helpers import (assert_model_gradchecks, assert_close, assert_jet_matches_autograd, assert_residual_param_grads_match,
                           autograd_jet, fit_lbfgs)

F64 = torch.float64
NAMES = list(MLP_ACTIVATIONS)


# ---------------------------------------------------------------- values

def test_forward_is_dense_stack_without_final_activation():
    torch.manual_seed(0)
    model = MLP([2, 3, 4, 1], activation="sin", dtype=F64)
    x = torch.randn(6, 2, dtype=F64)
    h = x
    for i, layer in enumerate(model.layers):
        h = h @ layer.weight.T + layer.bias
        if i < 2:
            h = torch.sin(h)
    assert_close(model(x), h)
    assert [layer.activation for layer in model.layers] == ["sin", "sin", None]


def test_single_layer_is_affine():
    torch.manual_seed(1)
    model = MLP([3, 2], dtype=F64)
    x = torch.randn(5, 3, dtype=F64)
    assert_close(model(x), x @ model.layers[0].weight.T + model.layers[0].bias)
    jet = model.forward_jet(x)
    assert_close(jet.grad, model.layers[0].weight.expand(5, 2, 3))
    assert torch.count_nonzero(jet.hess_diag) == 0


# ---------------------------------------------------------------- forward jets

@pytest.mark.parametrize("activation", NAMES)
@pytest.mark.parametrize("widths", [[1, 1], [3, 1], [2, 5, 1], [3, 6, 4, 2], [1, 8, 8, 8, 1]])
def test_forward_jet_matches_nested_autograd(widths, activation):
    torch.manual_seed(2)
    model = MLP(widths, activation=activation, dtype=F64)
    x = 1.5 * torch.randn(11, widths[0], dtype=F64)
    assert_jet_matches_autograd(model, x)


def test_forward_jet_lower_orders():
    torch.manual_seed(3)
    model = MLP([2, 5, 2], activation="gelu", dtype=F64)
    x = torch.randn(7, 2, dtype=F64)
    u, g, _ = autograd_jet(model, x)
    j0, j1 = model.forward_jet(x, order=0), model.forward_jet(x, order=1)
    assert j0.grad is None and j0.hess_diag is None and j1.hess_diag is None
    assert_close(j0.value, u)
    assert_close(j1.grad, g)
    with pytest.raises(ValueError, match="order.*5"):
        model.forward_jet(x, order=5)


@pytest.mark.parametrize("activation", ["tanh", "silu"])
def test_residual_loss_parameter_gradients_match_autograd(activation):
    torch.manual_seed(4)
    model = MLP([3, 6, 5, 2], activation=activation, dtype=F64)
    x = torch.rand(25, 3, dtype=F64) * 2 - 1
    f = torch.cos(2 * x[:, :1]) * torch.ones(1, 2, dtype=F64)
    assert_residual_param_grads_match(model, x, f)


@pytest.mark.parametrize("activation", NAMES)
def test_gradcheck_inputs_and_parameters(activation):
    torch.manual_seed(5)
    model = MLP([2, 3, 2], activation=activation, dtype=F64)
    assert_model_gradchecks(model, torch.randn(4, 2, dtype=F64, requires_grad=True))


def test_gradgradcheck_layer_jet():
    torch.manual_seed(6)
    layer = DenseLayer(2, 3, activation="tanh", dtype=F64)
    x = torch.randn(3, 2, dtype=F64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x: layer.forward_jet(Jet.seed(x)).hess_diag, (x,))


def test_float32_jet_agrees_with_float64():
    torch.manual_seed(7)
    m64 = MLP([2, 16, 16, 1], dtype=F64)
    m32 = MLP([2, 16, 16, 1], dtype=torch.float32)
    m32.load_state_dict({k: v.float() for k, v in m64.state_dict().items()})
    x = torch.rand(40, 2, dtype=F64) * 2 - 1
    j64, j32 = m64.forward_jet(x), m32.forward_jet(x.float())
    assert j32.hess_diag.dtype == torch.float32
    torch.testing.assert_close(j32.hess_diag.double(), j64.hess_diag, rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------- training, init, parameters, state

def test_fits_sin_pi_x():
    torch.manual_seed(8)
    model = MLP([1, 16, 1], dtype=F64)
    x = torch.linspace(-1, 1, 200, dtype=F64)[:, None]
    y = torch.sin(math.pi * x)
    assert fit_lbfgs(model, x, y, max_iter=400, history_size=50, tolerance_grad=1e-12,
                     tolerance_change=1e-15) < 1e-4


def test_glorot_initialisation_statistics():
    torch.manual_seed(9)
    layer = DenseLayer(400, 300, activation="tanh", dtype=F64)
    w = layer.weight.detach()
    # 120000 samples: the variance estimate has relative standard deviation ~0.4 %
    assert abs(w.var().item() / (2 / (400 + 300)) - 1) < 0.03
    assert abs(w.mean().item()) < 5 * math.sqrt(2 / 700 / w.numel())
    # Gaussian, not uniform: the kurtosis of a normal sample is 3 (uniform: 1.8)
    assert abs((w**4).mean().item() / w.var().item() ** 2 - 3) < 0.1
    assert torch.count_nonzero(layer.bias) == 0


@pytest.mark.parametrize("widths, bias", [([2, 32, 32, 1], True), ([2, 32, 32, 1], False),
                                          ([3, 1], True), ([1, 5, 7, 2], True)])
def test_n_params_formula(widths, bias):
    model = MLP(widths, bias=bias)
    pairs = list(zip(widths[:-1], widths[1:]))
    assert model.n_params == sum(a * b + (b if bias else 0) for a, b in pairs)
    if widths == [2, 32, 32, 1] and bias:
        assert model.n_params == 96 + 1056 + 33


def test_reset_parameters_redraws():
    torch.manual_seed(10)
    model = MLP([2, 8, 1])
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(5.0)
    model.reset_parameters()
    assert torch.count_nonzero(model.layers[0].bias) == 0
    assert model.layers[0].weight.abs().max() < 5.0


def test_state_dict_round_trip_is_bit_exact():
    torch.manual_seed(11)
    a = MLP([2, 8, 8, 1], activation="silu", dtype=F64)
    torch.manual_seed(12)
    b = MLP([2, 8, 8, 1], activation="silu", dtype=F64)
    x = torch.randn(10, 2, dtype=F64)
    assert not torch.equal(a(x), b(x))
    b.load_state_dict(a.state_dict())
    assert torch.equal(a(x), b(x))
    assert torch.equal(a.forward_jet(x).hess_diag, b.forward_jet(x).hess_diag)


def test_constructor_style():
    widths = (2, 4, 1)
    model = MLP(widths, activation="GELU", dtype=F64)
    assert model.widths == [2, 4, 1] and model.activation == "gelu"
    assert all(p.dtype == F64 for p in model.parameters())
    widths_list = [2, 4, 1]
    model = MLP(widths_list)
    model.widths.append(3)
    assert widths_list == [2, 4, 1]
    assert "widths=[2, 4, 1, 3], activation='tanh', bias=True" in repr(model)
    assert "in_features=4, out_features=1, activation=None" in repr(model.layers[1])
    assert MLP([2, 3, 1], bias=False).layers[0].bias is None


# ---------------------------------------------------------------- argument checks

def test_rejects_unknown_activation():
    allowed = r"\['gelu', 'sigmoid', 'silu', 'sin', 'tanh'\]"
    with pytest.raises(ValueError, match=f"activation must be one of {allowed}, got 'relu'"):
        MLP([2, 1], activation="relu")
    with pytest.raises(TypeError, match="activation.*<built-in method tanh"):
        MLP([2, 1], activation=torch.tanh)
    with pytest.raises(ValueError, match="'softplus'"):
        DenseLayer(2, 1, activation="softplus")


@pytest.mark.parametrize("widths, exc, text", [
    ([3], ValueError, r"\[3\]"),
    ([2, -1, 1], ValueError, r"\[2, -1, 1\]"),
    ([2, "8", 1], TypeError, "'8'"),
    (5, TypeError, "5"),
])
def test_rejects_bad_widths(widths, exc, text):
    with pytest.raises(exc, match=f"widths.*{text}"):
        MLP(widths)


def test_rejects_bad_layer_sizes_and_dtype():
    with pytest.raises(ValueError, match="in_features.*0"):
        DenseLayer(0, 3)
    with pytest.raises(TypeError, match="out_features.*2.5"):
        DenseLayer(2, 2.5)
    with pytest.raises(TypeError, match="dtype.*torch.int64"):
        MLP([2, 1], dtype=torch.int64)


def test_rejects_bad_inputs():
    model = MLP([3, 4, 1], dtype=F64)
    with pytest.raises(ValueError, match=r"\(N, 3\).*\(5, 2\)"):
        model(torch.zeros(5, 2, dtype=F64))
    with pytest.raises(ValueError, match=r"\(N, 3\).*\(5,\)"):
        model.forward_jet(torch.zeros(5, dtype=F64))
    with pytest.raises(TypeError, match="int32"):
        model.forward_jet(torch.zeros(5, 3, dtype=torch.int32))
    with pytest.raises(TypeError, match="float32"):
        model(torch.zeros(5, 3, dtype=torch.float32))
