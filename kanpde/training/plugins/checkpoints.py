"""Checkpoints at every evaluation: in memory (the state a diverged run falls back to) and,
with a run folder, on disk (the state ``resume=true`` continues from)."""
from __future__ import annotations

from .base import TrainerPlugin

__all__ = ["Checkpoints"]


class Checkpoints(TrainerPlugin):
    """After a step that evaluated, snapshot the whole training state (model, optimizer, step
    counters, history, random-number states, every plugin's state) and write it to
    ``checkpoint.pt`` in the run folder.  Runs last, so the snapshot holds the step's
    resampling and grid update: a resumed run continues exactly where the uninterrupted one
    does."""

    def on_step_end(self, trainer) -> None:
        if trainer.evaluated_this_step:
            state = trainer.state()
            trainer.remember(state)
            trainer.save_checkpoint(state)
