"""A sweep goes on past a job that diverges or fails, records every job's outcome, and its exit
code says that some job did not complete."""
from __future__ import annotations

import csv

from kanpde.sweep_status import SWEEP_CSV, SWEEP_FAILED_EXIT
from tests.test_cli import FAST, read, run_cli


def sweep_rows(folder):
    with open(folder / SWEEP_CSV) as f:
        return sorted(csv.DictReader(f), key=lambda r: int(r["job"]))


def test_a_diverging_job_does_not_end_the_sweep(tmp_path):
    proc = run_cli(["-m", "problem=poisson1d", "optim=adam", "optim.stages.0.lr=1e-2,1e200,1e-3",
                    "optim.stages.0.steps=20", *FAST, f"hydra.sweep.dir={tmp_path}"], check=False)
    assert proc.returncode == SWEEP_FAILED_EXIT, proc.stderr
    rows = sweep_rows(tmp_path)
    assert [r["status"] for r in rows] == ["completed", "diverged", "completed"]
    assert "lr=1e+200" in rows[1]["overrides"] and "diverged" in rows[1]["message"]
    attrs, metrics, _, _ = read(tmp_path / rows[2]["folder"] / "results.h5")   # the job after it ran
    assert attrs["status"] == "completed" and float(rows[2]["rel_l2"]) == float(f"{metrics['rel_l2']:.6g}")
    assert "sweep of 3 jobs: 2 completed, 1 diverged, 0 failed" in proc.stdout.strip().splitlines()[-1]


def test_a_failing_job_is_recorded_and_the_rest_run(tmp_path):
    proc = run_cli(["-m", "problem=poisson1d", "sampler.n_interior=200,0,300", "optim=adam",
                    "optim.stages.0.steps=5", *FAST[1:], f"hydra.sweep.dir={tmp_path}"], check=False)
    assert proc.returncode == SWEEP_FAILED_EXIT, proc.stderr
    rows = sweep_rows(tmp_path)
    assert [r["status"] for r in rows] == ["completed", "failed", "completed"]
    assert "n_interior" in rows[1]["message"]
    assert (tmp_path / rows[2]["folder"] / "results.h5").exists()
    assert "sweep of 3 jobs: 2 completed, 0 diverged, 1 failed" in proc.stdout.strip().splitlines()[-1]


def test_a_sweep_of_completed_jobs_exits_0(tmp_path):
    proc = run_cli(["-m", "problem=poisson1d", "seed=0,1", "optim=adam", "optim.stages.0.steps=5", *FAST,
                    f"hydra.sweep.dir={tmp_path}"], check=False)
    assert proc.returncode == 0, proc.stderr
    assert [r["status"] for r in sweep_rows(tmp_path)] == ["completed", "completed"]


def test_a_finished_run_folder_is_not_overwritten(tmp_path):
    from tests.test_cli import lbfgs

    args = ["problem=poisson1d", lbfgs(3), *FAST, f"hydra.run.dir={tmp_path}"]
    run_cli(args)
    before = (tmp_path / "results.h5").read_bytes()
    proc = run_cli([*args, "seed=1"], check=False)
    assert proc.returncode == 1
    assert "already holds a run (results.h5, checkpoint.pt)" in proc.stderr and "overwrite=true" in proc.stderr
    assert (tmp_path / "results.h5").read_bytes() == before
    run_cli([*args, "seed=1", "overwrite=true"])
    attrs, _, _, _ = read(tmp_path / "results.h5")
    assert attrs["seed"] == 1
