"""The trainer's extension points: a plugin is an object with hooks the training loop calls.

The loop itself is short and fixed (see :class:`kanpde.training.trainer.Trainer`); everything
optional is a plugin: evaluation and early stop, resampling, KAN grid updates and grid
extension, checkpoints, and whatever a user adds with ``solve(..., plugins=[...])``.  Override
only the hooks you need::

    class PrintLoss(TrainerPlugin):
        def on_evaluate(self, trainer, errors):
            print(trainer.step, trainer.last_loss, errors["rel_l2"])

Order of a training step: the optimizer runs up to the nearest :meth:`steps_to_next_event` of
all plugins, then every plugin's :meth:`on_step_end` runs in order (the built-in evaluation
first, which calls every plugin's :meth:`on_evaluate`; the built-in checkpoint last, so a
checkpoint holds what the other plugins changed).  Any plugin may end the run with
``trainer.request_stop(status)``.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Mapping

import torch

if TYPE_CHECKING:
    from ..options import Stage
    from ..result import Result
    from ..trainer import Trainer

__all__ = ["TrainerPlugin"]


class TrainerPlugin:
    """Base class of trainer plugins: every hook does nothing until overridden.

    What a plugin may use of the trainer: ``problem``, ``model``, ``options``, ``device``,
    ``dtype``, ``step``, ``stage``, ``stage_index``, ``stage_step``, ``train_time``, ``history``,
    ``last_loss``, ``last_terms`` (loss terms of the latest evaluation of the loss, floats),
    ``collocation`` (the interior points, ``(N, d)``), ``batches`` (the conditions' point sets),
    and the methods ``loss_terms()``, ``pointwise_residual(x)``, ``evaluate()``, ``resample()``,
    ``set_collocation(x)``, ``loss_changed()``, ``parameters_changed()``, ``request_stop(status)``.

    In a data-parallel run (:mod:`kanpde.training.distributed`) every process runs every hook.
    ``collocation`` and ``batches`` are the global point sets (the same on every process), the
    loss sees this process's shard (``trainer.shard(t)`` takes its rows of a per-point tensor),
    ``loss_terms()`` are this process's shares (their gradients summed over the processes with
    ``trainer.reduce_gradients(grads)``), ``pointwise_residual(x)`` gives the whole ``x`` on
    every process, and ``trainer.distributed`` offers ``all_reduce_sum`` for a plugin's own sums.
    """

    #: key of the plugin's state in checkpoints (default: the class name)
    name: str | None = None

    def on_train_start(self, trainer: "Trainer") -> None:
        """Once, before the first step (after the state is set up, fresh or resumed)."""

    def on_stage_start(self, trainer: "Trainer", stage: "Stage") -> None:
        """At the start of every stage, before its optimizer is built."""

    def steps_to_next_event(self, trainer: "Trainer") -> int | None:
        """Steps until this plugin wants :meth:`on_step_end` to see the trainer (multi-step
        optimizers such as L-BFGS stop there); ``None``: no wish."""
        return None

    def on_step_end(self, trainer: "Trainer") -> None:
        """After every optimizer call (one step, or a chunk of L-BFGS steps)."""

    def on_evaluate(self, trainer: "Trainer", errors: Mapping[str, float]) -> None:
        """After each evaluation of the errors (``rel_l2``, ``rel_h1``, ...; NaN without an
        exact solution)."""

    def on_train_end(self, trainer: "Trainer", result: "Result") -> None:
        """Once, after the final evaluation, before the results are written."""

    def loss_weights(self, trainer: "Trainer") -> Mapping[str, float] | None:
        """Factors for some loss terms, multiplying their configured weights (loss balancing);
        ``None``: no change."""
        return None

    def point_weights(self, trainer: "Trainer", term: str, x: torch.Tensor,
                      residual: torch.Tensor) -> torch.Tensor | None:
        """Weights ``(N,)`` or ``(N, 1)`` of the squared residuals of loss term ``term`` at its
        points ``x`` (e.g. causal weights in time, attention weights); ``residual`` is the term's
        ``(N, k)`` residual, detached.  Called at every evaluation of the loss (several per
        L-BFGS step): compute, do not update state here.  ``None``: plain mean."""
        return None

    def log_values(self, trainer: "Trainer") -> Mapping[str, float] | None:
        """Numbers to record in every history row (``results.h5`` history, ``history.png``),
        e.g. ``{"weight_residual": 3.2}``."""
        return None

    def state_dict(self) -> dict:
        """What a checkpoint must keep for a resumed run to continue exactly."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        """Restore :meth:`state_dict` (on resume)."""

    @property
    def key(self) -> str:
        return self.name or type(self).__name__
