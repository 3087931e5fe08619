"""Evaluation during training, and the early stops decided on it."""
from __future__ import annotations

import math
from typing import Mapping

from .base import TrainerPlugin

__all__ = ["Evaluation", "EarlyStopping"]


class Evaluation(TrainerPlugin):
    """Errors on the evaluation grid every ``every`` steps and at the end of every stage: one
    history row each (loss, loss terms, errors, training time), a progress-bar note, and every
    plugin's ``on_evaluate``."""

    def __init__(self, every: int):
        self.every = every

    def steps_to_next_event(self, trainer) -> int | None:
        return self.every - trainer.step % self.every if self.every else None

    def on_step_end(self, trainer) -> None:
        end_of_stage = trainer.stage_step >= trainer.stage.steps
        if not ((self.every and trainer.step % self.every == 0) or end_of_stage):
            return
        errors, _ = trainer.evaluate()
        trainer.record(errors)
        for plugin in trainer.plugins:
            plugin.on_evaluate(trainer, errors)


class EarlyStopping(TrainerPlugin):
    """Stop at an evaluation once ``target_rel_l2`` is reached (status ``target_reached``), after
    ``max_time_s`` seconds of training (``time_limit``), or when the loss has not improved by
    1 % in ``plateau_patience`` evaluations (``plateau``)."""

    def __init__(self, target_rel_l2: float | None, max_time_s: float | None, plateau_patience: int):
        self.target_rel_l2 = target_rel_l2
        self.max_time_s = max_time_s
        self.plateau_patience = plateau_patience

    def on_evaluate(self, trainer, errors: Mapping[str, float]) -> None:
        if self.target_rel_l2 is not None and errors.get("rel_l2", math.inf) <= self.target_rel_l2:
            trainer.request_stop("target_reached")
        elif self.max_time_s is not None and trainer.train_time >= self.max_time_s:
            trainer.request_stop("time_limit")
        elif self.plateau_patience:
            losses, k = trainer.history["loss"], self.plateau_patience
            if len(losses) > k and min(losses[-k:]) > 0.99 * min(losses[:-k]):
                trainer.request_stop("plateau")
