"""Input-feature wrappers (FourierFeatures, PeriodicEmbedding) around MLP, KAN and ChebyKAN:
forward jets and parameter gradients against nested autograd, exact periodicity, the
features against their formulas, the distribution and reproducibility of B, the grid and
optional methods passed through (and only when the inner model has them), training, argument
checks; and Model.propagate_jet on jets that are not the identity."""
import copy
import io
import math

import pytest
import torch
from torch import nn

from kanpde import operators as op
from kanpde.models import (KAN, MLP, ChebyKAN, FourierFeatures, GridAdaptive, Jet, Model, PeriodicEmbedding,
                           feature_width, prepare_kernels, with_features)
from tests.helpers import assert_close, assert_jet_matches_autograd, assert_residual_param_grads_match, autograd_jet

F64 = torch.float64

#: inner models by name, given their input width; "kan-rows" is wide enough for the row layout
INNERS = {
    "mlp": lambda f: MLP([f, 6, 2], activation="tanh", dtype=F64),
    "kan": lambda f: KAN([f, 3, 1], grid_size=4, dtype=F64, seed=1),
    "kan-rows": lambda f: KAN([f, 24, 1], grid_size=3, dtype=F64, seed=2),
    "chebykan": lambda f: ChebyKAN([f, 4, 2], degree=4, dtype=F64),
}

#: wrapper settings by name: (kind, in_features, keyword arguments)
WRAPPERS = {
    "fourier": ("fourier", 2, {"n_frequencies": 4, "scale": 0.7, "seed": 3}),
    "fourier+x": ("fourier", 2, {"n_frequencies": 4, "scale": 0.7, "keep_input": True}),
    "periodic": ("periodic", 3, {"periods": {0: 2.0, -1: 0.5}, "n_harmonics": 2}),
}


def wrapped(wrapper: str, inner: str):
    kind, d, kw = WRAPPERS[wrapper]
    return with_features(INNERS[inner](feature_width(kind, d, **kw)), kind, d, **kw)


def points(n, d, seed=0, lo=-1.0, hi=1.0):
    g = torch.Generator().manual_seed(seed)
    return lo + (hi - lo) * torch.rand(n, d, generator=g, dtype=F64)


# ---------------------------------------------------------------- jets against nested autograd

@pytest.mark.parametrize("inner", list(INNERS))
@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_forward_jet_matches_nested_autograd(wrapper, inner):
    torch.manual_seed(0)
    model = wrapped(wrapper, inner)
    x = points(13, model.in_features, seed=1)
    assert_jet_matches_autograd(model, x)  # also the generic chain through model.layers


@pytest.mark.parametrize("inner", list(INNERS))
@pytest.mark.parametrize("wrapper", list(WRAPPERS))
def test_parameter_gradients_of_a_residual_loss_match_autograd(wrapper, inner):
    torch.manual_seed(1)
    model = wrapped(wrapper, inner)
    x = points(11, model.in_features, seed=2)
    f = torch.cos(3 * x[:, :1]) * torch.ones(1, model.out_features, dtype=F64)
    assert_residual_param_grads_match(model, x, f)


@pytest.mark.parametrize("inner", ["mlp", "kan", "chebykan"])
def test_lower_orders(inner):
    torch.manual_seed(2)
    model = wrapped("periodic", inner)
    x = points(7, 3, seed=3)
    u, g, _ = autograd_jet(model, x)
    j0, j1 = model.forward_jet(x, order=0), model.forward_jet(x, order=1)
    assert j0.grad is None and j0.hess_diag is None and j1.hess_diag is None
    assert_close(j0.value, u)
    assert_close(j1.value, u)
    assert_close(j1.grad, g)


@pytest.mark.parametrize("inner", ["mlp", "kan", "chebykan"])
def test_nested_wrappers_propagate_jets_that_are_not_the_identity(inner):
    # the outer embedding hands a curved jet to the inner wrapper's propagate_jet
    torch.manual_seed(3)
    fourier_width = feature_width("fourier", 3, n_frequencies=3, keep_input=True)
    middle = FourierFeatures(INNERS[inner](fourier_width), 3, n_frequencies=3, scale=0.5, keep_input=True)
    model = PeriodicEmbedding(middle, 2, {1: 1.5})
    x = points(9, 2, seed=4)
    assert_jet_matches_autograd(model, x)
    assert_residual_param_grads_match(model, x, torch.ones(9, model.out_features, dtype=F64))


