"""Cost of one PINN training step: B-spline KAN vs ChebyKAN vs MLP, autograd vs forward jets.

One step = evaluate the network on ``N`` points in 2-D or 10-D, form the Laplacian, the loss
``mean((lap u - f)^2)`` and backpropagate to the parameters, in float64.  Two ways to get the
Laplacian are timed side by side:

- ``autograd``: ``u = model(x)``, then nested ``torch.autograd.grad`` with ``create_graph=True``
  (gradient, then one more pass per input dimension for the Hessian diagonal);
- ``forward``: ``model.forward_jet(x, order=2)`` propagates value, gradient and Hessian diagonal
  through the layers in closed form; ``lap = hess_diag.sum(-1)``.

Every time is the median of several repeats after a warm-up, with one thread and with torch's
default thread count.  Ratios printed: KAN (and ChebyKAN) over the MLP of the same widths
(same derivative path, and forward path over the MLP's autograd step), ``t(G=100) / t(G=5)``
for the KAN, and forward over autograd.  The last output is a markdown table for the README.

    python benchmarks/bench_models.py            # full run (a few minutes)
    python benchmarks/bench_models.py --quick    # N = 2048, one thread, fewer repeats
    python benchmarks/bench_models.py --stat min # minimum instead of median (busy machines)
"""
from __future__ import annotations

import argparse
import importlib
import pathlib
import statistics
import sys
import tempfile
import time

import torch

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled
from kanpde.models.kan import KAN  # noqa: E402
from kanpde.runtime import tune_allocator  # noqa: E402

#: 2-D (the paper's Poisson problem) and 10-D (poisson_nd with dim=10) widths
# 2-D and 3-D (the KAN [3,8,8,1] and MLP [3,32,32,32,1] of a 3-D Poisson run), and 10-D
WIDTHS = ([2, 10, 1], [2, 32, 32, 1], [3, 8, 8, 1], [3, 32, 32, 32, 1], [10, 10, 1], [10, 32, 32, 1])
GRIDS = (5, 20, 100)
CHEBY_DEGREE = 8


