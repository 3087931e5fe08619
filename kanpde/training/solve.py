"""``kanpde.solve``: the one entry point of training, for the Python API and the CLI."""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from .. import constraints, runtime
from ..models import GridAdaptive
from .errors import RunFolderInUse, SetupError
from .options import SolveOptions
from .plugins import TrainerPlugin
from .result import Result
from .trainer import CHECKPOINT, RESULTS, Trainer

__all__ = ["solve", "as_trained", "SetupError", "RunFolderInUse"]


def solve(problem, model, *, options: SolveOptions | None = None, output_dir: str | Path | None = None,
          resume: bool | str = False, overwrite: bool = False, config_yaml: str = "", plots: bool = True,
          plugins: Sequence[TrainerPlugin] = (), **kwargs) -> Result:
    """Train ``model`` on ``problem`` with a physics-informed loss and return a :class:`Result`.

    Settings come as ``options`` (a :class:`SolveOptions`) or as its fields by keyword, named
    as on the command line: ``solve(problem, model, optim={"stages": [{"optimizer": "lbfgs",
    "steps": 200}]}, sampler={"n_interior": 2000}, seed=1)`` (a group given as a dict changes
    only the settings it names).  Without any, the run uses kanpde's default recipe.

    With ``output_dir`` the run writes ``results.h5``, ``checkpoint.pt`` (at every evaluation and
    at the end) and the plots there; ``resume=True`` continues from that folder's checkpoint,
    refusing settings other than the run's own beyond those a resume may change (the time
    budget, step counts, progress; ``resume="force"`` accepts them and records them).  A
    folder that already holds a run (``results.h5`` or ``checkpoint.pt``) is refused unless the
    call resumes it or says ``overwrite=True``.
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
    _check_problem_and_model(problem, model)
    if output_dir is not None and not resume and not overwrite:
        _check_folder_is_free(Path(output_dir))
    for plugin in plugins:
        if not isinstance(plugin, TrainerPlugin):
            raise TypeError(f"plugins must be TrainerPlugin objects, got {type(plugin).__name__}")
    problem, model = as_trained(problem, model, options)
    if isinstance(model, GridAdaptive) and not resume:
        grid = model.grid_size  # every stage's grid, checked before anything trains
        try:
            for i, stage in enumerate(options.optim.stages):
                grid = stage.grid_after(grid, i)
        except ValueError as exc:
            raise SetupError(str(exc)) from None
    return Trainer(problem, model, options, output_dir, config_yaml, plots, plugins).run(resume=resume)


def as_trained(problem, model, options: SolveOptions):
    """The problem and the model as a run with ``options`` trains them: the problem with every
    Dirichlet and initial condition hard under ``methods.hard_constraints``, the model wrapped so
    that its hard conditions hold exactly (u = lift + distance * N).  ``kanpde.load`` rebuilds a
    run's objects with it."""
    if options.methods.hard_constraints:
        problem = constraints.with_hard_conditions(problem)
    return problem, constraints.constrain(model, problem)


def _check_problem_and_model(problem, model) -> None:
    """Refuse, before anything is built or written, a problem or model of the wrong kind and a
    model whose input or output width does not fit the problem."""
    from torch import nn

    from ..problem import Problem

    if isinstance(problem, type):
        raise TypeError(f"kanpde.solve: problem must be a Problem instance, got the class {problem.__name__}; "
                        f"create one first, e.g. {problem.__name__}()")
    if not isinstance(problem, Problem):
        raise TypeError(f"kanpde.solve: problem must be a kanpde.Problem instance, got {type(problem).__name__} "
                        f"{problem!r:.60}")
    if isinstance(model, type):
        raise TypeError(f"kanpde.solve: model must be a network instance, got the class {model.__name__}; "
                        f"create one first, e.g. {model.__name__}([{problem.input_dim}, 10, {problem.output_dim}])")
    if not isinstance(model, nn.Module):
        raise TypeError(f"kanpde.solve: model must be a torch.nn.Module (e.g. kanpde.models.KAN([{problem.input_dim}, "
                        f"10, {problem.output_dim}])), got {type(model).__name__} {model!r:.60}")
    inputs, outputs = getattr(model, "in_features", None), getattr(model, "out_features", None)
    if (inputs is not None and inputs != problem.input_dim) or (outputs is not None and outputs != problem.output_dim):
        widths = getattr(model, "widths", None)
        raise SetupError(f"kanpde.solve: the model does not fit problem {problem.name!r}: it takes {inputs} inputs and "
                         f"gives {outputs} outputs (widths {widths}); the problem has {problem.input_dim} inputs "
                         f"and {problem.output_dim} outputs")


def _check_folder_is_free(folder: Path) -> None:
    held = [name for name in (RESULTS, CHECKPOINT) if (folder / name).exists()]
    if held:
        raise RunFolderInUse(f"the run folder {str(folder)!r} already holds a run ({', '.join(held)}); continue it "
                             f"with resume=true, replace it with overwrite=true, or choose another folder")
