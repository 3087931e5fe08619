"""The compiled CPU kernels (kanpde/models/kan/csrc/kan_jet.cpp, kan_sums.cpp) against the
pure-torch nodes they replace (RowJet for wide layers' jets, EdgeJet for edge-by-edge layers'
jets, the row products and the edge sums of nested autograd): values and every gradient, for the
shapes and options a PINN uses.  Paths are chosen with the public ``force_backend`` and checked
with ``kernel_calls``."""
from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from kanpde.models import KAN
from kanpde.models.base import Jet
from kanpde.models.kan import KANLayer, force_backend, kernel_calls, kernel_status, load_kernels
from kanpde.models.kan.nested import SumsAdjoint, SumsBackward, sums_backward, sums_forward

pytestmark = pytest.mark.skipif(load_kernels() is None, reason=f"compiled kernels: {kernel_status()}")

#: the plain-torch reference for every kernel: torch nodes, row products on gathered rows
TORCH = {"kernels": "torch", "row_products": "gather"}


def random_model(widths, grid, base, k, dtype, seed, n, reach):
    """A KAN with random spline coefficients and ``n`` points in ``[-reach, reach]^d``; at G = 20
    the knots are adapted to the points (non-uniform grid, ``du/dh`` per point)."""
    torch.manual_seed(0)
    model = KAN(widths, grid_size=grid, spline_order=k, base_activation=base, dtype=dtype, seed=seed)
    with torch.no_grad():
        for layer in model.layers:
            layer.spline_weight.normal_(0.0, 0.2)
    x = (torch.rand(n, widths[0], dtype=dtype) * 2 - 1) * reach
    if grid == 20:
        model.update_grid(x)
    return model, x


def jet_and_grads(model, x, jet):
    """Outputs of ``jet`` (at ``x``, which requires grad) and the gradients of a loss on them in
    ``x`` and every parameter."""
    w = torch.linspace(0.5, 1.5, jet.value.numel(), dtype=x.dtype).view_as(jet.value)
    loss = (w * jet.value).sum() + (jet.grad ** 2).sum() + (jet.hess_diag.sum(-1) ** 2).sum()
    grads = torch.autograd.grad(loss, [x, *model.parameters()], allow_unused=True, materialize_grads=True)
    return [jet.value, jet.grad, jet.hess_diag, *grads]


