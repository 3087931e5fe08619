"""From a trained KAN to a formula (kanpde.symbolic, kanpde-symbolic): the pieces against known
functions, and whole runs whose formulas are checked against the analytic solutions by an
independent evaluation of formula.txt with sympy."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from kanpde.models import KAN
from kanpde.symbolic import EdgeNetwork, fit_candidate, fit_edge, library, prune
from kanpde.symbolic.library import LIBRARY
from tests.test_cli import read, run_cli
from tests.test_loading import _tool

sympy = pytest.importorskip("sympy")

RECIPE = "optim.stages=[{optimizer:lbfgs,steps:200,lr:1.0%s},{optimizer:lbfgs,steps:300,lr:1.0,grid_factor:2}," \
         "{optimizer:lbfgs,steps:2000,lr:1.0,grid_factor:2}]"


def _formula_error(folder, exact) -> float:
    """rel_l2 of formula.txt's last line (parsed by sympy) against ``exact`` on the run's points."""
    last = (folder / "formula.txt").read_text().strip().splitlines()[-1]
    name, _, expression = last.partition(" = ")
    assert name == "u"
    _, _, _, field = read(folder / "results.h5")
    x = field["x"]
    symbols = sympy.symbols("x y")[:x.shape[1]]
    f = sympy.lambdify(symbols, sympy.sympify(expression), "numpy")
    u = np.broadcast_to(np.asarray(f(*x.T), dtype=float), x.shape[:1])
    truth = exact(x)
    return float(np.sqrt(((u - truth) ** 2).sum() / (truth ** 2).sum()))


def _symbolic(folder, *args):
    proc = _tool("symbolic.cli", folder, *args)
    assert proc.returncode == 0, proc.stderr + proc.stdout
    return json.loads((folder / "symbolic.json").read_text()), proc.stdout


# ----------------------------------------------------------------------------- pieces

def test_an_edge_is_recognised_with_its_constants():
    x = np.linspace(-1, 1, 400)
    best, fits = fit_edge(x, 2 * np.sin(3 * x + 0.5) + 1, library())
    assert best.name == "sin" and best.r2 > 1 - 1e-12
    assert np.allclose(best.c * np.sin(best.a * x + best.b) + best.d, 2 * np.sin(3 * x + 0.5) + 1, atol=1e-9)
    # a straight line is "x", not a sine of a small argument (the simpler of equal fits)
    assert fit_edge(x, 0.3 * x - 0.2, library())[0].name == "x"
    gauss = fit_candidate(x, np.exp(-(2 * x - 0.3) ** 2), LIBRARY["gaussian"])
    assert gauss.r2 > 1 - 1e-12


def test_library_names_are_checked():
    with pytest.raises(ValueError, match="the symbolic library is empty"):
        library("")
    with pytest.raises(ValueError, match=r"unknown symbolic function\(s\) \['sinh'\]"):
        library("sin,sinh")
    assert [c.name for c in library("x|cos,sin")[1]] == ["cos", "sin"]


def test_pruning_removes_a_dead_node_and_keeps_the_function():
    torch.manual_seed(0)
    kan = KAN([2, 3, 1], dtype=torch.float64)
    with torch.no_grad():  # hidden node 1 feeds nothing onward
        kan.layers[1].spline_scaler[:, 1] = 0
        kan.layers[1].base_weight[:, 1] = 0
    x = torch.rand(500, 2, dtype=torch.float64) * 2 - 1
    pruned = prune(kan, x, threshold=0.01)
    assert pruned.model.widths == [2, 2, 1] and pruned.nodes[1] == [0, 2]
    assert torch.allclose(pruned.model(x), kan(x), atol=1e-12)
    net = EdgeNetwork.from_kan(pruned.model, pruned.edges)
    assert torch.allclose(net(x), kan(x), atol=1e-12)
    with pytest.raises(ValueError, match="removes every node of hidden layer 1"):
        prune(kan, x, threshold=0.999999)


# ----------------------------------------------------------------------------- whole runs

def test_poisson1d_is_read_back_as_sin_2_pi_x(tmp_path):
    # a sparsity stage first, then the default grid extension
    run_cli(["problem=poisson1d", "model.hidden=[3]", RECIPE % ",regularization:{lamb:0.003}", "progress=false",
             "plots=false", f"hydra.run.dir={tmp_path}"])
    report, out = _symbolic(tmp_path, "--prune", "0.1")
    assert report["rel_l2"] <= 1e-8, report
    assert _formula_error(tmp_path, lambda x: np.sin(2 * np.pi * x[:, 0])) <= 1e-8
    assert "kanpde-symbolic: u = " in out and (tmp_path / "pruned.png").stat().st_size > 1000
    assert (tmp_path / "symbolic_fits.png").stat().st_size > 1000
    _, _, history, _ = read(tmp_path / "results.h5")
    assert np.nanmax(history["loss_regularization"]) > 0  # the sparsity stage ran


def test_poisson2d_sin_is_read_back_exactly_from_a_2_2_1_kan(tmp_path):
    # linear first-layer edges, then cosines: u = cos(pi (x - y))/2 - cos(pi (x + y))/2
    run_cli(["problem=poisson2d_sin", "model.hidden=[2]", "seed=1", RECIPE % "", "progress=false", "plots=false",
             f"hydra.run.dir={tmp_path}"])
    report, _ = _symbolic(tmp_path, "--prune", "0.05", "--library", "x|cos,sin,x^2")
    assert report["pruned_widths"] == [2, 2, 1]
    assert [e["function"] for e in report["edges"]] == ["x", "x", "x", "x", "cos", "cos"]
    assert report["rel_l2"] <= 1e-8 and report["network_rel_l2"] > 1e-3, report
    assert _formula_error(tmp_path, lambda x: np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1])) <= 1e-8


def test_the_paper_problem_formula_is_what_symbolic_json_reports(tmp_path):
    # sin(pi x) sin(pi y^2) = cos(pi (x - y^2))/2 - cos(pi (x + y^2))/2 is the exact form to find;
    # whatever is found, formula.txt evaluated on its own gives the error symbolic.json reports
    run_cli(["problem=poisson2d_paper", "model.hidden=[2]", "seed=1", RECIPE % "", "progress=false",
             "plots=false", f"hydra.run.dir={tmp_path}"])
    report, _ = _symbolic(tmp_path, "--prune", "0.05", "--library", "x,x^2|cos", "--no-plots")
    error = _formula_error(tmp_path, lambda x: np.sin(np.pi * x[:, 0]) * np.sin(np.pi * x[:, 1] ** 2))
    assert error == pytest.approx(report["rel_l2"], rel=1e-6)


def test_only_kan_runs_are_read_and_bad_settings_are_refused(tmp_path):
    run_cli(["problem=poisson1d", "model=mlp", "model.hidden=[4]", "optim.stages=[{optimizer:lbfgs,steps:3}]",
             "progress=false", "plots=false", f"hydra.run.dir={tmp_path / 'mlp'}"])
    proc = _tool("symbolic.cli", tmp_path / "mlp")
    assert proc.returncode == 1 and "only B-spline KAN runs can be read as formulas" in proc.stderr
    run_cli(["problem=poisson1d", "model.hidden=[2]", "optim.stages=[{optimizer:lbfgs,steps:3}]", "progress=false",
             "plots=false", f"hydra.run.dir={tmp_path / 'kan'}"])
    proc = _tool("symbolic.cli", tmp_path / "kan", "--library", "")
    assert proc.returncode == 1 and "the symbolic library is empty" in proc.stderr
    proc = _tool("symbolic.cli", tmp_path / "kan", "--prune", "1.0")
    assert proc.returncode == 1 and "would prune every edge" in proc.stderr and "Traceback" not in proc.stderr


def test_a_regularization_stage_is_validated(tmp_path):
    proc = run_cli(["problem=poisson1d", "optim.stages=[{optimizer:lbfgs,steps:3,regularization:{l1:1}}]",
                    f"hydra.run.dir={tmp_path}"], check=False)
    assert proc.returncode == 1 and "regularization must be null or a mapping with lamb" in proc.stderr


def test_symbolic_true_reads_the_run_at_its_end(tmp_path):
    # u = sin(2 pi x) from a one-edge KAN [1,1]: the run writes the formula itself
    run_cli(["problem=poisson1d", "model.hidden=[]", "optim.stages=[{optimizer:lbfgs,steps:100,lr:1.0}]",
             "symbolic=true", "progress=false", "plots=false", f"hydra.run.dir={tmp_path}"])
    report = json.loads((tmp_path / "symbolic.json").read_text())
    assert [e["function"] for e in report["edges"]] == ["sin"] and report["rel_l2"] <= 1e-8
    assert _formula_error(tmp_path, lambda x: np.sin(2 * np.pi * x[:, 0])) <= 1e-8
