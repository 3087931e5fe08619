"""KAN grids during training: grid extension at stage starts, knots that follow the points.

Models are recognised by the :class:`~kanpde.models.base.GridAdaptive` protocol; others are
left alone.
"""
from __future__ import annotations

import torch

from ...models import GridAdaptive
from .base import TrainerPlugin

__all__ = ["GridExtension", "GridUpdates"]


class GridExtension(TrainerPlugin):
    """At the start of a stage, refine the model's grid as the stage says (``grid_size`` or
    ``grid_factor``; the KAN paper's G = 5 -> 10 -> 20).  The refined model represents the same
    function; the stage's optimizer is built after it."""

    def on_stage_start(self, trainer, stage) -> None:
        model = trainer.model
        if not isinstance(model, GridAdaptive):
            return
        target = stage.grid_after(model.grid_size, trainer.stage_index)
        if target != model.grid_size:
            model.refine(target)
            model.to(device=trainer.device, dtype=trainer.dtype)


class GridUpdates(TrainerPlugin):
    """Every ``every`` steps up to step ``until``, move the model's knots to the quantiles of
    the current collocation points (the seed paper's grid update), keeping the function."""

    def __init__(self, every: int, until: int):
        self.every, self.until = every, until

    def steps_to_next_event(self, trainer) -> int | None:
        return self.every - trainer.step % self.every if self.every else None

    def on_step_end(self, trainer) -> None:
        if not (self.every and isinstance(trainer.model, GridAdaptive)):
            return
        if trainer.step % self.every == 0 and trainer.step <= self.until:
            with torch.no_grad():
                trainer.model.update_grid(trainer.collocation.detach())
            trainer.parameters_changed()