def nested_autograd(model, x, **backend):
    """``u``, its Laplacian by nested autograd, and the gradients of a loss on them in ``x`` and
    every parameter, under ``force_backend(**backend)``."""
    with force_backend(**backend):
        x = x.clone().requires_grad_(True)
        u = model(x)
        (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        lap = sum(torch.autograd.grad(g[:, j].sum(), x, create_graph=True)[0][:, j] for j in range(x.shape[1]))
        loss = (lap ** 2).mean() + (u ** 2).mean() + (g ** 2).mean()
        grads = torch.autograd.grad(loss, [x, *model.parameters()], allow_unused=True, materialize_grads=True)
    return [u, lap, *grads]


def assert_same(names, got, ref, tol):
    """Every pair equal to ``tol`` relative to the reference's size (at least 1)."""
    for name, a, b in zip(names, got, ref):
        assert (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item()), name


def jet_names(model):
    return ["value", "grad", "hess", "d_x"] + [n for n, _ in model.named_parameters()]


def wide_jet(model, x, **backend):
    """Forward jet of ``model`` at ``x`` with every layer on the row path, under
    ``force_backend(**backend)``; returns outputs and gradients of a loss in ``x`` and the
    parameters."""
    with force_backend(layout="rows", **backend):
        x = x.clone().requires_grad_(True)
        jet = Jet.seed(x)
        for layer in model.layers:
            jet = layer.forward_jet(jet)
        return jet_and_grads(model, x, jet)


@pytest.mark.parametrize("d, widths, grid, base, k", [
    (1, [1, 6, 3, 1], 5, "silu", 3),
    (2, [2, 8, 7, 1], 20, "silu", 3),
    (2, [2, 5, 4, 2], 100, "tanh", 2),
    (3, [3, 4, 6, 1], 7, "none", 5),
    (2, [2, 3, 40, 33, 1], 5, "silu", 3),  # output widths past one and four vectors
    (4, [4, 3, 2, 1], 6, "silu", 1),
    (6, [6, 5, 3, 1], 5, "silu", 3),     # past four directions: chunks of 4 + 2
    (10, [10, 4, 1], 5, "tanh", 3),      # chunks of 4 + 4 + 2
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_matches_the_torch_row_path(d, widths, grid, base, k, dtype):
    # float64: some points outside the grid range; float32 stays inside, where a deep KAN's
    # extrapolated pieces cannot overflow
    model, x = random_model(widths, grid, base, k, dtype, 1, 97, 1.2 if dtype == torch.float64 else 0.9)
    ref = wide_jet(model, x, **TORCH)
    with kernel_calls() as calls:
        got = wide_jet(model, x)
    assert calls["row_jet/compiled"] == len(model.layers)  # past JET_CHUNK directions: in chunks
    assert_same(jet_names(model), got, ref, 1e-11 if dtype == torch.float64 else 2e-4)


def test_kernel_is_deterministic_for_a_thread_count():
    model = KAN([2, 16, 16, 1], grid_size=5, dtype=torch.float64, seed=3)
    x = torch.rand(2000, 2, dtype=torch.float64) * 2 - 1
    a = wide_jet(model, x)
    b = wide_jet(model, x)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("KANPDE_NATIVE", "0")
    assert load_kernels() is None and kernel_status() == "disabled"
    model = KAN([2, 24, 24, 1], grid_size=5, dtype=torch.float64, seed=0)
    x = torch.rand(50, 2, dtype=torch.float64)
    with kernel_calls() as calls:
        jet = model.forward_jet(x)
    monkeypatch.delenv("KANPDE_NATIVE")
    ref = model.forward_jet(x)
    assert calls["edge_jet/torch"] == 2 and calls["row_jet/torch"] == 1 and not calls["edge_jet/compiled"]
    assert_same(["value", "grad", "hess"], [jet.value, jet.grad, jet.hess_diag], [ref.value, ref.grad, ref.hess_diag],
                1e-11)


def test_a_failed_build_warns_once_and_falls_back():
    # in a fresh process whose C++ build fails: one warning, no second attempt, the torch nodes
    code = """
import warnings, torch
from torch.utils import cpp_extension
def broken(*args, **kwargs):
    raise RuntimeError("Ninja is required to load C++ extensions")
cpp_extension.load_inline = broken
from kanpde.models.kan import KAN, kernel_calls, kernel_status, load_kernels
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    first, second = load_kernels(), load_kernels()
model = KAN([2, 24, 24, 1], grid_size=5, dtype=torch.float64, seed=0)
with kernel_calls() as calls:
    jet = model.forward_jet(torch.rand(40, 2, dtype=torch.float64))
print(first is None and second is None, len(caught), "Ninja is required" in str(caught[0].message),
      kernel_status().startswith("unavailable: RuntimeError"), bool(torch.isfinite(jet.hess_diag).all()),
      calls["edge_jet/torch"] + calls["row_jet/torch"], calls["edge_jet/compiled"] + calls["row_jet/compiled"])
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "1", "True", "True", "True", "3", "0"], out.stdout + out.stderr


@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_matches_with_one_and_two_threads(threads):
    # one thread accumulates the table adjoint in place, several use per-thread partial tables
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = KAN([2, 12, 9, 1], grid_size=8, dtype=torch.float64, seed=4)
        x = torch.rand(300, 2, dtype=torch.float64) * 2 - 1
        ref = wide_jet(model, x, **TORCH)
        got = wide_jet(model, x)
    finally:
        torch.set_num_threads(before)
    assert_same(jet_names(model), got, ref, 1e-11)


def edge_jet(model, x, **backend):
    """:func:`wide_jet` with the layers edge by edge (as narrow layers run), under
    ``force_backend(**backend)``."""
    with force_backend(layout="edgewise", **backend):
        x = x.clone().requires_grad_(True)
        return jet_and_grads(model, x, model.forward_jet(x, order=2))


@pytest.mark.parametrize("d, widths, grid, base, k", [
    (2, [2, 10, 1], 5, "silu", 3),       # the default model
    (1, [1, 6, 3, 1], 5, "tanh", 2),
    (2, [2, 7, 5, 2], 20, "identity", 3),
    (3, [3, 4, 6, 1], 7, "none", 5),
    (4, [4, 3, 2, 1], 100, "silu", 1),
    (2, [2, 3, 2, 1], 6, "silu", 8),
    (5, [5, 4, 3, 1], 5, "silu", 3),     # past four inputs
    (10, [10, 3, 1], 5, "silu", 3),      # poisson_nd's dimension
    (20, [20, 2, 2, 1], 5, "tanh", 2),   # past 16 directions: the inner layers' jets in chunks
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_edge_kernel_matches_the_torch_edge_path(d, widths, grid, base, k, dtype):
    # float64: some points outside the grid; 197 points: three tiles of 64 and a tail
    model, x = random_model(widths, grid, base, k, dtype, 1, 197, 1.2 if dtype == torch.float64 else 0.9)
    ref = edge_jet(model, x, **TORCH)
    with kernel_calls() as calls:
        got = edge_jet(model, x)
    assert calls["edge_jet/compiled"] == len(model.layers) and not calls["edge_jet/torch"]
    assert_same(jet_names(model), got, ref, 1e-11 if dtype == torch.float64 else 2e-4)


@pytest.mark.parametrize("threads", [1, 2])
def test_edge_kernel_threads_and_determinism(threads):
    # one thread accumulates the table and base-weight adjoints in place, several in per-thread parts
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = KAN([2, 10, 1], grid_size=5, dtype=torch.float64, seed=4)
        x = torch.rand(3000, 2, dtype=torch.float64) * 2 - 1
        ref = edge_jet(model, x, **TORCH)
        got = edge_jet(model, x)
        again = edge_jet(model, x)
    finally:
        torch.set_num_threads(before)
    assert_same(jet_names(model), got, ref, 1e-11)
    assert all(torch.equal(a, c) for a, c in zip(got, again))


def test_edge_kernel_is_used_for_narrow_layers():
    model = KAN([2, 10, 1], grid_size=5, dtype=torch.float64, seed=0)
    with kernel_calls() as calls:
        model.forward_jet(torch.rand(10, 2, dtype=torch.float64), order=2)
    assert calls["edge_jet/compiled"] == 2 and not calls["edge_jet/torch"]


@pytest.mark.parametrize("widths, grid, base, k", [
    ([2, 10, 1], 5, "silu", 3),
    ([3, 5, 4, 1], 20, "tanh", 2),
    ([2, 6, 1], 9, "none", 5),
    ([1, 4, 1], 6, "identity", 1),
])
def test_compiled_nested_autograd_through_narrow_layers(widths, grid, base, k):
    # the nested-autograd path (a Laplacian by autograd, then the parameter gradients) runs the
    # compiled sums kernels for edge-by-edge layers; torch's nodes give the reference
    model, x = random_model(widths, grid, base, k, torch.float64, 2, 150, 1.1)
    with kernel_calls() as calls:
        got = nested_autograd(model, x)
    ref = nested_autograd(model, x, **TORCH)
    assert calls["sums_forward/compiled"] >= len(model.layers) and calls["sums_adjoint/compiled"] > 0
    assert not (calls["sums_forward/torch"] or calls["sums_backward/torch"] or calls["sums_adjoint/torch"])
    assert_same(["u", "lap", "d_x"] + [n for n, _ in model.named_parameters()], got, ref, 1e-11)


@pytest.mark.parametrize("widths, order", [([2, 10, 1], 1), ([3, 6, 1], 0), ([5, 4, 3, 1], 1)])
def test_compiled_table_adjoint(widths, order):
    # the table gradient of edge splines where the sums and jet kernels do not serve: jets of
    # order 0 and 1 (the evaluation path of the H1 error); torch's nodes give the reference
    model, x = random_model(widths, 5, "silu", 3, torch.float64, 2, 90, 1.1)

    def jet_gradients(**backend):
        with force_backend(**backend):
            jet = model.forward_jet(x, order=order)
            loss = jet.value.square().sum() + sum(t.square().sum() for t in (jet.grad, jet.hess_diag) if t is not None)
            return [jet.value, *torch.autograd.grad(loss, list(model.parameters()), allow_unused=True,
                                                    materialize_grads=True)]

    with kernel_calls() as calls:
        got = jet_gradients()
    ref = jet_gradients(**TORCH)
    assert calls["table_adjoint/compiled"] >= len(model.layers) and not calls["table_adjoint/torch"]
    assert_same(["value"] + [n for n, _ in model.named_parameters()], got, ref, 1e-11)


@pytest.mark.parametrize("widths, base, k, grid", [
    ([2, 12, 9, 1], "silu", 3, 5),
    ([3, 7, 33, 2], "tanh", 2, 20),
    ([2, 5, 4, 1], "none", 5, 8),
    ([2, 20, 18, 1], "identity", 2, 6),
])
def test_wide_layers_nested_autograd_in_the_sums_kernels(widths, base, k, grid):
    # on CPU, wide layers' nested autograd runs the edge-sums family on the compiled sums
    # kernels, like narrow layers; the torch row products (gathered rows) give the reference,
    # for values, Laplacians and every parameter gradient
    model, x = random_model(widths, grid, base, k, torch.float64, 5, 120, 1.1)
    with kernel_calls() as calls:
        got = nested_autograd(model, x, layout="rows")
    assert calls["sums_forward/compiled"] >= len(model.layers)  # every layer's forward went through the family
    ref = nested_autograd(model, x, layout="rows", **TORCH)
    assert_same(["u", "lap", "d_x"] + [n for n, _ in model.named_parameters()], got, ref, 1e-11)


@pytest.mark.parametrize("widths, base, k, grid", [
    ([2, 12, 9, 1], "silu", 3, 5),
    ([3, 7, 33, 2], "tanh", 2, 20),
])
def test_compiled_row_products_in_nested_autograd(widths, base, k, grid):
    # where the sums kernels do not serve a wide layer (spline orders above 8), its nested
    # autograd runs the row products, compiled on CPU; torch's gathered-row products give the
    # reference
    model, x = random_model(widths, grid, base, k, torch.float64, 5, 120, 1.1)
    with kernel_calls() as calls:
        got = nested_autograd(model, x, kernels="torch", row_products="compiled", layout="rows")
    ref = nested_autograd(model, x, layout="rows", **TORCH)
    assert calls["row_product/compiled"] > 0 and not calls["row_product/gather"]
    assert_same(["u", "lap", "d_x"] + [n for n, _ in model.named_parameters()], got, ref, 1e-11)


def sums_case(i, o, k, base, grid, dtype, n, seed=0):
    """A layer with random coefficients located at ``n`` points (some outside the grid), the
    table, ``wb`` and random ``y (o, n)``, ``z (i, n)``."""
    gen = torch.Generator().manual_seed(seed)
    layer = KANLayer(i, o, grid_size=grid, spline_order=k, base_activation=base, dtype=dtype)
    with torch.no_grad():
        layer.spline_weight.copy_(torch.randn(layer.spline_weight.shape, generator=gen, dtype=dtype))
    h = (torch.rand(n, i, generator=gen, dtype=dtype) * 2 - 1) * 1.2
    if grid == 20:
        layer.update_grid(h)
    table = layer.table().detach()
    wb = None if layer.base_weight is None else layer.base_weight.detach()
    loc = layer.locate_planes(h)
    y = torch.randn(o, n, generator=gen, dtype=dtype)
    z = torch.randn(i, n, generator=gen, dtype=dtype)
    return loc, table, wb, y, z


def sums_all(loc, table, wb, y, z, r):
    """Every sums kernel at order ``r``: forward with and without ``z``, backward, and the table
    and ``wb`` adjoints with and without ``z``."""
    out = [sums_forward(z, table, wb, loc, r), sums_forward(None, table, wb, loc, r),
           sums_backward(y, table, wb, loc, r)]
    for zz in (z, None):
        d_t, d_w = SumsAdjoint.apply(y, zz, loc.inputs, loc, r, True, wb is not None)
        out += [d_t] + ([] if d_w is None else [d_w])
    return out


@pytest.mark.parametrize("i, o, k, base, grid", [
    (2, 10, 3, "silu", 5),      # the default model's layers
    (10, 1, 3, "silu", 5),
    (32, 32, 3, "silu", 5),     # a wide layer
    (3, 19, 2, "tanh", 20),     # adapted grid, a column tail past two vectors
    (5, 7, 5, "identity", 9),
    (4, 33, 1, "none", 6),
    (2, 3, 8, "silu", 4),
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_sums_kernels_match_the_torch_sums(i, o, k, base, grid, dtype):
    # both inner-loop layouts (columns: vectorised over output columns; points: over points)
    # against the torch ops, for derivative orders 0..3; 203 points: tiles of 16 and 64 plus tails
    loc, table, wb, y, z = sums_case(i, o, k, base, grid, dtype, 203)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    for r in range(4):
        with force_backend("torch"):
            ref = sums_all(loc, table, wb, y, z, r)
        for loop in ("columns", "points"):
            with force_backend(sums_loop=loop), kernel_calls() as calls:
                got = sums_all(loc, table, wb, y, z, r)
            assert calls["sums_forward/compiled"] == 2 and not calls["sums_forward/torch"]
            assert len(got) == len(ref)
            for a, b in zip(got, ref):
                if b is None:  # the torch ops' "vanishes" (r > k, no base branch)
                    assert a is None or not a.any(), (r, loop)
                    continue
                assert (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item()), (r, loop)


def test_sums_kernels_take_strided_and_broadcast_operands():
    # the gradients autograd hands the nodes may be transposed views or broadcasts (the gradient
    # of a sum); the kernels read them through their strides
    loc, table, wb, y, z = sums_case(6, 20, 3, "silu", 5, torch.float64, 150)
    zt = torch.randn(150, 6, dtype=torch.float64).t()  # (6, 150) with point stride 6
    yb = torch.randn(20, 1, dtype=torch.float64).expand(20, 150)  # point stride 0
    for loop in ("columns", "points"):
        with force_backend(sums_loop=loop):
            got = sums_all(loc, table, wb, yb, zt, 2)
            ref = sums_all(loc, table, wb, yb.contiguous(), zt.contiguous(), 2)
        assert all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(got, ref))


@pytest.mark.parametrize("threads", [1, 2])
def test_sums_kernels_repeat_for_a_thread_count(threads):
    # the adjoints sum per thread, then in a fixed order
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for loop in ("columns", "points"):
            with force_backend(sums_loop=loop):
                loc, table, wb, y, z = sums_case(8, 24, 3, "silu", 5, torch.float64, 3000)
                a, b = sums_all(loc, table, wb, y, z, 1), sums_all(loc, table, wb, y, z, 1)
            assert all(torch.equal(u, v) for u, v in zip(a, b))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("widths", [[2, 10, 1], [2, 32, 32, 1]])
def test_derivative_passes_skip_the_parameter_side(widths):
    # torch.autograd.grad(..., inputs=x) (a gradient, a Laplacian) needs no table or base-weight
    # adjoints: no SumsAdjoint node runs until the loss's backward to the parameters
    model, x = random_model(widths, 5, "silu", 3, torch.float64, 3, 64, 1.0)
    x = x.clone().requires_grad_(True)
    with kernel_calls() as calls:
        u = model(x)
        (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
        lap = sum(torch.autograd.grad(g[:, j].sum(), x, create_graph=True)[0][:, j] for j in range(2))
        assert not calls["sums_adjoint/compiled"] and not calls["sums_adjoint/torch"]
        (lap ** 2).mean().backward()
        assert calls["sums_adjoint/compiled"] > 0  # biases do not reach a Laplacian; spline and base weights do
    assert all(layer.spline_weight.grad.abs().sum() > 0 and layer.base_weight.grad.abs().sum() > 0
               for layer in model.layers)


def test_a_repeated_backward_sum_is_done_once_and_redone_after_a_change():
    # the Laplacian's passes ask one evaluation for the same B_r(y) again: the kernel runs once,
    # each node gets its own copy, and a changed operand (in place) is contracted anew
    loc, table, wb, y, z = sums_case(6, 20, 3, "silu", 5, torch.float64, 150)
    with kernel_calls() as calls:
        first = SumsBackward.apply(y, loc.inputs, table, wb, loc, 1)
        again = SumsBackward.apply(y, loc.inputs, table, wb, loc, 1)
        assert calls["sums_backward/compiled"] == 1 and torch.equal(first, again)
        assert first.data_ptr() != again.data_ptr()
        SumsBackward.apply(y, loc.inputs, table, wb, loc, 2)  # another order: a new contraction
        assert calls["sums_backward/compiled"] == 2
        y.mul_(2.0)
        changed = SumsBackward.apply(y, loc.inputs, table, wb, loc, 1)
        assert calls["sums_backward/compiled"] == 3 and torch.allclose(changed, 2 * first, rtol=1e-13, atol=0)