def curved_jet(x):
    """h(x) = (x0 x1, sin x0, x1^2) with its jet in closed form (independent of any model)."""
    x0, x1 = x[:, 0], x[:, 1]
    z = torch.zeros_like(x0)
    value = torch.stack([x0 * x1, torch.sin(x0), x1 ** 2], 1)
    grad = torch.stack([torch.stack([x1, x0], 1), torch.stack([torch.cos(x0), z], 1),
                        torch.stack([z, 2 * x1], 1)], 1)
    hess = torch.stack([torch.stack([z, z], 1), torch.stack([-torch.sin(x0), z], 1),
                        torch.stack([z, 2 + z], 1)], 1)
    return Jet(value, grad, hess)


@pytest.mark.parametrize("inner", ["mlp", "kan", "kan-rows", "chebykan"])
def test_model_propagate_jet_is_the_chain_rule(inner):
    torch.manual_seed(4)
    model = INNERS[inner](3)
    x = points(10, 2, seed=5)
    u, g, h = autograd_jet(lambda x: model(curved_jet(x).value), x)
    jet = model.propagate_jet(curved_jet(x))
    assert_close(jet.value, u)
    assert_close(jet.grad, g)
    assert_close(jet.hess_diag, h)
    curved = curved_jet(x)
    first = model.propagate_jet(Jet(curved.value, curved.grad))
    assert first.hess_diag is None
    assert_close(first.grad, g)
    y = points(6, 3, seed=6)
    seed = model.propagate_jet(Jet.seed(y))
    ref = model.forward_jet(y)
    assert_close(seed.grad, ref.grad)
    assert_close(seed.hess_diag, ref.hess_diag)


def test_model_propagate_jet_errors():
    model = MLP([3, 4, 1], dtype=F64)
    x = points(5, 2)
    good = curved_jet(x)
    with pytest.raises(TypeError, match="expects a Jet"):
        model.propagate_jet(good.value)
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        model.propagate_jet(Jet(x, None, None))
    with pytest.raises(ValueError, match=r"jet.grad of shape \(N, 3, d\) with N = 5, got \(5, 2, 2\)"):
        model.propagate_jet(Jet(good.value, good.grad[:, :2], None))
    with pytest.raises(ValueError, match="hess_diag but no grad"):
        model.propagate_jet(Jet(good.value, None, good.hess_diag))
    with pytest.raises(ValueError, match="hess_diag of the shape of jet.grad"):
        model.propagate_jet(Jet(good.value, good.grad, good.hess_diag[..., :1]))
    with pytest.raises(TypeError, match="jet.grad is torch.float32"):
        model.propagate_jet(Jet(good.value, good.grad.float(), None))
    with pytest.raises(TypeError, match="float64 parameters"):
        model.propagate_jet(Jet(good.value.float(), good.grad.float(), None))


# ---------------------------------------------------------------- the features themselves

def test_fourier_features_are_the_stated_function():
    torch.manual_seed(5)
    model = wrapped("fourier+x", "mlp")
    x = points(8, 2, seed=7)
    B = model.B
    z = 2 * math.pi * (x[:, None, 0] * B[None, :, 0] + x[:, None, 1] * B[None, :, 1])
    expected = torch.cat([torch.cos(z), torch.sin(z), x], 1)
    assert_close(model.features(x), expected)
    assert_close(model(x), model.inner(expected))
    assert model.widths == [2, 10, 6, 2] and model.n_features == 10
    assert model.in_features == 2 and model.out_features == 2


def test_periodic_embedding_is_the_stated_function_of_the_embedding_only():
    torch.manual_seed(6)
    model = wrapped("periodic", "kan")  # periods {0: 2, 2: 0.5}, J = 2
    x = points(8, 3, seed=8)
    a, c = 2 * math.pi * x[:, 0] / 2.0, 2 * math.pi * x[:, 2] / 0.5
    expected = torch.stack([torch.cos(a), torch.cos(2 * a), torch.cos(c), torch.cos(2 * c),
                            torch.sin(a), torch.sin(2 * a), torch.sin(c), torch.sin(2 * c), x[:, 1]], 1)
    assert_close(model.features(x), expected)
    assert_close(model(x), model.inner(expected))
    assert model.periods == {0: 2.0, 2: 0.5} and feature_width("periodic", 3, periods={0: 2.0, 2: 0.5},
                                                                 n_harmonics=2) == 9


