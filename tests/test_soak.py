"""Kill-and-resume soak (slow): runs killed with SIGKILL at random moments -- during a step, an
evaluation, a checkpoint write or the results write -- and resumed end up bit-identical to the
uninterrupted run (CPU).  Run with ``python -m pytest -m slow tests/test_soak.py``."""
from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from tests.test_cli import ROOT, read, run_cli

# a run of a few seconds that checkpoints often (every evaluation)
ARGS = ["problem=poisson2d_sin", "model.hidden=[4]", "optim=lbfgs",
        "optim.stages=[{optimizer:lbfgs,steps:60,lr:1.0},{optimizer:lbfgs,steps:60,lr:1.0,grid_factor:2}]",
        "sampler.n_interior=400", "sampler.n_boundary=50", "eval.n_points=900", "eval.every=4",
        "progress=false", "plots=false"]
KILLS = 20


def outcome(folder):
    attrs, metrics, history, field = read(folder / "results.h5")
    keep = {k: v for k, v in history.items() if k != "time_s"}
    return metrics, keep, field["u_pred"], attrs["steps"]


@pytest.mark.slow
def test_killed_runs_resume_bit_identically(tmp_path):
    reference = tmp_path / "reference"
    t0 = time.perf_counter()
    run_cli([*ARGS, f"hydra.run.dir={reference}"])
    duration = time.perf_counter() - t0
    ref_metrics, ref_history, ref_u, ref_steps = outcome(reference)
    rng = random.Random(0)
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    identical = resumed = killed = 0
    for i in range(KILLS):
        folder = tmp_path / f"run{i}"
        proc = subprocess.Popen([sys.executable, "-m", "kanpde", *ARGS, f"hydra.run.dir={folder}"], cwd=ROOT, env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        # kill at a random moment of the training itself: after the first checkpoint (the
        # interpreter's start-up is no test of resuming), before the run would have ended
        started = time.perf_counter()
        while not (folder / "checkpoint.pt").exists() and proc.poll() is None:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, max(0.2, duration - (time.perf_counter() - started))))
        proc.send_signal(signal.SIGKILL)
        killed += proc.wait() == -signal.SIGKILL  # not already finished
        if (folder / "checkpoint.pt").exists():
            run_cli([*ARGS, f"hydra.run.dir={folder}", "resume=true"])
            resumed += 1
        else:  # killed before the first checkpoint: nothing to resume, start again
            run_cli([*ARGS, f"hydra.run.dir={folder}", "overwrite=true"])
        metrics, history, u, steps = outcome(folder)
        assert steps == ref_steps
        assert metrics == ref_metrics, i
        assert history.keys() == ref_history.keys()
        for k in history:
            np.testing.assert_array_equal(history[k], ref_history[k], err_msg=f"run {i}: history/{k}")
        np.testing.assert_array_equal(u, ref_u)
        identical += 1
    print(f"soak: {identical}/{KILLS} identical; {killed} killed mid-run, {resumed} resumed from a checkpoint")
    assert identical == KILLS and killed >= KILLS // 2
