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
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .training.options import SolveOptions

__all__ = ["main", "KanpdeConfig", "build", "compose", "options_from_config", "config_dir"]


@dataclass
class KanpdeConfig(SolveOptions):
    """Typed schema of the whole configuration: the run settings of :class:`SolveOptions` (one
    definition for the CLI and ``kanpde.solve``, same names and defaults) plus the problem and
    the model (free-form ``_target_`` nodes whose keys the classes they build check), and the
    run-folder switches ``resume`` and ``plots``."""

    problem: Any = None
    model: Any = None
    resume: bool = False
    plots: bool = True


def config_dir() -> str:
    """The folder holding ``config.yaml``: packaged with kanpde, or ``conf/`` of a source tree."""
    here = Path(__file__).resolve().parent
    for cand in (here / "conf", here.parent / "conf"):
        if (cand / "config.yaml").is_file():
            return str(cand)
    raise FileNotFoundError(f"kanpde's configuration folder was not found next to {here}; reinstall kanpde")


def compose(overrides=()):
    """The configuration ``kanpde <overrides>`` runs with, composed without running it (for
    scripts and tests; ``build(compose([...]))`` gives its problem, model and options)."""
    from hydra import compose as hydra_compose, initialize_config_dir

    _register()
    with initialize_config_dir(config_dir=config_dir(), version_base="1.3"):
        return hydra_compose("config", overrides=list(overrides))


def options_from_config(cfg) -> SolveOptions:
    """The :class:`SolveOptions` part of a composed config, validated."""
    from omegaconf import DictConfig, OmegaConf

    values = {}
    for f in fields(SolveOptions):
        node = cfg[f.name]
        values[f.name] = OmegaConf.to_object(node) if isinstance(node, DictConfig) else node
    return SolveOptions.from_kwargs(**values)


def build(cfg) -> tuple[Any, Any, SolveOptions]:
    """Instantiate the problem, the model (wrapped in its input features, ``model.features``)
    and the options from a composed config."""
    import torch
    from hydra.utils import instantiate
    from omegaconf import OmegaConf

    from .models import feature_width, with_features

    problem_cfg = OmegaConf.to_container(cfg.problem, resolve=True)
    if not isinstance(problem_cfg, dict) or problem_cfg.get("_target_") in (None, "???"):
        raise ValueError("the problem config needs a _target_ (a Problem class), e.g. "
                         "problem._target_=my_module.MyProblem")
    problem = instantiate(problem_cfg)

    model_cfg = OmegaConf.to_container(cfg.model, resolve=True)
    hidden = model_cfg.pop("hidden", None)
    widths = model_cfg.pop("widths", None)
    features = model_cfg.pop("features", None)
    inputs = problem.input_dim
    if features:
        features = _feature_settings(features, problem)
        inputs = feature_width(features["kind"], problem.input_dim, **features["settings"])
    if widths is None:
        if hidden is None:
            raise ValueError("the model config needs `hidden` (hidden layer widths, e.g. [10]) or `widths`")
        widths = [inputs, *list(hidden), problem.output_dim]
    elif list(widths)[0] != inputs or list(widths)[-1] != problem.output_dim:
        raise ValueError(f"model.widths={list(widths)} does not fit problem {problem.name!r}: it needs "
                         f"{inputs} inputs{' (the input features)' if features else ''} and "
                         f"{problem.output_dim} outputs")
    # the seed also fixes the initial weights
    torch.manual_seed(cfg.seed)
    model = instantiate(model_cfg, widths=list(widths))
    if features:
        model = with_features(model, features["kind"], problem.input_dim, **features["settings"])
    return problem, model, options_from_config(cfg)


def _feature_settings(features, problem) -> dict:
    """``model.features`` as ``{"kind", "settings"}``; periodic features take the problem's
    periods (its Periodic conditions) unless the config gives them."""
    from .models import FEATURE_KINDS

    if not isinstance(features, dict) or "kind" not in features:
        raise ValueError(f"model.features must be null or a mapping with a kind (one of {list(FEATURE_KINDS)}), "
                         f"e.g. model.features={{kind:fourier,n_frequencies:64,scale:1.0}}; got {features!r}")
    settings = {k: v for k, v in features.items() if k != "kind"}
    if features["kind"] == "periodic" and "periods" not in settings:
        settings["periods"] = problem.periods()
        if not settings["periods"]:
            raise ValueError(f"model.features.kind=periodic needs periodic axes: problem {problem.name!r} has no "
                             f"Periodic condition (or give model.features.periods={{axis: period}})")
    return {"kind": features["kind"], "settings": settings}


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

    from .sampling import METHODS

    store = ConfigStore.instance()
    store.store(name="kanpde_schema", node=KanpdeConfig)
    # `sampler=halton` as a shorthand of `sampler.method=halton`, one choice per sampling method
    for method in METHODS:
        store.store(group="sampler", name=method, node={"method": method})


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