@pytest.mark.parametrize("inner", ["mlp", "kan", "chebykan"])
def test_periodic_embedding_is_exactly_periodic_to_second_derivatives(inner):
    torch.manual_seed(7)
    period = 0.8
    model = PeriodicEmbedding(INNERS[inner](feature_width("periodic", 2, periods={0: period}, n_harmonics=3)),
                              2, {0: period}, n_harmonics=3)
    x = points(20, 2, seed=9)
    ref = model.forward_jet(x)
    assert ref.grad[..., 0].abs().max() > 1e-2 and ref.hess_diag[..., 0].abs().max() > 1e-2
    for k in (1, -2, 5):
        shifted = model.forward_jet(x + torch.tensor([k * period, 0.0], dtype=F64))
        for a, b in zip((shifted.value, shifted.grad, shifted.hess_diag), (ref.value, ref.grad, ref.hess_diag)):
            # round-off of x + k P, amplified by the derivatives (|hess_diag| is a few hundred)
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12 * (1 + b.abs().max().item()))
    # the other axis is not periodic: the same test fails there
    other = model.forward_jet(x + torch.tensor([0.0, period], dtype=F64))
    assert (other.value - ref.value).abs().max() > 1e-3


def test_fourier_frequencies_have_the_stated_distribution():
    scale = 3.0
    model = FourierFeatures(MLP([4000, 1], dtype=F64), 2, n_frequencies=2000, scale=scale, seed=11)
    B = model.B
    assert B.shape == (2000, 2) and B.dtype == F64
    assert abs(B.std().item() / scale - 1) < 0.03
    assert abs(B.mean().item()) < 0.05 * scale
    within = (B.abs() < scale).double().mean().item()  # P(|N(0, 1)| < 1) = 0.6827
    assert abs(within - 0.6827) < 0.025
    # the two columns are independent draws
    assert abs(torch.corrcoef(B.t())[0, 1].item()) < 0.06


def test_fourier_frequencies_are_reproducible_saved_and_untrained():
    def make(seed, inner_dtype=F64):
        return FourierFeatures(MLP([16, 5, 1], dtype=inner_dtype), 2, n_frequencies=8, seed=seed)

    torch.manual_seed(0)
    a = make(4)
    torch.manual_seed(123)  # the global generator plays no part in B
    b, c = make(4), make(5)
    assert torch.equal(a.B, b.B) and not torch.allclose(a.B, c.B)
    assert "embedding.B" in a.state_dict()
    assert all(p is not a.B for p in a.parameters()) and not a.B.requires_grad
    assert a.n_params == a.inner.n_params == 16 * 5 + 5 + 5 + 1
    c.load_state_dict(a.state_dict())
    x = points(6, 2)
    assert torch.equal(c.B, a.B)
    assert_close(c(x), a(x), tol=0)
    # B follows the inner model's dtype (drawn in float64, then rounded) and model.to()
    f32 = make(4, torch.float32)
    assert f32.B.dtype == torch.float32 and torch.equal(f32.B, a.B.float())
    assert f32.to(F64).B.dtype == F64


# ---------------------------------------------------------------- grids and optional methods

def test_update_grid_moves_the_knots_to_the_features_range():
    torch.manual_seed(8)
    kan = KAN([3, 4, 1], grid_size=5, grid_range=(-4.0, 4.0), dtype=F64, seed=3)
    model = PeriodicEmbedding(kan, 2, {0: 1.0})  # features: cos(2 pi x0), sin(2 pi x0), x1
    x = torch.stack([torch.linspace(0, 1, 401, dtype=F64), torch.linspace(2, 5, 401, dtype=F64)], 1)
    before = model(x)
    model.update_grid(x)
    layer, k, g = kan.layers[0], kan.spline_order, kan.grid_size
    feats = model.features(x)
    assert_close(layer.grid[:, k], feats.amin(0))
    assert_close(layer.grid[:, k + g], feats.amax(0))
    assert_close(layer.grid[:2, k], torch.full((2,), -1.0, dtype=F64), tol=1e-4)
    assert_close(layer.grid[:2, k + g], torch.full((2,), 1.0, dtype=F64), tol=1e-4)
    assert layer.grid[2, k].item() == 2.0 and layer.grid[2, k + g].item() == 5.0
    assert (model(x) - before).abs().max() < 1e-3 * before.abs().max()  # the function is kept


