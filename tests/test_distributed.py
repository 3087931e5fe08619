"""Data-parallel training (kanpde.training.distributed): two processes with the gloo backend on
CPU must follow the one-process run on the same global point set to round-off, write one
results.h5, resume, and refuse bad launches with messages."""
from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.multiprocessing as mp

from kanpde.training.distributed import (SINGLE, DistributedContext, DistributedSetupError, first_slurm_host,
                                         init_distributed, launch_environment, shutdown)

ROOT = Path(__file__).resolve().parents[1]
WORLD = 2


# --------------------------------------------------------------------------- the launcher's environment
def test_torchrun_environment_is_read():
    env = {"WORLD_SIZE": "4", "RANK": "3", "LOCAL_RANK": "1", "MASTER_ADDR": "node7", "MASTER_PORT": "29400"}
    launch = launch_environment(env)
    assert (launch.rank, launch.world_size, launch.local_rank, launch.master_addr, launch.master_port) == \
        (3, 4, 1, "node7", 29400)
    assert launch_environment({"WORLD_SIZE": "1", "RANK": "0"}) is None  # one process: no group
    assert launch_environment({}) is None


def test_srun_environment_is_read_and_the_batch_script_itself_is_not_a_rank():
    env = {"SLURM_STEP_NUM_TASKS": "8", "SLURM_PROCID": "5", "SLURM_LOCALID": "1", "SLURM_JOB_ID": "4242",
           "SLURM_JOB_NODELIST": "gpu[07-10]"}
    launch = launch_environment(env)
    assert (launch.rank, launch.world_size, launch.local_rank, launch.master_port) == (5, 8, 1, 15000 + 4242)
    # scontrol is not installed on the test machines: the node list is read by hand
    assert launch.master_addr == (first_slurm_host("gpu[07-10]"))
    # the batch script has SLURM_NTASKS and SLURM_PROCID but is no srun step: a single process
    assert launch_environment({"SLURM_NTASKS": "8", "SLURM_PROCID": "0", "SLURM_JOB_NODELIST": "gpu07"}) is None


@pytest.mark.parametrize("nodelist, first", [("gpu07", "gpu07"), ("node[03-05,7]", "node03"),
                                             ("a[1-2],b3", "a1"), ("n[12,4-5]", "n12")])
def test_first_host_of_a_slurm_node_list(nodelist, first):
    if subprocess.run(["which", "scontrol"], capture_output=True).returncode == 0:
        pytest.skip("scontrol is installed: it answers instead of the parser")
    assert first_slurm_host(nodelist) == first


