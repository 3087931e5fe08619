"""What a wide KAN layer costs at least, next to an MLP step (why [2,32,32,1] stays far above 6x).

A cubic-spline KAN layer ``in -> out`` does ``in * out * (k + 1)`` multiply-adds per point and
channel, four times an MLP layer's ``in * out``, and the table rows it reads depend on each
point's knot interval, so the product is a sparse-times-dense one rather than a dense matrix
product.  This script times, in one process, float64, one thread:

- the MLP [2, 32, 32, 1] tanh PINN step (nested autograd), the reference of the targets;
- the single sparse-times-dense product of the 32x32 KAN layer's forward jet (value, 2 gradient
  and 2 Hessian channels: ``5 N`` rows, ``32 * 4`` nonzeros each, MKL CSR through
  ``torch.sparse.mm``), the fastest sparse product torch offers on CPU;
- a dense product with the same number of multiply-adds (the best case for that many).

A forward-path step needs this product and its two adjoints (to the table and to the channel
values), so three of them are a lower bound for the layer alone.

    python benchmarks/bench_wide_layer.py
    python benchmarks/bench_wide_layer.py --n 2048
"""
from __future__ import annotations

import argparse
import pathlib
import statistics
import sys
import time
import warnings

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from kanpde.models.mlp import MLP  # noqa: E402
from kanpde.runtime import tune_allocator  # noqa: E402


def median_ms(fn, repeats: int = 7) -> float:
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return 1e3 * statistics.median(times)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=16384, help="points per step")
    ap.add_argument("--grid", type=int, default=5, help="KAN grid size G (table rows: 32 * G * 4)")
    args = ap.parse_args(argv)
    torch.set_num_threads(1)
    tune_allocator()
    n, width, k1, channels, g = args.n, 32, 4, 5, args.grid
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(n, 2, generator=gen, dtype=torch.float64) * 2 - 1
    f = torch.rand(n, generator=gen, dtype=torch.float64)
    mlp = MLP([2, width, width, 1], activation="tanh", dtype=torch.float64)

    def mlp_step():
        xx = x.detach().requires_grad_(True)
        u = mlp(xx)
        (gr,) = torch.autograd.grad(u.sum(), xx, create_graph=True)
        lap = sum(torch.autograd.grad(gr[:, j].sum(), xx, create_graph=True)[0][:, j] for j in range(2))
        mlp.zero_grad(set_to_none=True)
        ((lap - f) ** 2).mean().backward()

    rows, nnz_row = n * channels, width * k1
    blk = torch.randint(0, g, (n, width), generator=gen) + torch.arange(width) * g
    col = (blk.unsqueeze(-1) * k1 + torch.arange(k1)).reshape(n, 1, nnz_row).expand(n, channels, nnz_row)
    col = col.reshape(-1).to(torch.int32)
    crow = torch.arange(0, rows * nnz_row + 1, nnz_row, dtype=torch.int32)
    vals = torch.randn(rows * nnz_row, generator=gen, dtype=torch.float64)
    table = torch.randn(width * g * k1, width, generator=gen, dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "sparse CSR support is in beta"
        a = torch.sparse_csr_tensor(crow, col, vals, size=(rows, table.shape[0]))
    dense = torch.randn(rows, nnz_row, generator=gen, dtype=torch.float64)
    weight = torch.randn(nnz_row, width, generator=gen, dtype=torch.float64)

    t_mlp = median_ms(mlp_step)
    t_csr = median_ms(lambda: torch.sparse.mm(a, table))
    t_gemm = median_ms(lambda: dense @ weight)
    print(f"N = {n}, G = {g}, float64, one thread, torch {torch.__version__}")
    print(f"MLP [2,32,32,1] tanh PINN step (nested autograd):     {t_mlp:8.1f} ms")
    print(f"32x32 KAN layer jet product, CSR ({rows * nnz_row / 1e6:.1f}M nonzeros):    {t_csr:8.1f} ms"
          f"   = {t_csr / t_mlp:.2f} x the MLP step")
    print(f"dense product, same multiply-adds:                   {t_gemm:8.1f} ms   = {t_gemm / t_mlp:.2f} x")
    print(f"lower bound of a forward-path step's wide layer (3 products): {3 * t_csr / t_mlp:.1f} x the MLP step "
          f"(sparse), {3 * t_gemm / t_mlp:.1f} x (if it were dense)")


if __name__ == "__main__":
    main()
