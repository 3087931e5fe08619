"""Optimizers a training stage can name: a registry, one entry per optimizer.

An entry says how to build the optimizer for a stage and how it runs: a *one-step* optimizer
(Adam, SGD, ...) takes one gradient step per call and may follow a learning-rate schedule; a
*multi-step* one (L-BFGS) runs up to the trainer's next event (evaluation, resampling, grid
update, stage end) in one call, and its curvature memory is dropped whenever the loss function
changes (new collocation points, moved knots).  Adding an optimizer is one call::

    from kanpde.training import register_optimizer
    register_optimizer("sgd", lambda params, stage: torch.optim.SGD(params, lr=stage.lr, momentum=0.9))

after which ``optim.stages.0.optimizer=sgd`` (CLI) or ``{"optimizer": "sgd", ...}`` (Python)
selects it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from .lbfgs import AVAILABLE as LBFGS_AVAILABLE, LBFGS
from .options import Stage

__all__ = ["OptimizerEntry", "OPTIMIZERS", "register_optimizer"]


def one_step(optimizer: torch.optim.Optimizer, closure: Callable, max_steps: int) -> int:
    """Run one optimizer step; returns the number of steps taken (1)."""
    optimizer.step(closure)
    return 1


@dataclass(frozen=True)
class OptimizerEntry:
    """How a stage builds and runs one optimizer.

    ``build(params, stage)`` returns a ``torch.optim.Optimizer``; ``run(optimizer, closure,
    max_steps)`` runs it for at most ``max_steps`` steps (the closure evaluates the loss and its
    gradient) and returns the number taken; ``schedules``: a stage's learning-rate schedule
    applies (stepped once per step); ``reset_when_loss_changes``: rebuild the optimizer when
    the loss function changes (quasi-Newton memory of another function misleads)."""

    build: Callable[[list, Stage], torch.optim.Optimizer]
    run: Callable[[torch.optim.Optimizer, Callable, int], int] = one_step
    schedules: bool = True
    reset_when_loss_changes: bool = False


def _build_lbfgs(params: list, stage: Stage) -> torch.optim.Optimizer:
    kw = dict(lr=stage.lr, max_iter=1, history_size=stage.history_size, tolerance_grad=0.0, tolerance_change=0.0,
              line_search_fn="strong_wolfe")
    if LBFGS_AVAILABLE:
        # the loss only changes with a resampling or a grid update, and both make a new
        # optimizer: a step may start from the previous step's last evaluation
        return LBFGS(params, reuse_evaluation=True, **kw)
    return torch.optim.LBFGS(params, **kw)


def _run_lbfgs(optimizer: torch.optim.Optimizer, closure: Callable, max_steps: int) -> int:
    """Up to ``max_steps`` L-BFGS iterations in one call (no repeated evaluation between them)."""
    group = optimizer.param_groups[0]
    group["max_iter"] = max_steps
    group["max_eval"] = max_steps * 5 // 4 + 20
    state = optimizer.state[group["params"][0]]
    before = state.get("n_iter", 0)
    optimizer.step(closure)
    return min(max(state.get("n_iter", 0) - before, 1), max_steps)


#: name -> entry; ``Stage.optimizer`` selects one
OPTIMIZERS: dict[str, OptimizerEntry] = {
    "adam": OptimizerEntry(lambda params, stage: torch.optim.Adam(params, lr=stage.lr)),
    "lbfgs": OptimizerEntry(_build_lbfgs, _run_lbfgs, schedules=False, reset_when_loss_changes=True),
}


def register_optimizer(name: str, build: Callable[[list, Stage], torch.optim.Optimizer], *,
                       run: Callable[[torch.optim.Optimizer, Callable, int], int] = one_step,
                       schedules: bool = True, reset_when_loss_changes: bool = False) -> None:
    """Make ``name`` a choice of ``Stage.optimizer`` (see :class:`OptimizerEntry`); replaces an
    entry of the same name."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"an optimizer name must be a non-empty string, got {name!r}")
    if not callable(build):
        raise TypeError(f"build must be callable as build(params, stage), got {build!r}")
    OPTIMIZERS[name] = OptimizerEntry(build, run, schedules, reset_when_loss_changes)


def make_scheduler(optimizer: torch.optim.Optimizer, stage: Stage):
    """The stage's learning-rate schedule for ``optimizer``, or ``None``."""
    if stage.scheduler == "none" or not OPTIMIZERS[stage.optimizer].schedules:
        return None
    n = max(stage.steps, 1)
    if stage.scheduler == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=n, eta_min=stage.lr * stage.gamma)
    if stage.scheduler == "exponential":
        return torch.optim.lr_scheduler.ExponentialLR(optimizer, gamma=stage.gamma ** (1.0 / n))
    return torch.optim.lr_scheduler.StepLR(optimizer, step_size=stage.step_size, gamma=stage.gamma)