def optional(module: str, name: str):
    """A model class written elsewhere in the package, or ``None`` if it is not there yet."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


#: pykan rows are skipped above this many B-spline values per step (N * width * (G + k)): the
#: reference implementation evaluates every B-spline of the grid for every input
PYKAN_MAX_BASIS = 4_000_000


def pykan_model(widths: list[int], grid: int):
    """The KAN paper's reference implementation (``pip install -e ".[bench]"``) with the same
    widths, grid and spline order, in its fastest configuration (``speed()``: no symbolic branch,
    no saved activations), float64; ``None`` if pykan is not installed."""
    try:
        from kan import KAN as PyKAN
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as ckpt:  # pykan may write checkpoints; keep them out of the tree
        model = PyKAN(width=list(widths), grid=grid, k=3, seed=0, auto_save=False, save_act=False,
                      symbolic_enabled=False, ckpt_path=ckpt)
    model.speed()
    return model.to(torch.float64)


def models(widths: list[int], grids, n: int = 0) -> list[tuple[str, torch.nn.Module]]:
    out = [(f"KAN G={g}", KAN(widths, grid_size=g, dtype=torch.float64, seed=0)) for g in grids]
    for g in grids:
        if n * max(widths) * (g + 3) <= PYKAN_MAX_BASIS:
            ref = pykan_model(widths, g)
            if ref is not None:
                out.append((f"pykan G={g}", ref))
    cheby = optional("kanpde.models.chebykan", "ChebyKAN")
    if cheby is not None:
        out.append((f"ChebyKAN D={CHEBY_DEGREE}", cheby(widths, degree=CHEBY_DEGREE, dtype=torch.float64)))
    mlp = optional("kanpde.models.mlp", "MLP")
    if mlp is not None:
        out.append(("MLP tanh", mlp(widths, activation="tanh", dtype=torch.float64)))
    return out


def autograd_step(model, x, f):
    x = x.detach().requires_grad_(True)
    u = model(x)
    (g,) = torch.autograd.grad(u.sum(), x, create_graph=True)
    lap = 0
    for j in range(x.shape[1]):
        lap = lap + torch.autograd.grad(g[:, j].sum(), x, create_graph=True)[0][:, j]
    loss = ((lap - f) ** 2).mean()
    model.zero_grad(set_to_none=True)
    loss.backward()


def forward_step(model, x, f):
    jet = model.forward_jet(x, order=2)
    lap = jet.hess_diag.sum(-1)[:, 0]
    loss = ((lap - f) ** 2).mean()
    model.zero_grad(set_to_none=True)
    loss.backward()


STAT = statistics.median


def median_ms(step, model, x, f, repeats: int) -> float:
    """Milliseconds per step: median (``--stat min``: minimum) of ``repeats`` after a warm-up."""
    step(model, x, f)  # warm-up (allocations, caches)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step(model, x, f)
        times.append(time.perf_counter() - t0)
    return 1e3 * STAT(times)


def run(ns, threads, grids, repeats):
    rows = []
    for nthreads in threads:
        torch.set_num_threads(nthreads)
        for widths in WIDTHS:
            for n in ns:
                gen = torch.Generator().manual_seed(0)
                x = torch.rand(n, widths[0], generator=gen, dtype=torch.float64) * 2 - 1
                f = torch.rand(n, generator=gen, dtype=torch.float64)
                # fewer repeats for the slow configurations keep the full run to minutes
                reps = repeats if n * max(widths) <= 2048 * 32 else max(3, repeats // 2)
                for name, model in models(widths, grids, n):
                    ta = median_ms(autograd_step, model, x, f, reps)
                    tf = median_ms(forward_step, model, x, f, reps) if hasattr(model, "forward_jet") else float("nan")
                    rows.append({"threads": nthreads, "widths": widths, "n": n, "model": name,
                                 "autograd": ta, "forward": tf})
                    print(f"threads={nthreads} widths={widths} N={n:6d} {name:14s} "
                          f"autograd {ta:9.2f} ms   forward {tf:9.2f} ms", flush=True)
    return rows


def table(rows, grids) -> str:
    def find(r, model):
        for s in rows:
            if (s["threads"], s["widths"], s["n"], s["model"]) == (r["threads"], r["widths"], r["n"], model):
                return s
        return None

    lines = ["| threads | widths | N | model | autograd ms | forward ms | forward / autograd "
             "| autograd / MLP | forward / MLP autograd | t(G=max) / t(G=min) autograd, forward |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    g_lo, g_hi = f"KAN G={min(grids)}", f"KAN G={max(grids)}"
    for r in rows:
        mlp = find(r, "MLP tanh")
        ratio_a = f"{r['autograd'] / mlp['autograd']:.1f}" if mlp else "-"
        ratio_f = f"{r['forward'] / mlp['autograd']:.1f}" if mlp else "-"
        gr = ""
        if r["model"] == g_hi and find(r, g_lo):
            lo = find(r, g_lo)
            gr = f"{r['autograd'] / lo['autograd']:.2f}, {r['forward'] / lo['forward']:.2f}"
        line = (f"| {r['threads']} | {r['widths']} | {r['n']} | {r['model']} | {r['autograd']:.1f} "
                f"| {r['forward']:.1f} | {r['forward'] / r['autograd']:.2f} | {ratio_a} | {ratio_f} | {gr} |")
        lines.append(line.replace("| nan ", "| - "))  # no forward path (pykan)
    return "\n".join(lines)


def reference_ratios(rows) -> str:
    """pykan's autograd step over kanpde's KAN autograd step, same widths, G, N and threads."""
    out = []
    for r in rows:
        if not r["model"].startswith("pykan G="):
            continue
        ours = [s for s in rows if (s["threads"], s["widths"], s["n"]) == (r["threads"], r["widths"], r["n"])
                and s["model"] == "KAN " + r["model"].split(" ", 1)[1]]
        if ours:
            out.append(f"threads={r['threads']} widths={r['widths']} N={r['n']} {r['model'].split(' ', 1)[1]}: "
                       f"pykan / kanpde KAN autograd step = {r['autograd'] / ours[0]['autograd']:.1f}x")
    return "\n".join(out)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N = 2048, one thread, G in {5, 100}, 3 repeats")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per configuration")
    parser.add_argument("--widths", default=None,
                        help="only these widths, e.g. '3,32,32,32,1;3,8,8,1' (default: all of WIDTHS)")
    parser.add_argument("--stat", choices=("median", "min"), default="median",
                        help="statistic over the repeats (min is steadier on a busy machine)")
    args = parser.parse_args(argv)
    global STAT, WIDTHS
    STAT = min if args.stat == "min" else statistics.median
    if args.widths:
        try:
            WIDTHS = tuple([int(w) for w in spec.split(",")] for spec in args.widths.split(";"))
        except ValueError:
            parser.error(f"--widths: expected integers like '3,32,32,32,1;3,8,8,1', got {args.widths!r}")
        if any(len(w) < 2 or min(w) < 1 for w in WIDTHS):
            parser.error(f"--widths: each entry needs at least two positive widths, got {args.widths!r}")
    default_threads = torch.get_num_threads()
    # the allocator settings kanpde.solve trains with (for every model alike)
    tuned = tune_allocator()
    if args.quick:
        ns, threads, grids, repeats = (2048,), (1,), (5, 100), 3
    else:
        ns, threads, grids, repeats = (2048, 16384), sorted({1, default_threads}), GRIDS, 7
    if args.repeats is not None:
        repeats = max(1, args.repeats)
    from kanpde.models.kan import kernel_status, load_kernels
    load_kernels()  # compiled CPU kernels of KAN layers: built (once) before timing
    print(f"torch {torch.__version__}, float64, CPU threads tested: {list(threads)}; {args.stat} of {repeats} "
          f"repeats (3+ for the slowest); allocator tuned: {tuned}; compiled jet kernel: {kernel_status()}")
    rows = run(ns, threads, grids, repeats)
    print()
    print(table(rows, grids))
    ref = reference_ratios(rows)
    if ref:
        print()
        print(ref)


if __name__ == "__main__":
    main()
