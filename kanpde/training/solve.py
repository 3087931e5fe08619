"""``kanpde.solve``: the one entry point of training, for the Python API and the CLI."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .. import constraints, runtime
from ..models import GridAdaptive
from .options import SolveOptions
from .plugins import TrainerPlugin
from .result import Result
from .trainer import Trainer

__all__ = ["solve"]


def solve(problem, model, *, options: SolveOptions | None = None, output_dir: str | Path | None = None,
          resume: bool = False, config_yaml: str = "", plots: bool = True,
          plugins: Sequence[TrainerPlugin] = (), **kwargs) -> Result:
    """Train ``model`` on ``problem`` with a physics-informed loss and return a :class:`Result`.

    Settings come as ``options`` (a :class:`SolveOptions`) or as its fields by keyword, named
    as on the command line: ``solve(problem, model, optim={"stages": [{"optimizer": "lbfgs",
    "steps": 200}]}, sampler={"n_interior": 2000}, seed=1)`` (a group given as a dict changes
    only the settings it names).  Without any, the run uses kanpde's default recipe.

    With ``output_dir`` the run writes ``results.h5``, ``checkpoint.pt`` (at every evaluation and
    at the end) and the plots there; ``resume=True`` continues from that folder's checkpoint.
    ``plugins``: extra :class:`~kanpde.training.plugins.TrainerPlugin` objects (hooks into the
    training loop).  Raises :class:`TrainingDiverged` (after saving the last good state) if the
    loss becomes NaN or infinite, and ``ValueError`` before training for a stage that would
    coarsen the model's grid.  The first call in a process tunes the C allocator for repeated
    large temporaries (:func:`kanpde.runtime.tune_allocator`; ``KANPDE_TUNE_MALLOC=0``
    disables it).
    """
    runtime.tune_allocator()
    if options is None:
        options = SolveOptions.from_kwargs(**kwargs)
    elif kwargs:
        raise TypeError(f"pass either options= or keyword options, not both (got {sorted(kwargs)})")
    else:
        options.validate()
    for plugin in plugins:
        if not isinstance(plugin, TrainerPlugin):
            raise TypeError(f"plugins must be TrainerPlugin objects, got {type(plugin).__name__}")
    if options.methods.hard_constraints:
        problem = constraints.with_hard_conditions(problem)
    # hard conditions (hard=True, or the switch above) hold exactly: u = lift + distance * N
    model = constraints.constrain(model, problem)
    if isinstance(model, GridAdaptive) and not resume:
        grid = model.grid_size  # every stage's grid, checked before anything trains
        for i, stage in enumerate(options.optim.stages):
            grid = stage.grid_after(grid, i)
    return Trainer(problem, model, options, output_dir, config_yaml, plots, plugins).run(resume=resume)
