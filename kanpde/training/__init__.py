"""Training engine: PINN loss, optimizer stages, grid updates and extension, checkpoints.

``solve(problem, model, **options)`` is the one entry point; the CLI calls it too.
"""
from .loop import Result, TrainingDiverged, resolve_device, solve
from .options import OPTIMIZERS, SCHEDULERS, SolveOptions, Stage

__all__ = ["solve", "Result", "TrainingDiverged", "resolve_device", "SolveOptions", "Stage",
           "OPTIMIZERS", "SCHEDULERS"]
