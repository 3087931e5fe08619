"""Time-to-accuracy on the KAN paper's Poisson problem, KAN vs MLP, in one process.

For each configuration it runs the same engine as the `kanpde` command (configs composed from
conf/ with the given overrides) and reports, from the run's own history (training time only,
evaluation excluded):

- seconds until rel_l2 <= 1e-2 and <= 1e-3 (or "-" if never reached),
- rel_l2 and rel_h1 after the fixed budget,
- the ratio of times to 1e-3 between the forward-derivative and the autograd path.

    python benchmarks/bench_poisson.py            # full table (a few minutes per row)
    python benchmarks/bench_poisson.py --quick    # shorter budgets, for a smoke check
"""
from __future__ import annotations

import argparse
import math

import torch

from kanpde.cli import build, compose
from kanpde.training import solve

ROWS = [
    ("KAN [2,10,1] (default run)", []),
    ("KAN [2,10,1], derivatives=autograd", ["derivatives=autograd"]),
    ("MLP [2,32,32,32,1] tanh", ["model=mlp"]),
    ("MLP [2,100,100,100,100,1] tanh (paper's MLP)", ["model=mlp", "model.hidden=[100,100,100,100]"]),
    ("ChebyKAN [2,10,1]", ["model=chebykan"]),
]


def first_time_below(history, threshold):
    for t, e in zip(history["time_s"], history["rel_l2"]):
        if e <= threshold:
            return float(t)
    return math.nan


def run(overrides, budget_s, eval_every):
    cfg = compose([*overrides, "progress=false", f"eval.every={eval_every}", f"stop.max_time_s={budget_s}",
                   "eval.n_points=4096"])
    problem, model, options = build(cfg)
    result = solve(problem, model, options=options, plots=False)
    return result


def fmt(t):
    return "-" if math.isnan(t) else f"{t:.1f}"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="30 s budget per row instead of 120 s")
    ap.add_argument("--budget", type=float, default=None, help="training seconds per row")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--rows", type=str, default=None,
                    help="comma-separated row numbers to run (0-based, in the table's order; default: all)")
    args = ap.parse_args()
    try:
        rows = ROWS if args.rows is None else [ROWS[int(i)] for i in args.rows.split(",")]
    except (ValueError, IndexError):
        ap.error(f"--rows must be comma-separated numbers in 0..{len(ROWS) - 1}, got {args.rows!r}")
    torch.set_num_threads(args.threads)
    budget = args.budget or (30.0 if args.quick else 120.0)
    print(f"# bench_poisson: paper's Poisson problem, float64, {args.threads} threads, "
          f"budget {budget:.0f} s training time per row, torch {torch.__version__}")
    print("| model | params | t(rel_l2<=1e-2) s | t(rel_l2<=1e-3) s | rel_l2 | rel_h1 | steps |")
    print("|---|---|---|---|---|---|---|")
    times = {}
    for label, overrides in rows:
        res = run(overrides, budget, eval_every=10)
        h = res.history
        t2, t3 = first_time_below(h, 1e-2), first_time_below(h, 1e-3)
        times[label] = t3
        print(f"| {label} | {res.n_params} | {fmt(t2)} | {fmt(t3)} | {res.metrics['rel_l2']:.2e} | "
              f"{res.metrics['rel_h1']:.2e} | {int(h['step'][-1])} |", flush=True)
    fwd, auto = times.get(ROWS[0][0], math.nan), times.get(ROWS[1][0], math.nan)
    if not (math.isnan(fwd) or math.isnan(auto)):
        print(f"\nspeed-up to rel_l2 <= 1e-3, forward path vs autograd: {auto / fwd:.2f}x")


if __name__ == "__main__":
    main()
