"""Which derivative path is faster for a whole PINN step: the model's forward jet or autograd?

For each (problem, model) the script builds the trainer of a real run (``kanpde.cli.compose``
with the row's overrides), then times one training step -- the full loss (residual and
conditions) and its backward pass -- on the forward path (``derivatives=forward``) and on
autograd (``derivatives=autograd``), interleaved, and prints the medians side by side with the
path ``derivatives=auto`` chooses for that pair.

    python benchmarks/bench_derivative_paths.py                # 2 threads, 15 repeats
    python benchmarks/bench_derivative_paths.py --threads 1 --repeats 7
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from kanpde.cli import build, compose
from kanpde.models import prepare_kernels
from kanpde.runtime import tune_allocator
from kanpde.training import Trainer

#: (label, overrides): the problem and model of a row
ROWS = (
    ("burgers1d, MLP [2,32,32,32,1]", ["problem=burgers1d", "sampler.n_interior=8000", "model=mlp"]),
    ("burgers1d, MLP + Fourier features", ["problem=burgers1d", "sampler.n_interior=8000", "model=mlp_fourier"]),
    ("burgers1d, KAN [2,10,10,1]", ["problem=burgers1d", "sampler.n_interior=8000", "model=kan",
                                    "model.hidden=[10,10]"]),
    ("poisson2d_paper, MLP [2,32,32,32,1]", ["problem=poisson2d_paper", "sampler.n_interior=8000", "model=mlp"]),
    ("poisson_nd d=3, MLP [3,32,32,32,1]", ["problem=poisson_nd", "problem.dim=3", "sampler.n_interior=8000",
                                            "model=mlp"]),
    ("poisson_nd d=3, KAN [3,8,8,1]", ["problem=poisson_nd", "problem.dim=3", "sampler.n_interior=8000",
                                       "model=kan", "model.hidden=[8,8]"]),
)


def trainer_for(overrides: list[str], derivatives: str) -> Trainer:
    cfg = compose([*overrides, f"derivatives={derivatives}", "progress=false", "plots=false"])
    problem, model, options = build(cfg)
    trainer = Trainer(problem, model, options)
    prepare_kernels(model, trainer.device)
    trainer.model.to(device=trainer.device, dtype=trainer.dtype)
    trainer.resample(0)
    trainer._probe_derivative_path()
    return trainer


def step_ms(trainer: Trainer) -> float:
    t0 = time.perf_counter()
    trainer.model.zero_grad(set_to_none=True)
    loss, _ = trainer.loss()
    loss.backward()
    return 1e3 * (time.perf_counter() - t0)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    if args.threads < 1 or args.repeats < 1:
        ap.error("--threads and --repeats must be >= 1")
    torch.set_num_threads(args.threads)
    tune_allocator()
    print(f"# bench_derivative_paths: float64, {args.threads} threads, median of {args.repeats} steps "
          f"(loss + backward), torch {torch.__version__}")
    print("| problem, model | points | forward jet ms | autograd ms | jet / autograd | auto takes |")
    print("|---|---|---|---|---|---|")
    for label, overrides in ROWS:
        paths = {d: trainer_for(overrides, d) for d in ("forward", "autograd", "auto")}
        times: dict[str, list[float]] = {"forward": [], "autograd": []}
        for d in times:
            step_ms(paths[d])  # warm-up
        for _ in range(args.repeats):  # interleaved: both paths see the same machine state
            for d in times:
                times[d].append(step_ms(paths[d]))
        fwd, ag = statistics.median(times["forward"]), statistics.median(times["autograd"])
        n = paths["forward"].collocation.shape[0]
        print(f"| {label} | {n} | {fwd:.1f} | {ag:.1f} | {fwd / ag:.2f} | {paths['auto']._derivative_path()} |",
              flush=True)


if __name__ == "__main__":
    main()
