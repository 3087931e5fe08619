"""New collocation points during training."""
from __future__ import annotations

from .base import TrainerPlugin

__all__ = ["Resampling"]


class Resampling(TrainerPlugin):
    """Draw a new set of collocation and boundary points every ``every`` steps (round ``r`` of
    a run is the same for the same seed, so a resumed run draws what the uninterrupted one
    did)."""

    def __init__(self, every: int):
        self.every = every

    def steps_to_next_event(self, trainer) -> int | None:
        return self.every - trainer.step % self.every if self.every else None

    def on_step_end(self, trainer) -> None:
        if self.every and trainer.step % self.every == 0:
            trainer.resample()