def test_refine_and_the_kan_extras_pass_through():
    torch.manual_seed(9)
    model = wrapped("fourier", "kan")
    x = points(30, 2, seed=10)
    feats = model.features(x)
    assert_close(model.regularization_loss(x), model.inner.regularization_loss(feats))
    assert_close(model.regularization_loss(x, lamb_l1=0.5, lamb_entropy=0.0),
                 model.inner.regularization_loss(feats, 0.5, 0.0))
    curves, inner_curves = model.activation_curves(17), model.inner.activation_curves(17)
    assert len(curves) == 2 and curves[0]["phi"].shape == (17, 8, 3)
    assert_close(curves[0]["phi"], inner_curves[0]["phi"])
    before = model(x)
    assert model.refine(8) is model  # 4 -> 8 nests the old grid: the function is kept exactly
    assert model.grid_size == model.inner.grid_size == 8
    assert_close(model(x), before, tol=1e-9)


@pytest.mark.parametrize("inner, grid, curves, regularization", [
    ("mlp", False, False, False), ("chebykan", False, True, False), ("kan", True, True, True)])
@pytest.mark.parametrize("wrapper", ["fourier", "periodic"])
def test_wrappers_have_exactly_the_inner_models_optional_methods(wrapper, inner, grid, curves, regularization):
    model = wrapped(wrapper, inner)
    public = FourierFeatures if wrapper == "fourier" else PeriodicEmbedding
    assert isinstance(model, public) and isinstance(model, Model) and type(model).__name__ == public.__name__
    assert isinstance(model, GridAdaptive) is grid
    for name in ("grid_size", "update_grid", "refine"):
        assert hasattr(model, name) is grid
    assert hasattr(model, "activation_curves") is curves
    assert hasattr(model, "regularization_loss") is regularization
    assert model.supports_jet
    # copies keep the class (pickle finds it) and the function
    x = points(5, model.in_features)
    for other in (copy.deepcopy(model), _saved_and_loaded(model)):
        assert type(other) is type(model)
        assert_close(other(x), model(x), tol=0)


def _saved_and_loaded(model):
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    return torch.load(buf, weights_only=False)


class _CountingLayer(nn.Linear):
    def __init__(self):
        super().__init__(4, 1, dtype=F64)
        self.calls = 0

    def prepare_kernels(self, device):
        self.calls += 1


class _Counting(Model):
    def __init__(self):
        super().__init__([4, 1])
        self.layers = nn.ModuleList([_CountingLayer()])


def test_prepare_kernels_reaches_the_inner_layers_once():
    model = with_features(_Counting(), "fourier", 3, n_frequencies=2)
    prepare_kernels(model, "cpu")
    assert model.inner.layers[0].calls == 1
    prepare_kernels(wrapped("fourier", "kan"), "cpu")  # KAN layers load their kernels


def test_operators_read_the_wrappers_jets():
    torch.manual_seed(10)
    model = wrapped("fourier+x", "kan")
    x = points(12, 2, seed=11).requires_grad_(True)
    u = op.evaluate(model, x, derivatives="forward")
    lap = op.laplacian(u, x, component=0)
    _, _, h = autograd_jet(model, x)
    assert_close(lap.reshape(-1), h[:, 0].sum(-1))


# ---------------------------------------------------------------- training

def test_fourier_features_let_an_mlp_fit_a_high_frequency(one_thread):
    x = torch.linspace(0, 1, 201).unsqueeze(1)
    y = torch.sin(8 * math.pi * x)

    def fit(model, steps=300):
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        for _ in range(steps):
            opt.zero_grad()
            loss = ((model(x) - y) ** 2).mean()
            loss.backward()
            opt.step()
        with torch.no_grad():
            return ((model(x) - y) ** 2).mean().item()

    torch.manual_seed(0)
    plain = fit(MLP([1, 32, 32, 1]))
    torch.manual_seed(0)
    with_ff = fit(FourierFeatures(MLP([32, 32, 1]), 1, n_frequencies=16, scale=4.0))
    # spectral bias: the plain MLP stays near the mean (MSE of sin is 0.5); features fit it
    assert plain > 0.1
    assert with_ff < 1e-3 and with_ff < plain / 100


# ---------------------------------------------------------------- argument checks

