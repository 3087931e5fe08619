"""The recommended recipes (conf/experiment/*.yaml) and the training methods from the command line."""
from __future__ import annotations

import numpy as np
import pytest

from kanpde.cli import build, compose
from kanpde.models import KAN, MLP, FourierFeatures, PeriodicEmbedding
from tests.test_cli import read, run_cli


@pytest.mark.parametrize("experiment, family, features, budget", [
    ("burgers1d", MLP, FourierFeatures, 300), ("allen_cahn1d", KAN, PeriodicEmbedding, 600),
    ("poisson2d_paper", KAN, None, 300)])
def test_each_experiment_builds_its_recipe(experiment, family, features, budget):
    problem, model, options = build(compose([f"+experiment={experiment}"]))
    assert problem.name == experiment and options.stop.max_time_s == budget
    assert options.methods.hard_constraints
    if features is None:
        assert isinstance(model, family)
    else:
        assert isinstance(model, features) and isinstance(model.inner, family)


def test_every_problem_has_an_experiment_that_builds():
    # conf/experiment/<name>.yaml for each problem of the zoo: the problem of the same name, a
    # budget of at most 10 minutes
    from pathlib import Path

    root = Path(__file__).resolve().parents[1] / "conf"
    problems = {p.stem for p in (root / "problem").glob("*.yaml")} - {"custom", "heat1d", "poisson1d", "poisson2d_sin"}
    experiments = {p.stem for p in (root / "experiment").glob("*.yaml")}
    assert problems <= experiments, sorted(problems - experiments)
    for name in sorted(experiments & problems):
        problem, model, options = build(compose([f"+experiment={name}"]))
        assert problem.name == name
        assert options.stop.max_time_s <= 600  # every recipe within 10 minutes


def test_periodic_features_and_hard_constraints_from_the_command_line(tmp_path):
    # Allen-Cahn with the periodic embedding and hard initial data: neither the periodic nor the
    # initial condition is left in the loss, the model says what wraps what, and the final
    # collocation points are written
    run_cli(["problem=allen_cahn1d", "model=mlp", "model.hidden=[8]", "model.features={kind:periodic}",
             "methods.hard_constraints=true", "optim.stages=[{optimizer:lbfgs,steps:6,lr:1.0}]",
             "sampler.n_interior=200", "sampler.n_boundary=20", "eval.every=3", "eval.n_points=400", "progress=false",
             "plots=false", f"hydra.run.dir={tmp_path}"])
    attrs, metrics, history, field = read(tmp_path / "results.h5")
    assert attrs["model"] == "ConstrainedOutput(PeriodicEmbedding(MLP))[2,3,8,1]"
    assert [k for k in history if k.startswith("loss_")] == ["loss_residual"]
    assert field["collocation"].shape == (200, 2) and np.isfinite(metrics["rel_l2"])


def test_a_training_method_from_the_command_line_is_logged(tmp_path):
    run_cli(["problem=poisson1d", "model=mlp", "model.hidden=[8]", "methods.balancing.method=gradnorm",
             "methods.balancing.every=5", "optim.stages=[{optimizer:adam,steps:10,lr:0.001}]",
             "sampler.n_interior=100", "eval.every=5", "eval.n_points=200", "progress=false",
             f"hydra.run.dir={tmp_path}"])
    _, _, history, _ = read(tmp_path / "results.h5")
    assert np.isfinite(history["weight_residual"]).all() and np.isfinite(history["weight_dirichlet_boundary"]).all()
    assert (tmp_path / "history.png").stat().st_size > 0


def test_model_features_need_a_kind(tmp_path):
    proc = run_cli(["problem=poisson1d", "model.features={n_frequencies:4}", f"hydra.run.dir={tmp_path}"], check=False)
    assert proc.returncode == 1 and "model.features must be null or a mapping with a kind" in proc.stderr
    proc = run_cli(["problem=poisson1d", "model.features={kind:periodic}", f"hydra.run.dir={tmp_path}"], check=False)
    assert proc.returncode == 1 and "has no Periodic condition" in proc.stderr


def test_every_zoo_recipe_builds_for_its_problem():
    # conf/zoo/<row>_<family>.yaml: what benchmarks/zoo.py and the zoo_kan_vs_mlp sweep run
    from pathlib import Path

    zoo = sorted((Path(__file__).resolve().parents[1] / "conf" / "zoo").glob("*.yaml"))
    rows = {p.stem.rpartition("_")[0] for p in zoo}
    assert {p.stem for p in zoo} == {f"{row}_{family}" for row in rows for family in ("kan", "mlp")}
    for path in zoo:
        row, _, family = path.stem.rpartition("_")
        problem, model, options = build(compose([f"+zoo={path.stem}"]))
        assert problem.name == row or (row == "poisson_nd_10" and problem.dim == 10)
        inner = getattr(model, "inner", model)
        inner = getattr(inner, "inner", inner)
        assert isinstance(inner, KAN if family == "kan" else MLP), path.stem
        assert 0 < options.stop.max_time_s <= 600


def test_paper_poisson_scaling_sizes():
    # the sweep's sizes: KAN [2,w,1] with grids 3, 5, 10, MLPs of 2-4 layers of width 10-100
    from pathlib import Path

    from omegaconf import OmegaConf

    names = sorted(p.stem for p in (Path(__file__).resolve().parents[1] / "conf" / "scaling").glob("*.yaml"))
    assert len(names) == 27
    cfg = compose(["+experiment=paper_poisson_scaling"])
    assert OmegaConf.select(cfg, "stop.max_time_s") == 20
    seen = set()
    for name in names:
        problem, model, options = build(compose(["+experiment=paper_poisson_scaling", f"+scaling={name}"]))
        assert problem.name == "poisson2d_paper" and options.stop.max_time_s == 20
        if name.startswith("kan"):
            assert isinstance(model, KAN) and len(model.widths) == 3
            seen.add(("kan", model.widths[1], model.grid_size))
        else:
            assert isinstance(model, MLP)
            assert options.optim.stages[0].optimizer == ("adam" if name.endswith("adam_lbfgs") else "lbfgs")
            seen.add(("mlp", len(model.widths) - 2, model.widths[1], options.optim.stages[0].optimizer))
    assert {s for s in seen if s[0] == "kan"} == {("kan", w, g) for w in (2, 5, 10) for g in (3, 5, 10)}
    assert {s[1:3] for s in seen if s[0] == "mlp"} == {(d, w) for d in (2, 3, 4) for w in (10, 32, 100)}
