"""The problem zoo solved by a KAN and an MLP, each with its own recipe, at a fixed training time.

Every built-in problem (``conf/problem/*.yaml``) runs through the ``kanpde`` engine (configs
composed from conf/ with the row's overrides) once per model family for the problem's budget of
training time (``stop.max_time_s``), and the script prints a markdown table: problem, model,
parameters, final relative L2 and H1 errors, wall time, and the best published number for the
problem where one exists.  Each family's recipe per problem is in ``RECIPES`` (the family's
model, its optimiser and the training methods that problem needs); the better of the two is
the problem's ``conf/experiment/<name>.yaml``.

    python benchmarks/zoo.py                                  # every problem, both families
    python benchmarks/zoo.py --problems helmholtz2d,kovasznay --families kan
    python benchmarks/zoo.py --scale 0.25                     # a quarter of every budget
"""
from __future__ import annotations

import argparse
import math
import time

import torch

from kanpde.cli import build, compose
from kanpde.training import solve

HARD = "methods.hard_constraints=true"
LBFGS_LONG = "optim.stages.2.steps=1000000"  # the default L-BFGS recipe, its last stage until the budget ends


def mlp(*extra: str) -> list[str]:
    return ["model=mlp", LBFGS_LONG, *extra]


def kan(*extra: str) -> list[str]:
    return ["model=kan", LBFGS_LONG, *extra]


#: problem -> (training seconds per family, the problem's overrides, {family: recipe overrides},
#: best published rel_l2 with its source, or None)
RECIPES: dict[str, tuple[float, list[str], dict[str, list[str]], str | None]] = {
    "poisson2d_paper": (60, [], {"kan": kan(HARD), "mlp": mlp(HARD)}, None),
    "poisson_lshape": (60, [], {"kan": kan(HARD), "mlp": mlp(HARD)}, None),
    "poisson_disk": (60, [], {"kan": kan(), "mlp": mlp()}, None),
    "poisson_nd": (120, ["problem.dim=5"], {"kan": kan(HARD, "model.hidden=[10]"), "mlp": mlp(HARD)}, None),
    "poisson_nd_10": (120, ["problem=poisson_nd", "problem.dim=10"],
                      {"kan": kan(HARD, "model.hidden=[10]"), "mlp": mlp(HARD)}, None),
    "helmholtz2d": (300, ["sampler.n_interior=6000"],
                    {"kan": kan(HARD, "model.hidden=[10,10]"), "mlp": mlp(HARD, "model.hidden=[64,64,64]")},
                    "1.0e-3 (adaptive PIKAN, arXiv 2407.17611)"),
    "advection1d": (300, ["sampler.n_interior=6000"],
                    {"kan": kan(HARD, "model.hidden=[10,10]", "model.features={kind:periodic,n_harmonics:1}"),
                     "mlp": mlp(HARD, "model.features={kind:periodic,n_harmonics:1}")}, None),
    "burgers1d": (300, ["sampler.n_interior=8000"],
                  {"kan": kan(HARD, "model.hidden=[10,10]"),
                   "mlp": mlp(HARD, "model.features={kind:fourier,n_frequencies:32,scale:1.0}")},
                  "6.7e-4 (Raissi et al. 2019); 1.4e-2 (PINNacle, arXiv 2306.08827)"),
    "wave1d": (300, ["sampler.n_interior=6000"],
               {"kan": kan(HARD, "model.hidden=[10,10]"), "mlp": mlp(HARD, "model.hidden=[64,64,64]")}, None),
    "allen_cahn1d": (600, ["sampler.n_interior=8000"],
                     {"kan": kan(HARD, "model.hidden=[10,10]", "model.features={kind:periodic,n_harmonics:1}"),
                      "mlp": mlp(HARD, "model.features={kind:periodic,n_harmonics:1}")},
                     "1.4e-2 (adaptive PIKAN, arXiv 2407.17611); 5e-5 (MLP PINN, arXiv 2308.08468)"),
    "klein_gordon1d": (300, ["sampler.n_interior=6000"],
                       {"kan": kan(HARD, "model.hidden=[10,10]"), "mlp": mlp(HARD)}, None),
    "kovasznay": (300, ["sampler.n_interior=4000"],
                  {"kan": kan("model.hidden=[10,10]"), "mlp": mlp()}, None),
    "stokes2d": (300, ["sampler.n_interior=4000"],
                 {"kan": kan("model.hidden=[10,10]"), "mlp": mlp()}, None),
    "fit_bessel": (30, [], {"kan": kan("model.hidden=[5]"), "mlp": mlp()}, None),
    "fit_exp_sin": (30, [], {"kan": kan("model.hidden=[5]"), "mlp": mlp()}, None),
    "fit_product": (30, [], {"kan": kan("model.hidden=[2]"), "mlp": mlp()}, None),
    "fit_highdim": (120, ["sampler.n_interior=4000", "eval.n_points=4000"],
                    {"kan": kan("model.hidden=[1]"), "mlp": mlp()}, None),
}


def problem_overrides(name: str) -> list[str]:
    """The row's problem selection and settings (a row name may set the problem itself)."""
    extra = RECIPES[name][1]
    return extra if any(o.startswith("problem=") for o in extra) else [f"problem={name}", *extra]


def run(overrides: list[str], budget_s: float) -> dict:
    cfg = compose([*overrides, "progress=false", "plots=false", "eval.every=200",
                   f"stop.max_time_s={budget_s}"])
    problem, model, options = build(cfg)
    t0 = time.perf_counter()
    result = solve(problem, model, options=options, plots=False)
    return {"rel_l2": result.metrics["rel_l2"], "rel_h1": result.metrics["rel_h1"], "params": result.n_params,
            "wall": time.perf_counter() - t0, "steps": int(result.history["step"][-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--problems", default=",".join(RECIPES), help="comma-separated, of " + ",".join(RECIPES))
    ap.add_argument("--families", default="kan,mlp")
    ap.add_argument("--scale", type=float, default=1.0, help="factor on every problem's training time")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for flag, value, known in (("--problems", args.problems, RECIPES), ("--families", args.families, ("kan", "mlp"))):
        bad = [v for v in value.split(",") if v not in known]
        if bad:
            ap.error(f"{flag}: unknown {bad}; choose from {','.join(known)}")
    if not (args.scale > 0 and math.isfinite(args.scale)):
        ap.error(f"--scale must be a finite number > 0, got {args.scale}")
    torch.set_num_threads(args.threads)
    print(f"# benchmarks/zoo.py: float64, {args.threads} threads, budgets x {args.scale:g}, torch {torch.__version__}")
    print("| problem | model | params | rel_l2 | rel_h1 | budget s | wall s | steps | published |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.problems.split(","):
        budget, _, families, published = RECIPES[name]
        for family in args.families.split(","):
            try:
                out = run([*problem_overrides(name), *families[family]], budget * args.scale)
            except Exception as exc:  # a failed row is a result too
                print(f"| {name} | {family} | - | failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]} "
                      f"| - | - | - | - | {published or '-'} |", flush=True)
                continue
            print(f"| {name} | {family} | {out['params']} | {out['rel_l2']:.2e} | {out['rel_h1']:.2e} | "
                  f"{budget * args.scale:.0f} | {out['wall']:.0f} | {out['steps']} | {published or '-'} |", flush=True)


if __name__ == "__main__":
    main()
