"""The trainer's extension points: plugin hooks, events that end L-BFGS chunks, stops, loss and
point weights, collocation changes, plugin state in checkpoints, and the optimizer registry."""
from __future__ import annotations

import pytest
import torch

import kanpde
from kanpde.models import KAN, MLP
from kanpde.training import OPTIMIZERS, SolveOptions, Stage, Trainer, TrainerPlugin, register_optimizer
from kanpde.training.options import default_stages
from tests.helpers import lbfgs, tiny


class Recorder(TrainerPlugin):
    """Records every hook call with the step and the model's grid size."""

    def __init__(self):
        self.calls = []

    def _note(self, hook, trainer):
        self.calls.append((hook, trainer.step, getattr(trainer.model, "grid_size", None)))

    def on_train_start(self, trainer):
        self._note("train_start", trainer)

    def on_stage_start(self, trainer, stage):
        self._note("stage_start", trainer)

    def on_step_end(self, trainer):
        self._note("step_end", trainer)

    def on_evaluate(self, trainer, errors):
        assert "rel_l2" in errors
        self._note("evaluate", trainer)

    def on_train_end(self, trainer, result):
        self._note("train_end", trainer)

    def hooks(self, name):
        return [c for c in self.calls if c[0] == name]


def test_hooks_run_in_order_with_the_stages_and_evaluations(poisson1d):
    rec = Recorder()
    stages = [{"optimizer": "adam", "steps": 12, "lr": 1e-3}, *lbfgs(8)]
    res = kanpde.solve(poisson1d, MLP([1, 4, 1]), plugins=[rec], **tiny(stages, every=5))
    assert rec.calls[0][0] == "stage_start" and rec.calls[1][0] == "train_start" and rec.calls[-1][0] == "train_end"
    assert [c[1] for c in rec.hooks("stage_start")] == [0, 12]
    # evaluations every 5 steps and at each stage end, one history row each
    assert [c[1] for c in rec.hooks("evaluate")] == [5, 10, 12, 15, 20]
    assert list(res.history["step"]) == [5, 10, 12, 15, 20]
    # Adam: one step per call; L-BFGS: a chunk of steps up to the next event (evaluation, stage end)
    assert [c[1] for c in rec.hooks("step_end")] == [*range(1, 13), 15, 20]


class EveryK(TrainerPlugin):
    def __init__(self, k):
        self.k, self.seen = k, []

    def steps_to_next_event(self, trainer):
        return self.k - trainer.step % self.k

    def on_step_end(self, trainer):
        self.seen.append(trainer.step)


def test_an_event_ends_an_lbfgs_chunk_there(poisson1d):
    plugin = EveryK(7)
    kanpde.solve(poisson1d, MLP([1, 4, 1]), plugins=[plugin], **tiny(lbfgs(30), every=100))
    assert all(s % 7 == 0 for s in plugin.seen[:-1]) and plugin.seen[-1] == 30  # and the stage end


class StopAt(TrainerPlugin):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, trainer):
        if trainer.step >= self.step:
            trainer.request_stop("enough")


def test_a_plugin_can_stop_the_run(poisson1d):
    res = kanpde.solve(poisson1d, MLP([1, 4, 1]), plugins=[StopAt(6)],
                       **tiny([{"optimizer": "adam", "steps": 50, "lr": 1e-3}]))
    assert res.status == "enough" and res.history["step"][-1] == 6


class Scale(TrainerPlugin):
    def __init__(self, loss=None, points=None):
        self.loss, self.points = loss, points

    def loss_weights(self, trainer):
        return self.loss

    def point_weights(self, trainer, term, x, residual):
        return None if self.points is None or term != "residual" else self.points(x)


def trainer_with(problem, *plugins, weights=None):
    model = KAN([1, 5, 1], grid_size=5, seed=0).double()
    trainer = Trainer(problem, model, SolveOptions.from_kwargs(**tiny(lbfgs(1), weights=weights)), plugins=plugins)
    trainer.resample(0)
    return trainer


