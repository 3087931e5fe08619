"""resume=True continues only the run it names: a changed problem, model or setting is refused
by name before anything is written; the allowed changes and resume=force are recorded."""
from __future__ import annotations

import re

import pytest

import kanpde
from kanpde.io import read_results
from kanpde.models import KAN
from kanpde.problems.poisson import Poisson1D
from kanpde.training import ResumeMismatch
from tests.helpers import lbfgs, tiny
from tests.test_cli import FAST, run_cli


def first_run(folder, problem=None, **top):
    return kanpde.solve(problem or Poisson1D(), KAN([1, 3, 1], grid_size=5, seed=0), output_dir=folder, plots=False,
                        **tiny(lbfgs(4), **top))


def snapshot(folder):
    return {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}


@pytest.mark.parametrize("change, expected", [
    (dict(problem=Poisson1D(k=3.0)), "problem.k: 2.0 -> 3.0"),
    (dict(seed=1), "seed: 0 -> 1"),
    (dict(stages=[{"optimizer": "lbfgs", "steps": 4, "lr": 0.5}]), "optim.stages.0.lr: 1.0 -> 0.5"),
    (dict(n_interior=300), "sampler.n_interior: 200 -> 300"),
    (dict(model=KAN([1, 7, 1], grid_size=5, seed=0)), "model: KAN("),
])
def test_a_changed_run_is_refused_naming_the_change(tmp_path, change, expected):
    first_run(tmp_path)
    before = snapshot(tmp_path)
    problem = change.pop("problem", Poisson1D())
    model = change.pop("model", KAN([1, 3, 1], grid_size=5, seed=0))
    stages = change.pop("stages", lbfgs(4))
    kwargs = tiny(stages, **({"n_interior": change.pop("n_interior")} if "n_interior" in change else {}), **change)
    with pytest.raises(ResumeMismatch, match=re.escape(expected)) as info:
        kanpde.solve(problem, model, output_dir=tmp_path, plots=False, resume=True, **kwargs)
    assert "resume=force" in str(info.value)
    assert snapshot(tmp_path) == before  # nothing written


def test_more_steps_and_a_longer_budget_may_change_and_are_recorded(tmp_path):
    first_run(tmp_path)
    result = kanpde.solve(Poisson1D(), KAN([1, 3, 1], grid_size=5, seed=0), output_dir=tmp_path, plots=False,
                          resume=True, **tiny(lbfgs(8), stop={"max_time_s": 100.0}))
    assert int(result.history["step"][-1]) == 8
    changes = read_results(tmp_path / "results.h5").attrs["resume_changes"]
    assert "optim.stages.0.steps: 4 -> 8" in changes and "stop.max_time_s: None -> 100.0" in changes


def test_resume_force_accepts_a_change_and_records_it(tmp_path):
    first_run(tmp_path)
    kanpde.solve(Poisson1D(), KAN([1, 3, 1], grid_size=5, seed=0), output_dir=tmp_path, plots=False,
                 resume="force", **tiny(lbfgs(6), seed=3))
    assert "seed: 0 -> 3" in read_results(tmp_path / "results.h5").attrs["resume_changes"]


def test_the_command_refuses_a_changed_resume_and_keeps_the_runs_config(tmp_path):
    args = ["problem=poisson1d", "optim=adam", "optim.stages.0.steps=10", *FAST, f"hydra.run.dir={tmp_path}"]
    run_cli(args)
    config = (tmp_path / ".hydra" / "config.yaml").read_text()
    results = (tmp_path / "results.h5").read_bytes()
    proc = run_cli([*args, "resume=true", "optim.stages.0.lr=0.5", "model.hidden=[7]"], check=False)
    assert proc.returncode == 1
    assert "optim.stages.0.lr: 0.01 -> 0.5" in proc.stderr and "model: KAN(" in proc.stderr
    assert "size mismatch" not in proc.stderr  # named, not torch's state-dict text
    assert (tmp_path / ".hydra" / "config.yaml").read_text() == config
    assert (tmp_path / "results.h5").read_bytes() == results
    run_cli([*args, "resume=true", "optim.stages.0.steps=20"])  # more steps: fine
