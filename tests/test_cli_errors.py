"""Every mistake named where it was made, with one exit code per kind (kanpde/cli_errors.py)."""
from __future__ import annotations

import textwrap

import pytest

from kanpde.cli_errors import EXIT_CONFIG, EXIT_DIVERGED, EXIT_PROBLEM
from tests.test_cli import FAST, lbfgs, run_cli

USER_MODULE = '''
import torch
from kanpde import Problem, geometry, conditions, operators as op


class Buggy(Problem):
    domain = geometry.Rectangle([0, 0], [1, 1])
    conditions = [conditions.Dirichlet("boundary", value=0.0)]

    def residual(self, x, u):
        coefficients = {"a": 1.0}
        return op.laplacian(u, x) - coefficients["b"] * x[:, :1]
'''


@pytest.fixture
def user_dir(tmp_path):
    (tmp_path / "my_pde.py").write_text(textwrap.dedent(USER_MODULE))
    (tmp_path / "broken_import.py").write_text("import not_a_module_anywhere\n")
    return tmp_path


def kanpde(args, cwd, tmp_path):
    # the case's own overrides last: they win over the small budget's
    return run_cli([lbfgs(2), *FAST, *args, f"hydra.run.dir={tmp_path / 'run'}"], cwd=cwd, check=False)


def one_screen(proc):
    assert "Traceback" not in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 6, proc.stderr


def test_an_exception_in_the_users_residual_shows_the_users_line(user_dir, tmp_path):
    proc = kanpde(["problem=custom", "problem._target_=my_pde.Buggy"], user_dir, tmp_path)
    assert proc.returncode == EXIT_PROBLEM
    one_screen(proc)
    assert "KeyError: 'b'" in proc.stderr
    assert f"raised in {user_dir / 'my_pde.py'}, line 12, in residual: " \
           "return op.laplacian(u, x) - coefficients[\"b\"] * x[:, :1]" in proc.stderr


def test_the_full_traceback_on_request(user_dir, tmp_path):
    import os
    import subprocess
    import sys

    from tests.test_cli import ROOT

    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", KANPDE_FULL_ERROR="1", HYDRA_FULL_ERROR="1")
    proc = subprocess.run([sys.executable, "-m", "kanpde", "problem=custom", "problem._target_=my_pde.Buggy",
                           lbfgs(2), *FAST, f"hydra.run.dir={tmp_path / 'run'}"], cwd=user_dir, env=env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0 and "Traceback" in proc.stderr and "my_pde.py" in proc.stderr


@pytest.mark.parametrize("args, expected", [
    (["problem=custom"], "the problem config needs a _target_"),
    (["problem=custom", "problem._target_=broken_import.Anything"],
     "Error locating target 'broken_import.Anything': ModuleNotFoundError: No module named 'not_a_module_anywhere'"),
    (["+problem.kapa=2"], "unknown parameter(s) 'kapa'"),
    (["sampler.n_interior=0"], "sampler.n_interior must be a positive integer, got 0"),
    (["model.hidden=[0]"], "model.hidden must be a list of positive integers"),   # found by the fuzz test
    (["+model.widths=[3,4,1]"], "does not fit problem 'poisson2d_paper'"),
])
def test_configuration_errors_exit_1_with_one_message(user_dir, tmp_path, args, expected):
    proc = kanpde(args, user_dir, tmp_path)
    assert proc.returncode == EXIT_CONFIG
    one_screen(proc)
    assert expected in proc.stderr


def test_hydras_own_config_errors_exit_1_too(tmp_path):
    proc = kanpde(["optim.stagez=1"], tmp_path, tmp_path)
    assert proc.returncode == EXIT_CONFIG and "stagez" in proc.stderr


def test_a_finite_blow_up_is_a_divergence(tmp_path):
    proc = run_cli(["problem=poisson1d", "optim=adam", "optim.stages.0.lr=1e6", "optim.stages.0.steps=50", *FAST,
                    f"hydra.run.dir={tmp_path}"], check=False)
    assert proc.returncode == EXIT_DIVERGED
    assert "grew above 1e+08 times its best value" in proc.stderr
    from tests.test_cli import read

    attrs, metrics, _, _ = read(tmp_path / "results.h5")
    assert attrs["status"] == "diverged" and metrics["rel_l2"] < 10  # the last good state, not the blow-up
