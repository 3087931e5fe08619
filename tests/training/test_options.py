"""One schema for every setting: SolveOptions validation, the keywords of kanpde.solve, the CLI's
composed defaults, and stages that refine but never coarsen a grid."""
from __future__ import annotations

import dataclasses

import pytest

import kanpde
from kanpde.problems.poisson import Poisson1D
from kanpde.cli import KanpdeConfig, compose, options_from_config
from kanpde.models import KAN, MLP
from kanpde.training import SolveOptions, Stage
from kanpde.training.options import default_stages
from tests.helpers import lbfgs, tiny


def test_options_are_validated_with_clear_messages():
    with pytest.raises(TypeError, match="unknown option"):
        SolveOptions.from_kwargs(n_interiour=10)
    with pytest.raises(ValueError, match="optimizer must be one of"):
        SolveOptions.from_kwargs(optim={"stages": [{"optimizer": "newton"}]})
    with pytest.raises(ValueError, match="sampler.method must be one of"):
        SolveOptions.from_kwargs(sampler={"method": "random"})
    with pytest.raises(ValueError, match="sampler.n_interior must be a positive integer"):
        SolveOptions.from_kwargs(sampler={"n_interior": 0})
    with pytest.raises(ValueError, match="derivatives must be one of"):
        SolveOptions.from_kwargs(derivatives="fast")
    with pytest.raises(ValueError, match="eval.n_points must be at least 16 .*got 1"):
        SolveOptions.from_kwargs(eval={"n_points": 1})
    with pytest.raises(TypeError, match="stage 0: unknown key"):
        SolveOptions.from_kwargs(optim={"stages": [{"optimiser": "adam"}]})
    with pytest.raises(TypeError, match="unknown sampler setting"):
        SolveOptions.from_kwargs(sampler={"n_interiour": 10})
    with pytest.raises(ValueError, match="scheduler='cosine' applies to .*'adam'.*not to optimizer='lbfgs'"):
        SolveOptions.from_kwargs(optim={"stages": lbfgs(5, scheduler="cosine")})
    with pytest.raises(ValueError, match="optim.weights.residual must be a non-negative number"):
        SolveOptions.from_kwargs(optim={"weights": {"residual": -1.0}})
    Stage(optimizer="lbfgs").validate()


def test_a_setting_passed_at_the_top_level_says_where_it_belongs():
    with pytest.raises(TypeError, match=r"n_interior is sampler.n_interior: pass sampler=\{'n_interior': \.\.\.\}"):
        SolveOptions.from_kwargs(n_interior=10)
    with pytest.raises(TypeError, match="stages is optim.stages"):
        kanpde.solve(None, MLP([1, 2, 1]), stages=lbfgs(3))


def test_a_group_dict_changes_only_what_it_names():
    opts = SolveOptions.from_kwargs(sampler={"n_interior": 123}, seed=4)
    assert opts.sampler == dataclasses.replace(SolveOptions().sampler, n_interior=123) and opts.seed == 4
    assert opts.optim == SolveOptions().optim and opts.optim.stages == default_stages()


def test_the_cli_and_the_python_api_share_one_schema_and_its_defaults():
    # the CLI's structured config is SolveOptions plus problem, model and the run-folder switches,
    # and composing `kanpde` with no override gives exactly the Python defaults
    assert issubclass(KanpdeConfig, SolveOptions)
    extra = {f.name for f in dataclasses.fields(KanpdeConfig)} - {f.name for f in dataclasses.fields(SolveOptions)}
    assert extra == {"problem", "model", "resume", "overwrite", "plots", "threads", "symbolic", "symbolic_prune",
                     "symbolic_library"}
    assert options_from_config(compose()) == SolveOptions()
    # every preset is a valid set of options
    for preset in ("adam", "adam_lbfgs", "lbfgs", "paper"):
        options_from_config(compose([f"optim={preset}"]))


def test_sampler_shorthand_is_the_method_setting():
    assert options_from_config(compose(["sampler=halton"])) == options_from_config(compose(["sampler.method=halton"]))
    assert options_from_config(compose(["sampler=lhs"])).sampler.method == "lhs"


def test_a_stage_never_coarsens_a_grid():
    assert Stage(grid_size=None).grid_after(20) == 20
    assert Stage(grid_factor=2).grid_after(20) == 40
    assert Stage(grid_size=30).grid_after(20) == 30
    with pytest.raises(ValueError, match=r"stage 1: grid_size=10 would coarsen the model's grid \(grid_size=20"):
        Stage(grid_size=10).grid_after(20, 1)
    with pytest.raises(ValueError, match="give grid_size .* or grid_factor .*, not both"):
        Stage(optimizer="lbfgs", grid_size=10, grid_factor=2).validate()


def test_solve_rejects_a_coarsening_stage_before_training():
    # the paper's absolute grid sizes 5 -> 10 on a G = 20 model: refused naming both sizes,
    # before the first step
    stages = [*lbfgs(3), *lbfgs(3, grid_size=10)]
    model = KAN([1, 3, 1], grid_size=20)
    with pytest.raises(ValueError, match=r"stage 1: grid_size=10 would coarsen the model's grid \(grid_size=20"):
        kanpde.solve(Poisson1D(), model, **tiny(stages))
    assert model.grid_size == 20
