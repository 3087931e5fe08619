"""The compiled CPU kernels (kanpde/models/csrc/kan_jet.cpp, kan_sums.cpp) against the pure-torch
nodes they replace (_RowJet for wide layers' jets, _EdgeJet for edge-by-edge layers' jets, the
row products and the edge sums of nested autograd): values and every gradient, for the shapes
and options a PINN uses."""
from __future__ import annotations

import pytest
import torch

import kanpde.models.kan as kan_mod
from kanpde.models import KAN
from kanpde.models._native import jet_kernels, native_status
from kanpde.models.base import Jet

pytestmark = pytest.mark.skipif(jet_kernels() is None, reason=f"compiled jet kernel: {native_status()}")


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


def nested_autograd(model, x, backend, monkeypatch):
    """``u``, its Laplacian by nested autograd, and the gradients of a loss on them in ``x`` and
    every parameter, with the compiled products (``backend=None``) or torch's."""
    monkeypatch.setattr(kan_mod, "_FORCE_BACKEND", backend)
    x = x.clone().requires_grad_(True)
    u = model(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = sum(torch.autograd.grad(g[:, j].sum(), x, create_graph=True)[0][:, j] for j in range(x.shape[1]))
    loss = (lap ** 2).mean() + (u ** 2).mean() + (g ** 2).mean()
    return [u, lap, *torch.autograd.grad(loss, [x, *model.parameters()], allow_unused=True, materialize_grads=True)]


def assert_same(names, got, ref, tol):
    """Every pair equal to ``tol`` relative to the reference's size (at least 1)."""
    for name, a, b in zip(names, got, ref):
        assert (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item()), name


def jet_names(model):
    return ["value", "grad", "hess", "d_x"] + [n for n, _ in model.named_parameters()]


def wide_jet(model, x, backend, monkeypatch):
    """Forward jet of ``model`` at ``x`` with every layer on the row path: the kernel
    (``backend=None``) or torch's gathered-row products; returns outputs and gradients of a
    loss in ``x`` and the parameters."""
    monkeypatch.setattr(kan_mod.KANLayer, "_edgewise", lambda self: False)
    monkeypatch.setattr(kan_mod, "_FORCE_BACKEND", backend)
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
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_kernel_matches_the_torch_row_path(d, widths, grid, base, k, dtype, monkeypatch):
    # float64: some points outside the grid range; float32 stays inside, where a deep KAN's
    # extrapolated pieces cannot overflow
    model, x = random_model(widths, grid, base, k, dtype, 1, 97, 1.2 if dtype == torch.float64 else 0.9)
    ref = wide_jet(model, x, "gather", monkeypatch)
    got = wide_jet(model, x, None, monkeypatch)
    assert_same(jet_names(model), got, ref, 1e-11 if dtype == torch.float64 else 2e-4)


def test_kernel_is_deterministic_for_a_thread_count(monkeypatch):
    model = KAN([2, 16, 16, 1], grid_size=5, dtype=torch.float64, seed=3)
    x = torch.rand(2000, 2, dtype=torch.float64) * 2 - 1
    a = wide_jet(model, x, None, monkeypatch)
    b = wide_jet(model, x, None, monkeypatch)
    assert all(torch.equal(u, v) for u, v in zip(a, b))


def test_disabled_by_environment(monkeypatch):
    monkeypatch.setenv("KANPDE_NATIVE", "0")
    assert jet_kernels() is None and native_status() == "disabled"
    model = KAN([2, 24, 24, 1], grid_size=5, dtype=torch.float64, seed=0)
    x = torch.rand(50, 2, dtype=torch.float64)
    assert torch.isfinite(model.forward_jet(x).hess_diag).all()


def test_a_failed_build_warns_once_and_falls_back(monkeypatch):
    import kanpde.models._native as native
    from torch.utils import cpp_extension

    def broken(*args, **kwargs):
        raise RuntimeError("Ninja is required to load C++ extensions")
    monkeypatch.setattr(native, "_state", {})
    monkeypatch.setattr(cpp_extension, "load_inline", broken)
    with pytest.warns(RuntimeWarning, match="Ninja is required"):
        assert native.jet_kernels() is None
    assert native.jet_kernels() is None  # remembered: no second attempt, no second warning
    assert native.native_status().startswith("unavailable: RuntimeError")
    model = KAN([2, 24, 24, 1], grid_size=5, dtype=torch.float64, seed=0)
    x = torch.rand(40, 2, dtype=torch.float64)
    monkeypatch.setattr(kan_mod, "_FORCE_BACKEND", None)
    assert torch.isfinite(model.forward_jet(x).hess_diag).all()


@pytest.mark.parametrize("threads", [1, 2])
def test_kernel_matches_with_one_and_two_threads(threads, monkeypatch):
    # one thread accumulates the table adjoint in place, several use per-thread partial tables
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = KAN([2, 12, 9, 1], grid_size=8, dtype=torch.float64, seed=4)
        x = torch.rand(300, 2, dtype=torch.float64) * 2 - 1
        ref = wide_jet(model, x, "gather", monkeypatch)
        got = wide_jet(model, x, None, monkeypatch)
    finally:
        torch.set_num_threads(before)
    assert_same(jet_names(model), got, ref, 1e-11)


def edge_jet(model, x, backend, monkeypatch):
    """:func:`wide_jet` with the layers edge by edge (as narrow layers run): the compiled edge
    kernel (``backend=None``) or the torch node."""
    monkeypatch.setattr(kan_mod, "_FORCE_BACKEND", backend)
    assert all(layer._edgewise() for layer in model.layers)
    x = x.clone().requires_grad_(True)
    return jet_and_grads(model, x, model.forward_jet(x, order=2))


@pytest.mark.parametrize("d, widths, grid, base, k", [
    (2, [2, 10, 1], 5, "silu", 3),       # the default model
    (1, [1, 6, 3, 1], 5, "tanh", 2),
    (2, [2, 7, 5, 2], 20, "identity", 3),
    (3, [3, 4, 6, 1], 7, "none", 5),
    (4, [4, 3, 2, 1], 100, "silu", 1),
    (2, [2, 3, 2, 1], 6, "silu", 8),
])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_edge_kernel_matches_the_torch_edge_path(d, widths, grid, base, k, dtype, monkeypatch):
    # float64: some points outside the grid; 197 points: three tiles of 64 and a tail
    model, x = random_model(widths, grid, base, k, dtype, 1, 197, 1.2 if dtype == torch.float64 else 0.9)
    ref = edge_jet(model, x, "gather", monkeypatch)
    got = edge_jet(model, x, None, monkeypatch)
    assert_same(jet_names(model), got, ref, 1e-11 if dtype == torch.float64 else 2e-4)


@pytest.mark.parametrize("threads", [1, 2])
def test_edge_kernel_threads_and_determinism(threads, monkeypatch):
    # one thread accumulates the table and base-weight adjoints in place, several in per-thread parts
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        model = KAN([2, 10, 1], grid_size=5, dtype=torch.float64, seed=4)
        x = torch.rand(3000, 2, dtype=torch.float64) * 2 - 1
        ref = edge_jet(model, x, "gather", monkeypatch)
        got = edge_jet(model, x, None, monkeypatch)
        again = edge_jet(model, x, None, monkeypatch)
    finally:
        torch.set_num_threads(before)
    assert_same(jet_names(model), got, ref, 1e-11)
    assert all(torch.equal(a, c) for a, c in zip(got, again))


def test_edge_kernel_is_used_for_narrow_layers(monkeypatch):
    calls = []
    real = kan_mod._NativeEdgeJet.apply
    monkeypatch.setattr(kan_mod._NativeEdgeJet, "apply", lambda *a: calls.append(1) or real(*a))
    model = KAN([2, 10, 1], grid_size=5, dtype=torch.float64, seed=0)
    model.forward_jet(torch.rand(10, 2, dtype=torch.float64), order=2)
    assert len(calls) == 2


@pytest.mark.parametrize("widths, grid, base, k", [
    ([2, 10, 1], 5, "silu", 3),
    ([3, 5, 4, 1], 20, "tanh", 2),
    ([2, 6, 1], 9, "none", 5),
    ([1, 4, 1], 6, "identity", 1),
])
def test_compiled_table_adjoint_in_nested_autograd(widths, grid, base, k, monkeypatch):
    # the nested-autograd path (a Laplacian by autograd, then the parameter gradients) uses the
    # compiled table adjoint for edge-by-edge layers; torch's products give the reference
    model, x = random_model(widths, grid, base, k, torch.float64, 2, 150, 1.1)
    got, ref = nested_autograd(model, x, None, monkeypatch), nested_autograd(model, x, "gather", monkeypatch)
    assert_same(["u", "lap", "d_x"] + [n for n, _ in model.named_parameters()], got, ref, 1e-11)


@pytest.mark.parametrize("widths, base, k, grid", [
    ([2, 12, 9, 1], "silu", 3, 5),
    ([3, 7, 33, 2], "tanh", 2, 20),
    ([2, 5, 4, 1], "none", 5, 8),
    ([2, 20, 18, 1], "identity", 2, 6),
])
def test_wide_layers_nested_autograd_in_the_sums_kernels(widths, base, k, grid, monkeypatch):
    # on CPU, wide layers' nested autograd runs the edge-sums family (_SumsF/_SumsB/_SumsT) on the
    # compiled sums kernels, like narrow layers; the torch row products (_SpMM, gathered rows)
    # give the reference, for values, Laplacians and every parameter gradient
    monkeypatch.setattr(kan_mod.KANLayer, "_edgewise", lambda self: False)
    model, x = random_model(widths, grid, base, k, torch.float64, 5, 120, 1.1)
    calls = []
    real = kan_mod._SumsF.apply
    monkeypatch.setattr(kan_mod._SumsF, "apply", lambda *a: calls.append(1) or real(*a))
    got = nested_autograd(model, x, None, monkeypatch)
    assert len(calls) >= len(model.layers)  # every layer's forward went through the sums family
    ref = nested_autograd(model, x, "gather", monkeypatch)
    assert_same(["u", "lap", "d_x"] + [n for n, _ in model.named_parameters()], got, ref, 1e-11)


@pytest.mark.parametrize("widths, base, k, grid", [
    ([2, 12, 9, 1], "silu", 3, 5),
    ([3, 7, 33, 2], "tanh", 2, 20),
])
def test_compiled_row_products_in_nested_autograd(widths, base, k, grid, monkeypatch):
    # where the sums kernels do not serve a wide layer (spline orders above 8), its nested
    # autograd runs the row products (_spmm, _sddmm, _spmmt), compiled on CPU; torch's
    # gathered-row products give the reference
    monkeypatch.setattr(kan_mod.KANLayer, "_edgewise", lambda self: False)
    monkeypatch.setattr(kan_mod, "_sums_kernels_for", lambda *a: None)
    model, x = random_model(widths, grid, base, k, torch.float64, 5, 120, 1.1)
    got, ref = nested_autograd(model, x, None, monkeypatch), nested_autograd(model, x, "gather", monkeypatch)
    monkeypatch.setattr(kan_mod, "_FORCE_BACKEND", None)
    layer = model.layers[1]
    loc, _ = layer._locate(torch.zeros(3, widths[1], dtype=x.dtype), layer._geometry())
    assert loc.row_pattern(widths[2]).backend == "native"  # what the compiled run used
    assert_same(["u", "lap", "d_x"] + [n for n, _ in model.named_parameters()], got, ref, 1e-11)


def sums_case(i, o, k, base, grid, dtype, n, seed=0):
    """A layer with random coefficients located at ``n`` points (some outside the grid), the
    table, ``wb`` and random ``y (o, n)``, ``z (i, n)``."""
    gen = torch.Generator().manual_seed(seed)
    layer = kan_mod.KANLayer(i, o, grid_size=grid, spline_order=k, base_activation=base, dtype=dtype)
    with torch.no_grad():
        layer.spline_weight.copy_(torch.randn(layer.spline_weight.shape, generator=gen, dtype=dtype))
    h = (torch.rand(n, i, generator=gen, dtype=dtype) * 2 - 1) * 1.2
    if grid == 20:
        layer.update_grid(h)
    geo = layer._geometry()
    table = layer._table(geo).detach()
    wb = None if layer.base_weight is None else layer.base_weight.detach()
    loc = layer._locate_t(h, geo)
    y = torch.randn(o, n, generator=gen, dtype=dtype)
    z = torch.randn(i, n, generator=gen, dtype=dtype)
    return loc, table, wb, y, z


def sums_all(loc, table, wb, y, z, r):
    """Every sums kernel at order ``r``: forward with and without ``z``, backward, and the table
    and ``wb`` adjoints with and without ``z``."""
    out = [kan_mod._sums_forward(z, table, wb, loc, r), kan_mod._sums_forward(None, table, wb, loc, r),
           kan_mod._sums_backward(y, table, wb, loc, r)]
    for zz in (z, None):
        d_t, d_w = kan_mod._SumsT.apply(y, zz, loc.ht, loc, r, True, wb is not None)
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
def test_sums_kernels_match_the_torch_sums(i, o, k, base, grid, dtype, monkeypatch):
    # both inner-loop layouts (rows: vectorised over output columns; lanes: over points) against
    # the torch ops, for derivative orders 0..3; 203 points: tiles of 16 and 64 plus tails
    loc, table, wb, y, z = sums_case(i, o, k, base, grid, dtype, 203)
    tol = 1e-12 if dtype == torch.float64 else 2e-5
    for r in range(4):
        monkeypatch.setattr(kan_mod, "_FORCE_BACKEND", "gather")
        ref = sums_all(loc, table, wb, y, z, r)
        monkeypatch.setattr(kan_mod, "_FORCE_BACKEND", None)
        for path in (1, 2):
            monkeypatch.setattr(kan_mod, "_SUMS_PATH", path)
            got = sums_all(loc, table, wb, y, z, r)
            assert len(got) == len(ref)
            for a, b in zip(got, ref):
                if b is None:  # the torch ops' "vanishes" (r > k, no base branch)
                    assert a is None or not a.any(), (r, path)
                    continue
                assert (a - b).abs().max().item() <= tol * max(1.0, b.abs().max().item()), (r, path)


def test_sums_kernels_take_strided_and_broadcast_operands(monkeypatch):
    # the gradients autograd hands the nodes may be transposed views or broadcasts (the gradient
    # of a sum); the kernels read them through their strides
    loc, table, wb, y, z = sums_case(6, 20, 3, "silu", 5, torch.float64, 150)
    zt = torch.randn(150, 6, dtype=torch.float64).t()  # (6, 150) with point stride 6
    yb = torch.randn(20, 1, dtype=torch.float64).expand(20, 150)  # point stride 0
    for path in (1, 2):
        monkeypatch.setattr(kan_mod, "_SUMS_PATH", path)
        monkeypatch.setattr(kan_mod, "_FORCE_BACKEND", None)
        got = sums_all(loc, table, wb, yb, zt, 2)
        ref = sums_all(loc, table, wb, yb.contiguous(), zt.contiguous(), 2)
        assert all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(got, ref))


