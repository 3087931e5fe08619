"""Property-based fuzzing of command-line overrides: random keys of the schema with values from
their neighbourhood (valid, out of range, wrong type, non-finite).  Whatever the input, the
command completes with finite results or exits with a short message naming what was wrong:
never a traceback, never a NaN in results.h5."""
from __future__ import annotations

import math

import h5py
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kanpde.cli_errors import EXIT_CONFIG, EXIT_DIVERGED, EXIT_PROBLEM
from tests.test_cli import run_cli

BASE = ["problem=poisson1d", "model.hidden=[3]", "optim=lbfgs", "optim.stages=[{optimizer:lbfgs,steps:3,lr:1.0}]",
        "sampler.n_interior=64", "sampler.n_boundary=8", "eval.n_points=64", "eval.every=2", "progress=false",
        "plots=false"]

NUMBERS = st.sampled_from(["0", "-1", "1", "3", "1e300", "-1e-3", "nan", "inf", "2.5", "abc", "null", "[1]", "true"])
KEYS = {
    # key: strategy of its values (valid ones mixed with the neighbourhood)
    "seed": NUMBERS,
    "sampler.n_interior": NUMBERS,
    "sampler.n_boundary": NUMBERS,
    "sampler.method": st.sampled_from(["sobol", "halton", "random", "1", "null"]),
    "sampler.resample_every": NUMBERS,
    "eval.n_points": st.sampled_from(["1", "15", "16", "100", "0", "x"]),
    "eval.every": NUMBERS,
    "optim.stages.0.lr": NUMBERS,
    "optim.stages.0.steps": NUMBERS,
    "optim.weights.residual": NUMBERS,
    "stop.max_time_s": NUMBERS,
    "stop.target_rel_l2": NUMBERS,
    "stop.divergence_factor": NUMBERS,
    "model.grid_size": NUMBERS,
    "model.hidden": st.sampled_from(["[3]", "[]", "[0]", "[-2]", "[2,2]", "3", "[a]"]),
    "dtype": st.sampled_from(["float64", "float32", "float16", "int"]),
    "derivatives": st.sampled_from(["auto", "autograd", "forward", "fast"]),
    "threads": st.sampled_from(["auto", "1", "0", "-3", "many"]),
    "resume": st.sampled_from(["true", "false", "force", "maybe"]),
}


def check(overrides, tmp_path):
    proc = run_cli([*BASE, *overrides, f"hydra.run.dir={tmp_path}"], check=False, timeout=300)
    err = proc.stderr.strip()
    assert "Traceback" not in err, err
    if proc.returncode == 0:
        with h5py.File(tmp_path / "results.h5", "r") as f:
            metrics = dict(f["metrics"].attrs)
        assert all(math.isfinite(v) for v in metrics.values()), metrics
        return
    assert proc.returncode in (EXIT_CONFIG, EXIT_PROBLEM, EXIT_DIVERGED), (proc.returncode, err)
    assert 0 < len(err.splitlines()) <= 12, err
    named = [o.partition("=")[0].split(".")[-1] for o in overrides]
    assert any(k in err for k in named) or proc.returncode == EXIT_DIVERGED or "resume" in err, (overrides, err)


def overrides_strategy():
    return st.lists(st.sampled_from(sorted(KEYS)), min_size=1, max_size=2, unique=True).flatmap(
        lambda keys: st.tuples(*[KEYS[k].map(lambda v, k=k: f"{k}={v}") for k in keys]))


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=overrides_strategy())
def test_any_override_completes_or_names_the_problem(tmp_path_factory, overrides):
    check(list(overrides), tmp_path_factory.mktemp("fuzz"))


@pytest.mark.slow
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(overrides=overrides_strategy())
def test_any_override_completes_or_names_the_problem_many(tmp_path_factory, overrides):
    check(list(overrides), tmp_path_factory.mktemp("fuzz"))
