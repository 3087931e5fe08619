"""Weak scaling of data-parallel training (``torchrun``/``srun``, :mod:`kanpde.training.distributed`).

Weak scaling keeps the work per process fixed: ``N`` collocation points per process, so two
processes train on ``2N`` points.  Ideal weak scaling keeps the time per step constant; the
efficiency printed is ``t(1 process, N points) / t(2 processes, N points each)``.  Each
process uses one thread; the processes are started with ``torch.multiprocessing`` and join a
gloo process group through a file rendezvous, exactly as the trainer does under ``torchrun``.
Times are Adam steps (one loss and gradient each, so one all-reduce each), measured by the
trainer (its history's ``time_s``, evaluation excluded), best of ``--repeats`` runs.

For context, the same ``2N`` points are also timed in one process with one and with two
threads (the other way to use two cores), and the all-reduce of the gradient alone.

This machine has 2 cores: two processes are its limit, and they share its memory bandwidth and
caches, so the numbers here bound the overhead of the scheme (sharding, the all-reduce inside
the closure, rank 0's evaluation), not what several GPUs or nodes give.  For those the script
prints an estimate on paper: a ring all-reduce moves ``2 (p - 1) / p`` times the gradient's
bytes per process and step (about 2 x the parameter bytes), in ``2 (p - 1)`` latency-bound
hops.

    python benchmarks/weak_scaling.py                 # N = 4096 points per process, KAN [2,10,1]
    python benchmarks/weak_scaling.py --points 16384 --model mlp
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys
import tempfile
import time

import torch
import torch.multiprocessing as mp

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout, uninstalled

#: the estimate's interconnects: (name, bandwidth per GPU in bytes/s, latency per ring hop in s)
LINKS = (("NVLink (one node, 8 GPUs)", 100e9, 10e-6), ("InfiniBand HDR (8 nodes, 1 GPU each)", 25e9, 20e-6))


def _model(kind: str):
    import kanpde

    torch.manual_seed(0)
    return kanpde.KAN([2, 10, 1], grid_size=20) if kind == "kan" else kanpde.MLP([2, 64, 64, 64, 1])


def _run(points: int, steps: int, kind: str, out: pathlib.Path) -> tuple[float, int]:
    """Train ``steps`` Adam steps on the paper's Poisson problem with ``points`` collocation
    points in all; the trainer's training time per step and the parameter count."""
    import kanpde
    from kanpde.problems.poisson import PaperPoisson

    result = kanpde.solve(PaperPoisson(), _model(kind), output_dir=out, plots=False, progress=False, device="cpu",
                          dtype="float64", sampler={"n_interior": points, "n_boundary": max(points // 8, 16)},
                          eval={"every": steps, "n_points": 2500},
                          optim={"grid_update_every": 0, "stages": [{"optimizer": "adam", "steps": steps}]})
    # the trainer's clock at the last evaluation: training only (the slowest process's)
    return float(result.history["time_s"][-1]) / steps, result.n_params


def _worker(rank: int, world: int, threads: int, points: int, steps: int, kind: str, repeats: int,
            folder: str) -> None:
    import torch.distributed as dist

    from kanpde.training.distributed import shutdown

    torch.set_num_threads(threads)
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    times, n_params = [], 0
    for r in range(repeats):
        t, n_params = _run(points, steps, kind, pathlib.Path(folder) / f"run{r}")
        times.append(t)
    report = {"step_s": min(times), "n_params": n_params}
    if world > 1:  # the gradient's all-reduce alone
        buf = torch.zeros(n_params + 4, dtype=torch.float64)
        for _ in range(20):
            dist.all_reduce(buf)
        t0 = time.perf_counter()
        for _ in range(200):
            dist.all_reduce(buf)
        report["allreduce_s"] = (time.perf_counter() - t0) / 200
        shutdown()
    if rank == 0:
        (pathlib.Path(folder) / "report.json").write_text(json.dumps(report))


def measure(world: int, threads: int, points: int, steps: int, kind: str, repeats: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        mp.spawn(_worker, args=(world, threads, points, steps, kind, repeats, folder), nprocs=world, join=True)
        return json.loads((pathlib.Path(folder) / "report.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--points", type=int, default=4096, help="collocation points per process (N)")
    parser.add_argument("--steps", type=int, default=60, help="Adam steps per run")
    parser.add_argument("--model", choices=("kan", "mlp"), default="kan",
                        help="KAN [2,10,1] G=20 or MLP [2,64,64,64,1]")
    parser.add_argument("--repeats", type=int, default=3, help="runs per configuration (the best counts)")
    a = parser.parse_args()
    n = a.points
    rows = [("1 process x 1 thread, N points", 1, 1, n), ("2 processes x 1 thread, N points each", 2, 1, n),
            ("1 process x 1 thread, 2N points", 1, 1, 2 * n), ("1 process x 2 threads, 2N points", 1, 2, 2 * n)]
    print(f"weak scaling, {a.model.upper()}, N = {n} points per process, {a.steps} Adam steps, float64, best of "
          f"{a.repeats} (this machine: {torch.get_num_threads()} threads by default)")
    found = {}
    for label, world, threads, points in rows:
        found[label] = measure(world, threads, points if world == 1 else points * world, a.steps, a.model, a.repeats)
        print(f"  {label:<40} {1e3 * found[label]['step_s']:8.2f} ms/step", flush=True)
    t1, t2 = found[rows[0][0]]["step_s"], found[rows[1][0]]["step_s"]
    t_big1, t_big2 = found[rows[2][0]]["step_s"], found[rows[3][0]]["step_s"]
    n_params = found[rows[0][0]]["n_params"]
    allreduce = found[rows[1][0]]["allreduce_s"]
    print(f"weak-scaling efficiency (1 vs 2 processes, N each): {t1 / t2:.2f}")
    print(f"2N points: 2 processes are {t_big1 / t2:.2f}x one single-threaded process, "
          f"{t_big2 / t2:.2f}x one process with 2 threads")
    print(f"all-reduce of the gradient ({n_params} parameters, {8 * n_params} B): {1e6 * allreduce:.0f} us, "
          f"{100 * allreduce / t2:.1f} % of a 2-process step")
    print("caveat: 2 cores are this machine's limit; both processes share one memory bus, so this bounds the "
          "scheme's overhead, not multi-GPU scaling")
    print(f"\nestimate on paper for 8 GPUs (ring all-reduce of {8 * n_params} B of float64 gradient; "
          f"about 2 x {8 * n_params} B = {16 * n_params} B moved per GPU and step):")
    p = 8
    for name, bandwidth, latency in LINKS:
        t_comm = 2 * (p - 1) * latency + 2 * (p - 1) / p * 8 * n_params / bandwidth
        effs = ", ".join(f"{t_step * 1e3:g} ms -> {t_step / (t_step + t_comm):.3f}" for t_step in (1e-3, 1e-2, 1e-1))
        print(f"  {name}: {1e6 * t_comm:.0f} us per step; efficiency for a GPU step time of {effs}")
    print("  (assumed: 100 GB/s and 10 us per hop on NVLink, 25 GB/s and 20 us on InfiniBand; a kanpde network "
          "has thousands of parameters, so the all-reduce is latency-bound and the points per GPU decide)")


if __name__ == "__main__":
    main()
