"""Training engine: PINN loss, optimizer stages, plugins (evaluation, resampling, grid updates
and extension, checkpoints), results.

``solve(problem, model, **options)`` is the one entry point; the CLI calls it too.
"""
from .optimizers import OPTIMIZERS, OptimizerEntry, register_optimizer
from .options import (SCHEDULERS, EvalOptions, OptimOptions, SamplerOptions, SolveOptions, Stage,
                      StopOptions)
from .plugins import TrainerPlugin
from .result import Result, TrainingDiverged
from .distributed import DistributedContext, DistributedSetupError, init_distributed
from .errors import ResumeMismatch, RunFolderInUse, SetupError
from .solve import solve
from .trainer import Trainer, resolve_device

__all__ = ["solve", "Result", "TrainingDiverged", "resolve_device", "SolveOptions", "Stage", "OptimOptions",
           "SamplerOptions", "EvalOptions", "StopOptions", "OPTIMIZERS", "OptimizerEntry", "register_optimizer",
           "SCHEDULERS", "TrainerPlugin", "Trainer", "RunFolderInUse", "SetupError", "ResumeMismatch",
           "init_distributed", "DistributedContext", "DistributedSetupError"]