@pytest.mark.parametrize("env, words", [
    ({"WORLD_SIZE": "2", "RANK": "0"}, ["WORLD_SIZE=2", "MASTER_ADDR, MASTER_PORT", "torchrun --nproc_per_node=2"]),
    ({"WORLD_SIZE": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, ["lacks RANK"]),
    ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, ["rank 2 is outside 0...1"]),
    ({"WORLD_SIZE": "two"}, ["WORLD_SIZE='two' is not an integer"]),
    ({"SLURM_STEP_NUM_TASKS": "2", "SLURM_PROCID": "1"}, ["neither MASTER_ADDR nor SLURM_JOB_NODELIST"]),
])
def test_a_missing_rendezvous_is_named(env, words):
    with pytest.raises(DistributedSetupError) as info:
        launch_environment(env)
    for word in words:
        assert word in str(info.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_requested_without_cuda_is_refused():
    env = {"WORLD_SIZE": "2", "RANK": "0", "LOCAL_RANK": "0", "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29999"}
    with pytest.raises(DistributedSetupError, match="device='cuda' was requested for a 2-process run, but torch "
                                                    "sees no CUDA device"):
        init_distributed("cuda", environ=env)


def test_one_process_is_the_identity():
    x = torch.arange(10.0).reshape(5, 2)
    assert SINGLE.shard(x) is x and SINGLE.gather_rows(x, 5) is x and not SINGLE.active
    ctx = DistributedContext(rank=1, world_size=3)
    assert ctx.shard(torch.arange(7)).tolist() == [1, 4]
    with pytest.raises(DistributedSetupError, match="condition 'data' has 2 point"):
        ctx.check_shardable(2, "condition 'data'")


# --------------------------------------------------------------------------- two processes, one run
def _settings(case: str, stages=None) -> dict:
    """Small float64 runs evaluated at every step, so the history holds every step's loss."""
    base = dict(dtype="float64", seed=3, progress=False, device="cpu", eval={"every": 1, "n_points": 400})
    if case == "kan_grid_updates":  # the acceptance case: 50 Adam, then 20 L-BFGS steps, knots moved twice
        return dict(base, sampler={"n_interior": 300, "n_boundary": 80},
                    optim={"grid_update_every": 25, "grid_update_until": 50,
                           "stages": stages or [{"optimizer": "adam", "steps": 50, "lr": 1e-2},
                                                {"optimizer": "lbfgs", "steps": 20}]})
    if case == "inverse_methods":  # observations and an unknown, sparsity stage, grad-norm balancing, RAR
        return dict(base, sampler={"n_interior": 200, "n_boundary": 60},
                    methods={"balancing": {"method": "gradnorm", "every": 10},
                             "sampling": {"method": "rar", "every": 15, "pool": 300, "n_add": 17}},
                    optim={"grid_update_every": 0, "stages": [
                        {"optimizer": "adam", "steps": 30, "lr": 1e-2, "regularization": {"lamb": 1e-4}},
                        {"optimizer": "lbfgs", "steps": 10}]})
    assert case == "heat_causal_attention"  # time-dependent: causal weights, attention weights, resampling
    return dict(base, sampler={"n_interior": 256, "n_boundary": 64, "resample_every": 20},
                methods={"causal": {"enabled": True, "chunks": 4, "eps": 1.0},
                         "balancing": {"method": "rba", "every": 1}},
                optim={"stages": [{"optimizer": "adam", "steps": 40, "lr": 1e-2}]})


def _objects(case: str):
    import kanpde
    from kanpde.problems.heat import Heat1D
    from kanpde.problems.inverse import InversePoisson
    from kanpde.problems.poisson import PaperPoisson

    torch.manual_seed(0)
    if case == "kan_grid_updates":
        return PaperPoisson(), kanpde.KAN([2, 5, 1], grid_size=5)
    if case == "inverse_methods":
        return InversePoisson(n_observations=41), kanpde.KAN([2, 4, 1], grid_size=5)
    return Heat1D(), kanpde.MLP([2, 16, 16, 1])


CASES = ["kan_grid_updates", "inverse_methods", "heat_causal_attention"]


def _solve(case: str, out: Path, **kwargs):
    import kanpde

    problem, model = _objects(case)
    settings = {**_settings(case, kwargs.pop("stages", None)), **kwargs}
    return kanpde.solve(problem, model, output_dir=out, plots=False, **settings)


def _summary(result) -> dict:
    params = [p.detach().reshape(-1) for p in result.model.state_dict().values()]
    if result.problem.has_unknowns:
        params.append(torch.tensor(list(result.unknowns.values()), dtype=torch.float64))
    return {"loss": np.asarray(result.history["loss"]), "params": torch.cat(params).numpy(),
            "rel_l2": result.metrics["rel_l2"]}


def _worker(rank: int, folder: str, world: int) -> None:
    """One process of the runs: ``world`` = 2 joins a gloo group (file rendezvous: no port to race
    for on a shared test machine); ``world`` = 1 is the one-process reference, run in a fresh
    process too, so both sides start from the same interpreter state."""
    import torch.distributed as dist

    torch.set_num_threads(1)
    out = Path(folder) / ("two" if world > 1 else "one")
    if world > 1:
        dist.init_process_group("gloo", init_method=f"file://{folder}/rendezvous", rank=rank, world_size=world)
    found = {case: _summary(_solve(case, out / case)) for case in CASES}
    if world > 1:
        # resume: stop after 10 of the 20 L-BFGS steps, then continue to 20 in a second call
        _solve("kan_grid_updates", out / "resumed", stages=[{"optimizer": "adam", "steps": 50, "lr": 1e-2},
                                                            {"optimizer": "lbfgs", "steps": 10}])
        found["resumed"] = _summary(_solve("kan_grid_updates", out / "resumed", resume=True))
        try:  # more processes than points: refused on every process, before any training
            _solve("kan_grid_updates", out / "too_few", sampler={"n_interior": 1, "n_boundary": 80})
        except DistributedSetupError as exc:
            found["too_few"] = str(exc)
    if rank == 0:
        torch.save(found, out / "found.pt")
    shutdown()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def two_process_runs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("distributed")
    mp.spawn(_worker, args=(str(folder), WORLD), nprocs=WORLD, join=True)
    mp.spawn(_worker, args=(str(folder), 1), nprocs=1, join=True)
    found = torch.load(folder / "two" / "found.pt", weights_only=False)
    single = torch.load(folder / "one" / "found.pt", weights_only=False)
    return folder, found, single


def _relative(a, b) -> float:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("case", CASES)
def test_two_processes_follow_the_one_process_run(two_process_runs, case):
    _, found, single = two_process_runs
    two, one = found[case], single[case]
    assert len(two["loss"]) == len(one["loss"]) > 0
    # every step's loss, relative to each value (Adam's first 50 and L-BFGS's first 20 in the main case)
    loss_dev, param_dev = np.max(np.abs(two["loss"] - one["loss"]) / np.abs(one["loss"])), \
        _relative(two["params"], one["params"])
    print(f"{case}: {len(one['loss'])} steps, loss within {loss_dev:.1e}, parameters within {param_dev:.1e}")
    assert loss_dev <= 1e-10
    assert param_dev <= 1e-10
    assert math.isclose(two["rel_l2"], one["rel_l2"], rel_tol=1e-8)


def test_a_distributed_run_writes_one_results_file_that_records_the_world_size(two_process_runs):
    import h5py

    folder, _, _ = two_process_runs
    run = folder / "two" / "kan_grid_updates"
    files = sorted(p.relative_to(run).as_posix() for p in run.rglob("*")
                   if p.name in ("results.h5", "checkpoint.pt"))
    assert files == ["checkpoint.pt", "results.h5"]
    with h5py.File(run / "results.h5") as f:
        assert int(f.attrs["world_size"]) == WORLD
    with h5py.File(folder / "one" / "kan_grid_updates" / "results.h5") as f:
        assert int(f.attrs["world_size"]) == 1


def test_a_distributed_run_resumes(two_process_runs):
    _, found, single = two_process_runs
    # 50 Adam + 10 L-BFGS steps, resumed to 20 L-BFGS steps, against one uninterrupted process
    assert _relative(found["resumed"]["params"], single["kan_grid_updates"]["params"]) <= 1e-10
    assert np.max(np.abs(found["resumed"]["loss"] - single["kan_grid_updates"]["loss"])
                  / single["kan_grid_updates"]["loss"]) <= 1e-10


def test_more_processes_than_points_is_refused(two_process_runs):
    _, found, _ = two_process_runs
    assert found["too_few"] == ("the interior collocation set (sampler.n_interior) has 1 point(s), fewer than the "
                                "2 processes of this run (world size); every process needs at least one: run fewer "
                                "processes or give it more points")


# --------------------------------------------------------------------------- the command under torchrun
def _torchrun(args, cwd, timeout=300):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="0")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", f"--master_port={_free_port()}",
           "-m", "kanpde", *args]
    return subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_torchrun_runs_the_command_once_in_one_folder_and_resumes(tmp_path):
    import h5py

    run = tmp_path / "run"
    fast = ["problem=poisson1d", "model.hidden=[5]", "sampler.n_interior=200", "sampler.n_boundary=2",
            "eval.n_points=500", "eval.every=10", "progress=false", "device=cpu", "optim.grid_update_every=0"]
    first = _torchrun([f"hydra.run.dir={run}", *fast, "optim.stages=[{optimizer:lbfgs,steps:20,lr:1.0}]"], tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    assert first.stdout.count("kanpde: problem=poisson1d") == 1  # rank 0 reports, rank 1 does not
    # rank 1 left no Hydra folder of its own (it worked in rank 0's)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    with h5py.File(run / "results.h5") as f:
        assert int(f.attrs["world_size"]) == 2 and int(f.attrs["steps"]) == 20
    again = _torchrun([f"hydra.run.dir={run}", *fast, "optim.stages=[{optimizer:lbfgs,steps:30,lr:1.0}]",
                       "resume=true"], tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    with h5py.File(run / "results.h5") as f:
        assert int(f.attrs["steps"]) == 30
    # the checkpoint holds the global state: one process may continue what two started
    alone = subprocess.run([sys.executable, "-m", "kanpde", f"hydra.run.dir={run}", *fast,
                            "optim.stages=[{optimizer:lbfgs,steps:40,lr:1.0}]", "resume=true"], cwd=tmp_path,
                           env=dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1"), capture_output=True,
                           text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr[-3000:]
    with h5py.File(run / "results.h5") as f:
        assert int(f.attrs["steps"]) == 40 and int(f.attrs["world_size"]) == 1
    # a bad setting: every process exits with the configuration error, reported once
    bad = _torchrun([f"hydra.run.dir={tmp_path / 'bad'}", *fast, "sampler.n_interior=1"], tmp_path)
    assert bad.returncode != 0
    assert bad.stderr.count("fewer than the 2 processes of this run") == 1, bad.stderr[-3000:]


def test_the_command_names_a_missing_rendezvous(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(ROOT), WORLD_SIZE="2", RANK="0")
    env.pop("MASTER_ADDR", None)
    env.pop("MASTER_PORT", None)
    proc = subprocess.run([sys.executable, "-m", "kanpde", f"hydra.run.dir={tmp_path / 'run'}"], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "lacks MASTER_ADDR, MASTER_PORT" in proc.stderr and "Traceback" not in proc.stderr


def test_srun_processes_run_one_command(tmp_path):
    """The SLURM path: two processes as srun starts them (rank, world size and node list from
    SLURM's variables, the address of rank 0 read from the node list)."""
    import h5py

    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1", HYDRA_FULL_ERROR="0",
               SLURM_STEP_NUM_TASKS="2", SLURM_JOB_NODELIST="localhost", SLURM_JOB_ID="77",
               MASTER_PORT=str(_free_port()))
    for key in ("MASTER_ADDR", "WORLD_SIZE", "RANK", "LOCAL_RANK"):
        env.pop(key, None)
    args = [sys.executable, "-m", "kanpde", f"hydra.run.dir={tmp_path / 'run'}", "problem=poisson1d",
            "model.hidden=[5]", "sampler.n_interior=100", "sampler.n_boundary=2", "eval.n_points=200",
            "progress=false", "device=cpu", "optim.stages=[{optimizer:lbfgs,steps:10,lr:1.0}]"]
    procs = [subprocess.Popen(args, cwd=tmp_path, env=dict(env, SLURM_PROCID=str(r), SLURM_LOCALID=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs[0][1][-2000:] + outs[1][1][-2000:]
    assert "kanpde: problem=poisson1d" in outs[0][0] and outs[1][0] == ""
    with h5py.File(tmp_path / "run" / "results.h5") as f:
        assert int(f.attrs["world_size"]) == 2


def test_the_slurm_multigpu_launcher_starts_one_task_per_gpu():
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the sweep extra")
    import yaml

    proc = subprocess.run([sys.executable, "-m", "kanpde", "hydra/launcher=slurm_multigpu", "--cfg", "hydra",
                           "--package", "hydra.launcher"], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert proc.returncode == 0, proc.stderr[-2000:]
    launcher = yaml.safe_load(proc.stdout)  # the package hydra.launcher alone
    assert launcher["_target_"].endswith("SlurmLauncher")
    assert launcher["tasks_per_node"] == launcher["gpus_per_node"] > 1
    script = ROOT / "scripts" / "slurm_multigpu.sbatch"
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert "srun --kill-on-bad-exit=1 python -m kanpde" in script.read_text()