@pytest.mark.parametrize("build, error, match", [
    (lambda: FourierFeatures(MLP([5, 1]), 2, n_frequencies=4), ValueError, r"needs in_features = 8 .*\[5, 1\]"),
    (lambda: FourierFeatures(MLP([8, 1]), 2, n_frequencies=4, keep_input=True), ValueError, "in_features = 10"),
    (lambda: PeriodicEmbedding(MLP([2, 1]), 2, {0: 1.0}), ValueError, "in_features = 3"),
    (lambda: FourierFeatures("mlp", 2, n_frequencies=1), TypeError, "wraps a kanpde model"),
    (lambda: FourierFeatures(MLP([2, 1]), 0, n_frequencies=1), ValueError, "in_features"),
    (lambda: FourierFeatures(MLP([2, 1]), 2, n_frequencies=0), ValueError, "n_frequencies"),
    (lambda: FourierFeatures(MLP([2, 1]), 2, n_frequencies=1, scale=0.0), ValueError, "scale must be > 0"),
    (lambda: FourierFeatures(MLP([2, 1]), 2, n_frequencies=1, scale=-1.0), ValueError, "scale"),
    (lambda: FourierFeatures(MLP([2, 1]), 2, n_frequencies=1, scale="big"), TypeError, "scale"),
    (lambda: FourierFeatures(MLP([2, 1]), 2, n_frequencies=1, keep_input="yes"), TypeError, "keep_input"),
    (lambda: FourierFeatures(MLP([2, 1]), 2, n_frequencies=1, seed=-1), ValueError, "seed"),
    (lambda: PeriodicEmbedding(MLP([3, 1]), 2, [1.0]), TypeError, "periods must be a dict"),
    (lambda: PeriodicEmbedding(MLP([3, 1]), 2, {}), ValueError, "at least one periodic axis"),
    (lambda: PeriodicEmbedding(MLP([3, 1]), 2, {2: 1.0}), ValueError, "axis 2 does not exist"),
    (lambda: PeriodicEmbedding(MLP([3, 1]), 2, {"x": 1.0}), TypeError, "axes must be integers"),
    (lambda: PeriodicEmbedding(MLP([4, 1]), 2, {0: 1.0, -2: 2.0}), ValueError, "axis 0 is given twice"),
    (lambda: PeriodicEmbedding(MLP([3, 1]), 2, {0: 0.0}), ValueError, "positive period"),
    (lambda: PeriodicEmbedding(MLP([3, 1]), 2, {0: -1.0}), ValueError, r"periods\[0\]"),
    (lambda: PeriodicEmbedding(MLP([3, 1]), 2, {0: 1.0}, n_harmonics=0), ValueError, "n_harmonics"),
    (lambda: with_features(MLP([3, 1]), "chebyshev", 2), ValueError, "allowed: 'fourier', 'periodic'"),
    (lambda: feature_width("nope", 2), ValueError, "unknown input feature kind 'nope'"),
])
def test_bad_arguments_give_clear_errors(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_bad_inputs_give_clear_errors():
    model = wrapped("fourier", "kan")
    x = points(4, 2)
    with pytest.raises(ValueError, match=r"\(N, 2\)"):
        model(points(4, 3))
    with pytest.raises(TypeError, match="float64 parameters"):
        model(x.float())
    with pytest.raises(ValueError, match="order must be 0, 1 or 2"):
        model.forward_jet(x, order=3)
    with pytest.raises(TypeError, match="expects a Jet"):
        model.propagate_jet(x)
    with pytest.raises(ValueError, match=r"jet.grad of shape \(N, 2, d\)"):
        model.propagate_jet(Jet(x, torch.ones(4, 3, 2, dtype=F64)))
    with pytest.raises(ValueError, match="hess_diag but no grad"):
        model.propagate_jet(Jet(x, None, torch.ones(4, 2, 2, dtype=F64)))


def test_feature_width_matches_the_wrapper():
    for kind, d, kw in [("fourier", 3, {"n_frequencies": 5, "keep_input": True}), ("fourier", 1, {}),
                        ("periodic", 3, {"periods": {0: 1.0, 1: 2.0}, "n_harmonics": 3})]:
        f = feature_width(kind, d, **kw)
        model = with_features(MLP([f, 1]), kind, d, **kw)
        assert model.n_features == model.inner.in_features == f
    assert feature_width("fourier", 3, n_frequencies=5, keep_input=True) == 13
    assert feature_width("fourier", 1) == 128
    assert feature_width("periodic", 3, periods={0: 1.0, 1: 2.0}, n_harmonics=3) == 13