def test_loss_and_point_weights_of_plugins(poisson1d):
    plain = trainer_with(poisson1d, weights={"residual": 0.5})
    loss, terms = plain.loss()
    assert loss.item() == pytest.approx(0.5 * terms["residual"] + terms["dirichlet_boundary"], rel=1e-14)
    # a factor on the configured weight (loss balancing)
    scaled = trainer_with(poisson1d, Scale(loss={"residual": 4.0}), weights={"residual": 0.5})
    loss4, terms4 = scaled.loss()
    assert terms4 == terms and loss4.item() == pytest.approx(2.0 * terms["residual"] + terms["dirichlet_boundary"],
                                                             rel=1e-14)
    # per-point weights: zero on x < 0 leaves the mean over the points x >= 0, times their share
    half = trainer_with(poisson1d, Scale(points=lambda x: (x[:, 0] >= 0).to(x.dtype)))
    x = half.collocation.detach().clone().requires_grad_(True)
    u = half.model(x)
    r2 = half.problem.residual(x, u).pow(2)[:, 0]
    want = (r2 * (x[:, 0] >= 0)).mean()
    assert half.loss_terms()["residual"].item() == pytest.approx(want.item(), rel=1e-12)
    with pytest.raises(ValueError, match="names 'resid', which is not a loss term"):
        trainer_with(poisson1d, Scale(loss={"resid": 2.0})).loss()


class AddWorstPoints(TrainerPlugin):
    """Residual-based refinement in a few lines: at step 10, add the 20 candidates with the
    largest residual to the collocation points."""

    name = "rar"

    def __init__(self):
        self.added = 0

    def steps_to_next_event(self, trainer):
        return 10 - trainer.step if trainer.step < 10 else None

    def on_step_end(self, trainer):
        if trainer.step == 10:
            cand = torch.linspace(-1, 1, 401, dtype=trainer.dtype).reshape(-1, 1).requires_grad_(True)
            r = trainer.problem.residual(cand, trainer.model(cand)).detach().abs()[:, 0]
            worst = cand.detach()[r.topk(20).indices]
            trainer.set_collocation(torch.cat([trainer.collocation.detach(), worst]))
            self.added = 20

    def state_dict(self):
        return {"added": self.added}

    def load_state_dict(self, state):
        self.added = state.get("added", 0)


def test_a_plugin_changes_the_collocation_points_and_keeps_its_state(poisson1d, tmp_path):
    plugin = AddWorstPoints()
    kanpde.solve(poisson1d, MLP([1, 6, 1]), plugins=[plugin], output_dir=tmp_path, plots=False,
                 **tiny(lbfgs(20), n_interior=100, every=5))
    state = torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert state["plugins"]["rar"] == {"added": 20}
    resumed = AddWorstPoints()
    kanpde.solve(poisson1d, MLP([1, 6, 1]), plugins=[resumed], output_dir=tmp_path, resume=True, plots=False,
                 **tiny(lbfgs(20), n_interior=100, every=5))
    assert resumed.added == 20
    with pytest.raises(ValueError, match=r"collocation points must have shape \(N >= 1, 1\)"):
        trainer_with(poisson1d).set_collocation(torch.zeros(3, 2))


def test_grid_of_the_model_is_kept_then_refined_never_coarsened(poisson1d):
    # kanpde problem=poisson1d model.grid_size=20 with the default stages: G = 20 from the first
    # step, 40 and 80 after the extensions; a G = 40 model never goes below 40
    for g in (20, 40):
        rec = Recorder()
        stages = [dataclasses_replace(s, steps=4) for s in default_stages()]
        kanpde.solve(poisson1d, KAN([1, 5, 1], grid_size=g), plugins=[rec], **tiny(stages, every=2,
                                                                                    grid_update_every=2,
                                                                                    grid_update_until=6))
        sizes = [c[2] for c in rec.hooks("step_end")]
        assert sizes[0] == g and min(sizes) >= g and sizes[-1] == 4 * g
        assert sorted(set(sizes)) == [g, 2 * g, 4 * g]


def dataclasses_replace(stage, **changes):
    import dataclasses
    return dataclasses.asdict(dataclasses.replace(stage, **changes))


def test_a_registered_optimizer_is_one_entry(poisson1d):
    register_optimizer("sgd_test", lambda params, stage: torch.optim.SGD(params, lr=stage.lr, momentum=0.9))
    try:
        res = kanpde.solve(poisson1d, MLP([1, 4, 1]), **tiny([{"optimizer": "sgd_test", "steps": 15, "lr": 1e-3,
                                                                "scheduler": "cosine"}]))
        assert res.history["step"][-1] == 15 and torch.isfinite(torch.as_tensor(res.history["loss"])).all()
        Stage(optimizer="sgd_test").validate()
    finally:
        OPTIMIZERS.pop("sgd_test")
    with pytest.raises(ValueError, match="optimizer must be one of"):
        Stage(optimizer="sgd_test").validate()
