"""Training methods on hard PDEs, each switched on alone, for a KAN and an MLP at equal training time.

Viscous Burgers (``burgers1d``, nu = 0.01/pi, reference: Cole-Hopf by Gauss-Hermite quadrature)
and Allen-Cahn (``allen_cahn1d``, reference: Fourier pseudo-spectral ETDRK4), both from
``kanpde.reference``.  Every row runs the ``kanpde`` engine (configs composed from conf/ with
the row's overrides) for the same training-time budget (``stop.max_time_s``) and reports the
final relative L2 error, the best one seen at an evaluation and the steps taken.  Each family
starts from its own plain recipe (``FAMILIES``: the default L-BFGS recipe with a long last
stage); a row adds one method, the last row the combination the experiments
(``conf/experiment/*.yaml``) use.  ``python benchmarks/methods.py --experiments`` instead runs
each experiment as ``kanpde +experiment=<name>`` does, with its own budget.

    python benchmarks/methods.py                          # everything, 120 s per row
    python benchmarks/methods.py --problems burgers1d --families mlp --budget 60
    python benchmarks/methods.py --rows plain,hard        # only some rows
"""
from __future__ import annotations

import argparse
import math

import torch

from kanpde.cli import build, compose
from kanpde.training import solve

#: each family's plain recipe per problem: the model and its optimiser, no training method
FAMILIES = {
    "kan": {"burgers1d": ["model=kan", "model.hidden=[10,10]", "optim.stages.2.steps=100000"],
            "allen_cahn1d": ["model=kan", "model.hidden=[10,10]", "optim.stages.2.steps=100000"]},
    "mlp": {"burgers1d": ["model=mlp", "optim.stages.2.steps=100000"],
            "allen_cahn1d": ["model=mlp", "optim.stages.2.steps=100000"]},
}

#: the methods, one per row (the switch each adds to the plain recipe)
ROWS = {
    "plain": [],
    "hard": ["methods.hard_constraints=true"],
    "rar": ["methods.sampling.method=rar", "methods.sampling.every=500", "methods.sampling.pool=20000",
            "methods.sampling.n_add=500"],
    "rad": ["methods.sampling.method=rad", "methods.sampling.every=500", "methods.sampling.pool=40000"],
    "gradnorm": ["methods.balancing.method=gradnorm", "methods.balancing.every=100"],
    "rba": ["methods.balancing.method=rba", "methods.balancing.every=200"],
    "causal": ["methods.causal.enabled=true", "methods.causal.chunks=16", "methods.causal.eps=1.0",
               "methods.causal.every=200"],
    "features": None,  # per problem: Fourier features for Burgers, the periodic embedding for Allen-Cahn
    "combined": None,  # the features and hard constraints together (the experiments' recipe)
}
FEATURES = {"burgers1d": ["model.features={kind:fourier,n_frequencies:32,scale:1.0}"],
            "allen_cahn1d": ["model.features={kind:periodic,n_harmonics:1}"]}


def row_overrides(row: str, problem: str) -> list[str]:
    if row == "features":
        return FEATURES[problem]
    if row == "combined":
        return [*FEATURES[problem], *ROWS["hard"]]
    return ROWS[row]

#: every problem's collocation and evaluation settings
PROBLEMS = {"burgers1d": ["problem=burgers1d", "sampler.n_interior=8000", "sampler.n_boundary=400"],
            "allen_cahn1d": ["problem=allen_cahn1d", "sampler.n_interior=8000", "sampler.n_boundary=400"]}

#: the experiments (conf/experiment/<name>.yaml) that --experiments runs
EXPERIMENTS = ("burgers1d", "allen_cahn1d", "poisson2d_paper")


def run(overrides: list[str], budget_s: float) -> dict:
    cfg = compose([*overrides, "progress=false", "plots=false", "eval.every=100", "eval.n_points=10000",
                   f"stop.max_time_s={budget_s}"])
    problem, model, options = build(cfg)
    result = solve(problem, model, options=options, plots=False)
    h = result.history
    return {"rel_l2": result.metrics["rel_l2"], "best": float(min(h["rel_l2"])), "steps": int(h["step"][-1]),
            "params": result.n_params}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--budget", type=float, default=120.0, help="training seconds per row")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--problems", default="burgers1d,allen_cahn1d")
    ap.add_argument("--families", default="kan,mlp")
    ap.add_argument("--rows", default=",".join(ROWS), help=f"comma-separated, of {','.join(ROWS)}")
    ap.add_argument("--experiments", nargs="?", const=",".join(EXPERIMENTS), default=None, metavar="NAMES",
                    help=f"run conf/experiment/<name>.yaml with its own budget (default: {','.join(EXPERIMENTS)})")
    args = ap.parse_args()
    if args.experiments is not None:
        bad = [v for v in args.experiments.split(",") if v not in EXPERIMENTS]
        if bad:
            ap.error(f"--experiments: unknown {bad}; choose from {','.join(EXPERIMENTS)}")
        torch.set_num_threads(args.threads)
        print("| experiment | model | params | budget s | rel_l2 | best rel_l2 | steps |")
        print("|---|---|---|---|---|---|---|")
        for name in args.experiments.split(","):
            cfg = compose([f"+experiment={name}", "progress=false", "plots=false"])
            problem, model, options = build(cfg)
            res = solve(problem, model, options=options, plots=False)
            h = res.history
            print(f"| {name} | {res.summary().split('model=')[1].split(' ')[0]} | {res.n_params} | "
                  f"{options.stop.max_time_s:.0f} | {res.metrics['rel_l2']:.2e} | {min(h['rel_l2']):.2e} | "
                  f"{int(h['step'][-1])} |", flush=True)
        return
    picked = {"--problems": (args.problems, PROBLEMS), "--families": (args.families, FAMILIES),
              "--rows": (args.rows, ROWS)}
    for flag, (value, known) in picked.items():
        bad = [v for v in value.split(",") if v not in known]
        if bad:
            ap.error(f"{flag}: unknown {bad}; choose from {','.join(known)}")
    torch.set_num_threads(args.threads)
    print(f"# benchmarks/methods.py: float64, {args.threads} threads, {args.budget:.0f} s training time per row, "
          f"torch {torch.__version__}")
    print("| problem | model | method | params | rel_l2 | best rel_l2 | steps |")
    print("|---|---|---|---|---|---|---|")
    for problem in args.problems.split(","):
        for family in args.families.split(","):
            for row in args.rows.split(","):
                try:
                    out = run([*PROBLEMS[problem], *FAMILIES[family][problem], *row_overrides(row, problem)],
                              args.budget)
                except Exception as exc:  # a diverged or failed row is a result too
                    print(f"| {problem} | {family} | {row} | - | failed: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0][:80]} | - | - |", flush=True)
                    continue
                fmt = (lambda v: "nan" if math.isnan(v) else f"{v:.2e}")
                print(f"| {problem} | {family} | {row} | {out['params']} | {fmt(out['rel_l2'])} | {fmt(out['best'])} "
                      f"| {out['steps']} |", flush=True)


if __name__ == "__main__":
    main()