@pytest.mark.parametrize("threads", [1, 2])
def test_sums_kernels_repeat_for_a_thread_count(threads, monkeypatch):
    # the adjoints sum per thread, then in a fixed order
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        for path in (1, 2):
            monkeypatch.setattr(kan_mod, "_SUMS_PATH", path)
            loc, table, wb, y, z = sums_case(8, 24, 3, "silu", 5, torch.float64, 3000)
            a, b = sums_all(loc, table, wb, y, z, 1), sums_all(loc, table, wb, y, z, 1)
            assert all(torch.equal(u, v) for u, v in zip(a, b))
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("widths", [[2, 10, 1], [2, 32, 32, 1]])
def test_derivative_passes_skip_the_parameter_side(widths, monkeypatch):
    # torch.autograd.grad(..., inputs=x) (a gradient, a Laplacian) needs no table or base-weight
    # adjoints: no _SumsT node runs until the loss's backward to the parameters; with it, the
    # parameter gradients match the torch nodes'
    calls = []
    real = kan_mod._SumsT.apply
    monkeypatch.setattr(kan_mod._SumsT, "apply", lambda *a: calls.append(1) or real(*a))
    model, x = random_model(widths, 5, "silu", 3, torch.float64, 3, 64, 1.0)
    x = x.clone().requires_grad_(True)
    u = model(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = sum(torch.autograd.grad(g[:, j].sum(), x, create_graph=True)[0][:, j] for j in range(2))
    assert not calls
    (lap ** 2).mean().backward()
    assert calls  # biases do not reach a Laplacian; spline and base weights do
    assert all(layer.spline_weight.grad.abs().sum() > 0 and layer.base_weight.grad.abs().sum() > 0
               for layer in model.layers)


def test_a_repeated_backward_sum_is_done_once_and_redone_after_a_change(monkeypatch):
    # the Laplacian's passes ask one evaluation for the same B_r(y) again: the kernel runs once,
    # each node gets its own copy, and a changed operand (in place) is contracted anew
    loc, table, wb, y, z = sums_case(6, 20, 3, "silu", 5, torch.float64, 150)
    runs = []
    real = kan_mod._sums_backward
    monkeypatch.setattr(kan_mod, "_sums_backward", lambda *a: runs.append(1) or real(*a))
    first = kan_mod._SumsB.apply(y, loc.ht, table, wb, loc, 1)
    again = kan_mod._SumsB.apply(y, loc.ht, table, wb, loc, 1)
    assert len(runs) == 1 and torch.equal(first, again) and first.data_ptr() != again.data_ptr()
    kan_mod._SumsB.apply(y, loc.ht, table, wb, loc, 2)  # another order: a new contraction
    assert len(runs) == 2
    y.mul_(2.0)
    changed = kan_mod._SumsB.apply(y, loc.ht, table, wb, loc, 1)
    assert len(runs) == 3 and torch.allclose(changed, 2 * first, rtol=1e-13, atol=0)
