"""The problem zoo solved by a KAN and an MLP, each with its own recipe, at a fixed training time.

Every built-in problem (``conf/problem/*.yaml``) runs through the ``kanpde`` engine once per
model family for the problem's budget of training time (``stop.max_time_s``), and the script
prints a markdown table: problem, model, parameters, final relative L2 and H1 errors, wall time,
and the best published number for the problem where one exists.  Each family's recipe per
problem (the family's model, its optimiser, the training methods that problem needs and the
budget) is a config file,
``conf/zoo/<row>_<family>.yaml`` (``kanpde +zoo=wave1d_mlp`` runs one; the sweep
``kanpde -m +experiment=zoo_kan_vs_mlp`` runs them all with 3 seeds); the better of the two is
the problem's ``conf/experiment/<name>.yaml``.

    python benchmarks/zoo.py                                  # every problem, both families
    python benchmarks/zoo.py --problems helmholtz2d,kovasznay --families kan
    python benchmarks/zoo.py --scale 0.25                     # a quarter of every budget
"""
from __future__ import annotations

import argparse
import math
import time
from pathlib import Path

import torch

from kanpde.cli import build, compose, config_dir
from kanpde.training import solve

#: zoo rows with a published result to compare with: the best rel_l2 we know of, with its source
PUBLISHED = {
    "helmholtz2d": "1.0e-3 (adaptive PIKAN, arXiv 2407.17611)",
    "burgers1d": "6.7e-4 (Raissi et al. 2019); 1.4e-2 (PINNacle, arXiv 2306.08827)",
    "allen_cahn1d": "1.4e-2 (adaptive PIKAN, arXiv 2407.17611); 5e-5 (MLP PINN, arXiv 2308.08468)",
}
FAMILIES = ("kan", "mlp")


def zoo_rows() -> dict[str, list[str]]:
    """Row name -> the families it has a recipe for, from the files conf/zoo/<row>_<family>.yaml."""
    rows: dict[str, list[str]] = {}
    for path in sorted((Path(config_dir()) / "zoo").glob("*.yaml")):
        row, _, family = path.stem.rpartition("_")
        if family in FAMILIES:
            rows.setdefault(row, []).append(family)
    return rows


def run(row: str, family: str, scale: float) -> dict:
    """Train one recipe for its budget times ``scale``; the final errors, size, time and steps."""
    budget = compose([f"+zoo={row}_{family}"]).stop.max_time_s * scale
    cfg = compose([f"+zoo={row}_{family}", "progress=false", "plots=false", "eval.every=200",
                   f"stop.max_time_s={budget}"])
    problem, model, options = build(cfg)
    t0 = time.perf_counter()
    result = solve(problem, model, options=options, plots=False)
    return {"rel_l2": result.metrics["rel_l2"], "rel_h1": result.metrics["rel_h1"], "params": result.n_params,
            "budget": budget, "wall": time.perf_counter() - t0, "steps": int(result.history["step"][-1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    rows = zoo_rows()
    ap.add_argument("--problems", default=",".join(rows), help="comma-separated, of " + ",".join(rows))
    ap.add_argument("--families", default=",".join(FAMILIES))
    ap.add_argument("--scale", type=float, default=1.0, help="factor on every problem's training time")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    for flag, value, known in (("--problems", args.problems, rows), ("--families", args.families, FAMILIES)):
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
        published = PUBLISHED.get(name, "-")
        for family in args.families.split(","):
            if family not in rows[name]:
                continue
            try:
                out = run(name, family, args.scale)
            except Exception as exc:  # a failed row is a result too
                print(f"| {name} | {family} | - | failed: {type(exc).__name__}: {str(exc).splitlines()[0][:80]} "
                      f"| - | - | - | - | {published} |", flush=True)
                continue
            print(f"| {name} | {family} | {out['params']} | {out['rel_l2']:.2e} | {out['rel_h1']:.2e} | "
                  f"{out['budget']:.0f} | {out['wall']:.0f} | {out['steps']} | {published} |", flush=True)


if __name__ == "__main__":
    main()
