"""A finished run loaded back (kanpde.load), evaluated at new points (Run.predict), from the shell
(kanpde-predict, kanpde-export), and what is refused."""
from __future__ import annotations

import os
import subprocess
import sys
import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest
import torch

import kanpde
from kanpde import operators as op
from kanpde.loading import LoadError
from kanpde.models import KAN, MLP
from kanpde.problems.poisson import PaperPoisson
from tests.test_cli import ROOT, lbfgs, run_cli

SMALL = ["sampler.n_interior=400", "sampler.n_boundary=100", "eval.n_points=900", "progress=false", "plots=false"]


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    """The default problem and model from the command line, with grid extension (G 5 -> 10)."""
    folder = tmp_path_factory.mktemp("default_run")
    run_cli(["optim.stages=[{optimizer:lbfgs,steps:20,lr:1.0},{optimizer:lbfgs,steps:20,lr:1.0,grid_factor:2}]",
             *SMALL, f"hydra.run.dir={folder}"])
    return folder


def _tool(name, *args):
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS="1")
    code = f"import sys; from kanpde.{name} import main; sys.exit(main(sys.argv[1:]))"
    return subprocess.run([sys.executable, "-c", code, *map(str, args)], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


def test_load_and_predict_reproduce_the_run_and_its_laplacian(default_run):
    run = kanpde.load(default_run)
    assert run.problem.name == "poisson2d_paper" and run.model.grid_size == 10
    x = run.field["x"]
    u = run.predict(x)
    assert isinstance(u, np.ndarray) and np.abs(u - run.field["u_pred"]).max() <= 1e-12
    assert run.metrics["rel_l2"] == pytest.approx(float(np.sqrt(
        ((u - run.field["u_exact"]) ** 2).sum() / (run.field["u_exact"] ** 2).sum())), rel=1e-9)
    # the Laplacian the residual used: residual = Lap u - f on the run's own derivative path
    pts = torch.as_tensor(x[:300])
    out = run.predict(pts, derivatives=["grad", "laplacian", "hessian"])
    assert isinstance(out["u"], torch.Tensor) and out["grad"].shape == (300, 2) and out["hessian"].shape == (300, 2, 2)
    u_fwd = op.evaluate(run.model, pts, derivatives="auto", order=2)
    residual = run.problem.residual_terms(pts, u_fwd)["residual"].detach()
    assert torch.allclose(out["laplacian"] - run.problem.source(pts), residual, rtol=0, atol=1e-8)
    # and against autograd, an independent path
    xg = pts.clone().requires_grad_(True)
    lap = op.laplacian(op.evaluate(run.model, xg, derivatives="autograd"), xg).detach()
    assert torch.allclose(out["laplacian"], lap, rtol=0, atol=1e-8)
    assert torch.allclose(out["hessian"][:, 0, 0] + out["hessian"][:, 1, 1], out["laplacian"][:, 0], atol=1e-10)


def test_load_refuses_what_it_cannot_load_with_a_message(default_run, tmp_path):
    with pytest.raises(LoadError, match="does not exist"):
        kanpde.load(tmp_path / "nothing")
    with pytest.raises(LoadError, match="has no checkpoint.pt; is it a kanpde run folder"):
        kanpde.load(tmp_path)
    with pytest.raises(LoadError, match="trained a .*KAN.*not a .*MLP"):
        kanpde.load(default_run, model=MLP([2, 8, 1]))
    # a run of another kanpde version
    other = tmp_path / "old"
    other.mkdir()
    state = torch.load(default_run / "checkpoint.pt", weights_only=False)
    state["kanpde_version"] = "0.0.1"
    torch.save(state, other / "checkpoint.pt")
    with pytest.raises(LoadError, match="was written by kanpde 0.0.1; this is kanpde"):
        kanpde.load(other)
    run = kanpde.load(default_run)
    with pytest.raises(ValueError, match=r"x must have shape \(N, 2\) \(columns x, y\).*got \(4, 3\)"):
        run.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="derivatives must be names from"):
        run.predict(np.zeros((4, 2)), derivatives=["curl"])


