"""The ``kanpde`` command: Hydra configuration -> objects -> :func:`kanpde.solve`.

This is the only module that knows Hydra.  Examples::

    kanpde                                   # KAN on the paper's 2-D Poisson problem
    kanpde model=mlp                         # the MLP answer to compare
    kanpde -m model=kan,mlp seed=0,1,2       # a sweep, one run folder per job
    kanpde problem=custom problem._target_=my_pde.MyPoisson   # your own problem class
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

from .training.options import SolveOptions, Stage

__all__ = ["main", "KanpdeConfig", "build", "config_dir"]


@dataclass
class OptimConfig:
    stages: List[Stage] = field(default_factory=lambda: [Stage()])
    weights: Dict[str, float] = field(default_factory=dict)
    grid_update_every: int = 0
    grid_update_until: int = 0


@dataclass
class SamplerConfig:
    method: str = "sobol"
    n_interior: int = 2500
    n_boundary: int = 400
    resample_every: int = 0


@dataclass
class EvalConfig:
    every: int = 50
    n_points: int = 10000


@dataclass
class StopConfig:
    target_rel_l2: Optional[float] = None
    plateau_patience: int = 0
    max_time_s: Optional[float] = None


@dataclass
class KanpdeConfig:
    """Typed schema of the whole configuration (problem and model are free-form ``_target_``
    nodes; their keys are checked by the classes they build)."""

    problem: Any = None
    model: Any = None
    optim: OptimConfig = field(default_factory=OptimConfig)
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    stop: StopConfig = field(default_factory=StopConfig)
    seed: int = 0
    dtype: str = "float64"
    device: str = "auto"
    derivatives: str = "auto"
    resume: bool = False
    plots: bool = True
    progress: bool = True


def config_dir() -> str:
    """The folder holding ``config.yaml``: packaged with kanpde, or ``conf/`` of a source tree."""
    here = Path(__file__).resolve().parent
    for cand in (here / "conf", here.parent / "conf"):
        if (cand / "config.yaml").is_file():
            return str(cand)
    raise FileNotFoundError(f"kanpde's configuration folder was not found next to {here}; reinstall kanpde")


def build(cfg) -> tuple[Any, Any, SolveOptions]:
    """Instantiate the problem, the model and the options from a composed config."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    problem_cfg = OmegaConf.to_container(cfg.problem, resolve=True)
    if not isinstance(problem_cfg, dict) or "_target_" not in problem_cfg:
        raise ValueError("the problem config needs a _target_ (a Problem class), e.g. "
                         "problem._target_=my_module.MyProblem")
    problem = instantiate(problem_cfg)

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    hidden = model_cfg.pop("hidden", None)
    widths = model_cfg.pop("widths", None)
    if widths is None:
        if hidden is None:
            raise ValueError("the model config needs `hidden` (hidden layer widths, e.g. [10]) or `widths`")
        widths = [problem.input_dim, *list(hidden), problem.output_dim]
    elif list(widths)[0] != problem.input_dim or list(widths)[-1] != problem.output_dim:
        raise ValueError(f"model.widths={list(widths)} does not fit problem {problem.name!r}: it needs "
                         f"{problem.input_dim} inputs and {problem.output_dim} outputs")
    # the seed also fixes the initial weights
    torch.manual_seed(cfg.seed)
    model = instantiate(model_cfg, widths=list(widths))

    o = cfg.optim
    options = SolveOptions.from_kwargs(
        stages=[Stage(**OmegaConf.to_container(s)) for s in o.stages],
        weights=dict(o.weights),
        grid_update_every=o.grid_update_every,
        grid_update_until=o.grid_update_until,
        n_interior=cfg.sampler.n_interior,
        n_boundary=cfg.sampler.n_boundary,
        sampler=cfg.sampler.method,
        resample_every=cfg.sampler.resample_every,
        derivatives=cfg.derivatives,
        dtype=cfg.dtype,
        device=cfg.device,
        seed=cfg.seed,
        eval_every=cfg.eval.every,
        n_eval=cfg.eval.n_points,
        target_rel_l2=cfg.stop.target_rel_l2,
        plateau_patience=cfg.stop.plateau_patience,
        max_time_s=cfg.stop.max_time_s,
        progress=cfg.progress,
    )
    return problem, model, options


def _run(cfg) -> None:
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import OmegaConf

    from .training import TrainingDiverged, solve

    run_dir = Path(HydraConfig.get().runtime.output_dir)
    try:
        problem, model, options = build(cfg)
        result = solve(problem, model, options=options, output_dir=run_dir, resume=cfg.resume,
                       config_yaml=OmegaConf.to_yaml(cfg), plots=cfg.plots)
    except TrainingDiverged as exc:
        print(f"kanpde: error: {exc}", file=sys.stderr)
        raise SystemExit(3) from None
    except (ValueError, TypeError, FileNotFoundError, PermissionError, RuntimeError) as exc:
        if os.environ.get("KANPDE_FULL_ERROR"):
            raise
        print(f"kanpde: error: {_message(exc)}", file=sys.stderr)
        raise SystemExit(2) from None
    print(result.summary())


def _message(exc: BaseException) -> str:
    # Hydra wraps constructor errors; show the user's error first and drop the wrapper noise.
    text = str(exc)
    cause = exc.__cause__
    if cause is not None and type(exc).__name__ == "InstantiationException":
        return f"{text.splitlines()[0]} {cause}"
    return text


def _register() -> None:
    from hydra.core.config_store import ConfigStore

    ConfigStore.instance().store(name="kanpde_schema", node=KanpdeConfig)


def main() -> None:
    """Console entry point (``kanpde`` and ``python -m kanpde``)."""
    import hydra

    # A user's own problem module in the current folder must be importable by `_target_`.
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    _register()
    hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(_run)()


if __name__ == "__main__":
    main()
