"""The activation table every model shares (kanpde.models.activations): each function and its
derivatives against closed forms written here independently, and every order against nested
autograd."""
import math

import pytest
import torch
import torch.nn.functional as F

from kanpde.models.activations import ACTIVATIONS
from tests.helpers import assert_close

F64 = torch.float64
NAMES = ["tanh", "sin", "silu", "gelu", "sigmoid"]


def _closed_forms(name, z):
    """sigma, sigma', sigma'' written independently of kanpde."""
    if name == "tanh":
        sech2 = 1 / torch.cosh(z) ** 2
        return torch.tanh(z), sech2, -2 * torch.tanh(z) * sech2
    if name == "sin":
        return torch.sin(z), torch.cos(z), -torch.sin(z)
    e = torch.exp(-z)
    sig = 1 / (1 + e)
    if name == "sigmoid":
        return sig, e / (1 + e) ** 2, e * (e - 1) / (1 + e) ** 3
    if name == "silu":
        d1 = sig + z * e / (1 + e) ** 2
        d2 = 2 * e / (1 + e) ** 2 + z * e * (e - 1) / (1 + e) ** 3
        return z * sig, d1, d2
    phi = torch.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    cdf = 0.5 * torch.erfc(-z / math.sqrt(2))
    return z * cdf, cdf + z * phi, (2 - z * z) * phi


@pytest.mark.parametrize("name", NAMES)
def test_function_and_first_two_derivatives_match_closed_forms(name):
    z = torch.linspace(-6, 6, 241, dtype=F64)
    act = ACTIVATIONS[name]
    y, d1, d2 = act.derivatives(z, 2)
    s, s1, s2 = _closed_forms(name, z)
    assert_close(act.function(z), s, tol=1e-12)
    assert_close(y, s, tol=1e-12)
    assert_close(d1, s1, tol=1e-12)
    assert_close(d2, s2, tol=1e-12)
    (y0,) = act.derivatives(z, 0)
    assert torch.equal(y0, y)


def test_gelu_is_exact_erf_form():
    z = torch.linspace(-3, 3, 61, dtype=F64)
    assert_close(ACTIVATIONS["gelu"].function(z), F.gelu(z, approximate="none"), tol=1e-14)
    assert (ACTIVATIONS["gelu"].function(z) - F.gelu(z, approximate="tanh")).abs().max() > 1e-5


def _nested(fn, z, order):
    """``d^order fn / dz^order`` elementwise by nested autograd (``fn`` elementwise)."""
    z = z.detach().requires_grad_(True)
    out = fn(z)
    for _ in range(order):
        if not out.requires_grad:  # a constant derivative (the identity's): the next ones vanish
            return torch.zeros_like(z)
        (out,) = torch.autograd.grad(out.sum(), z, create_graph=True, materialize_grads=True)
    return out.detach()


@pytest.mark.parametrize("name", [*NAMES, "identity"])
def test_every_order_matches_nested_autograd(name):
    # nested autograd through a KAN asks its base activation for orders above 2 (a Laplacian's
    # backward pass needs the third); the table serves any order
    z = torch.linspace(-6, 6, 101, dtype=F64)
    act = ACTIVATIONS[name]
    ds = act.derivatives(z, 6)
    assert len(ds) == 7
    for r, d in enumerate(ds):
        torch.testing.assert_close(d, _nested(act.function, z, r), rtol=1e-11, atol=1e-11)
    # asking for fewer orders gives the same leading ones, bit for bit
    for order in (0, 1, 2, 3):
        low = act.derivatives(z, order)
        assert len(low) == order + 1
        for a, b in zip(low, ds):
            assert torch.equal(a, b)
