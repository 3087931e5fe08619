"""A job's thread count: set by hand, or its launcher's share of the cores."""
import pytest

from kanpde.threads import job_threads

JOBLIB = "hydra_plugins.hydra_joblib_launcher.joblib_launcher.JoblibLauncher"
SLURM = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.SlurmLauncher"
LOCAL = "hydra_plugins.hydra_submitit_launcher.submitit_launcher.LocalLauncher"
BASIC = "hydra._internal.core_plugins.basic_launcher.BasicLauncher"


@pytest.mark.parametrize("launcher, environ, cores, expected", [
    ({"_target_": JOBLIB, "n_jobs": 2}, {}, 16, 8),
    ({"_target_": JOBLIB, "n_jobs": 3}, {}, 16, 5),
    ({"_target_": JOBLIB, "n_jobs": -1}, {}, 16, 1),     # one job per core
    ({"_target_": JOBLIB, "n_jobs": -2}, {}, 16, 1),     # all cores but one: 15 jobs
    ({"_target_": JOBLIB, "n_jobs": 64}, {}, 16, 1),     # more jobs than cores: never 0
    ({"_target_": SLURM, "cpus_per_task": 4}, {}, 64, 4),
    ({"_target_": SLURM, "cpus_per_task": 4}, {"SLURM_CPUS_PER_TASK": "6"}, 64, 6),  # what SLURM granted
    ({"_target_": LOCAL, "cpus_per_task": None}, {}, 8, None),
    ({"_target_": BASIC}, {}, 8, None),                   # one job at a time: torch's default
    (None, {}, 8, None),
    ({"_target_": BASIC}, {"LOCAL_WORLD_SIZE": "4"}, 16, 4),  # torchrun: the node's cores among its processes
    ({"_target_": BASIC}, {"LOCAL_WORLD_SIZE": "1"}, 16, None),
])
def test_auto_takes_the_launchers_share(launcher, environ, cores, expected):
    assert job_threads("auto", launcher, environ=environ, cores=cores) == expected


def test_an_explicit_count_wins():
    assert job_threads(3, {"_target_": JOBLIB, "n_jobs": 2}, environ={}, cores=16) == 3


@pytest.mark.parametrize("bad", [0, -2, "four", 2.5, True])
def test_bad_settings_are_named(bad):
    with pytest.raises(ValueError, match="threads must be 'auto' or an integer >= 1"):
        job_threads(bad, None, environ={}, cores=4)


def test_the_command_names_a_bad_thread_count(tmp_path):
    from tests.test_cli import FAST, lbfgs, run_cli

    proc = run_cli(["problem=poisson1d", lbfgs(2), *FAST, "threads=0", f"hydra.run.dir={tmp_path}"], check=False)
    assert proc.returncode == 1
    assert "threads must be 'auto' or an integer >= 1, got 0" in proc.stderr


def test_the_command_sets_the_count_it_is_given(tmp_path):
    from tests.test_cli import FAST, lbfgs, read, run_cli

    run_cli(["problem=poisson1d", lbfgs(2), *FAST, "threads=2", f"hydra.run.dir={tmp_path}"])
    attrs, _, _, _ = read(tmp_path / "results.h5")
    assert attrs["threads"] == 2
