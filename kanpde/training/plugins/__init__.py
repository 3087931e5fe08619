"""Trainer plugins: the extension points of the training loop and the built-in plugins that
use them (see :mod:`.base` for the hooks)."""
from .base import TrainerPlugin
from .checkpoints import Checkpoints
from .collocation import Resampling
from .evaluation import EarlyStopping, Evaluation
from .grids import GridExtension, GridUpdates

__all__ = ["TrainerPlugin", "Evaluation", "EarlyStopping", "Resampling", "GridExtension", "GridUpdates",
           "Checkpoints"]