def test_a_python_run_loads_with_the_problem_and_model_given(tmp_path):
    torch.manual_seed(0)
    result = kanpde.solve(PaperPoisson(), KAN([2, 4, 1]), optim={"stages": [{"optimizer": "lbfgs", "steps": 10}]},
                          sampler={"n_interior": 200}, eval={"n_points": 400}, progress=False, plots=False,
                          output_dir=tmp_path)
    with pytest.raises(LoadError, match=r"pass the problem and a model like the one it trained"):
        kanpde.load(tmp_path)
    run = kanpde.load(tmp_path, problem=PaperPoisson(), model=KAN([2, 4, 1]))
    assert np.abs(run.predict(result.field["x"]) - result.field["u_pred"]).max() <= 1e-12
    with pytest.raises(LoadError, match="do not fit the model"):
        kanpde.load(tmp_path, problem=PaperPoisson(), model=KAN([2, 6, 1]))


def test_an_inverse_run_loads_with_its_unknowns(tmp_path):
    run_cli(["problem=inverse_poisson_source", "problem.n_observations=50", lbfgs(5), *SMALL,
             f"hydra.run.dir={tmp_path}"])
    run = kanpde.load(tmp_path)
    with h5py.File(tmp_path / "results.h5") as f:
        stored = f["field/unknown_f"][()]
        x = f["field/x"][()]
        assert f["metrics"].attrs["rel_l2_unknown_f"] > 0
    assert np.abs(run.predict_unknown("f", x) - stored).max() <= 1e-12
    with pytest.raises(KeyError, match="has no unknown 'g'"):
        run.predict_unknown("g")


def test_kanpde_predict_writes_values_and_derivatives(default_run, tmp_path):
    run = kanpde.load(default_run)
    x = np.random.default_rng(0).uniform(-1, 1, (37, 2))
    csv = tmp_path / "pts.csv"
    np.savetxt(csv, x[:, ::-1], delimiter=",", header="y,x", comments="")  # columns by name, any order
    proc = _tool("predict", default_run, "--points", csv, "--out", tmp_path / "pred.h5", "--derivatives", "laplacian")
    assert proc.returncode == 0, proc.stderr
    with h5py.File(tmp_path / "pred.h5") as f:
        assert np.array_equal(f["x"][()], x)
        assert np.abs(f["u"][()] - run.predict(x)).max() <= 1e-12
        assert np.abs(f["laplacian"][()] - run.predict(x, derivatives=["laplacian"])["laplacian"]).max() <= 1e-12
    np.savez(tmp_path / "bad.npz", x=np.zeros((5, 3)))
    proc = _tool("predict", default_run, "--points", tmp_path / "bad.npz", "--out", tmp_path / "p.h5")
    assert proc.returncode == 1
    assert "bad.npz': array 'x' has shape (5, 3); expected (5, 2)" in proc.stderr and "Traceback" not in proc.stderr


def test_kanpde_export_writes_a_fine_grid_with_its_xdmf(default_run, tmp_path):
    out = tmp_path / "fine.h5"
    proc = _tool("export", default_run, "--grid", "30x20", "--out", out)
    assert proc.returncode == 0, proc.stderr
    with h5py.File(out) as f:
        x, u = f["field/x"][()], f["field/u_pred"][()]
        assert x.shape == (600, 2) and sorted(np.unique(x[:, 0]).round(12))[0] == -1.0
        run = kanpde.load(default_run)
        assert np.abs(u - run.predict(x)).max() <= 1e-12
        tree = ET.parse(tmp_path / "fine_grid.xdmf")
        for item in tree.iter("DataItem"):
            if item.get("Format") == "HDF":
                name = item.text.strip().split(":", 1)[1]
                assert item.text.strip().startswith("fine.h5:/field/")
                assert f[name].shape == tuple(int(n) for n in item.get("Dimensions").split())
    proc = _tool("export", default_run, "--grid", "30")
    assert proc.returncode == 1 and "--grid must give 2 node counts" in proc.stderr
