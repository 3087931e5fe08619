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
    the model (free-form ``_target_`` nodes whose keys the classes they build check), the
    run-folder switches ``resume``, ``overwrite`` and ``plots``, the job's CPU ``threads``
    (``auto``: its launcher's share of the cores, :mod:`kanpde.threads`), and ``symbolic``
    (read the trained KAN as a formula afterwards, :mod:`kanpde.symbolic`)."""

    problem: Any = None
    model: Any = None
    resume: Any = False       # true, false or force (continue despite changed settings)
    overwrite: bool = False
    plots: bool = True
    threads: Any = "auto"
    #: read the trained KAN as a formula at the end of the run (kanpde-symbolic), with these
    #: pruning threshold and library (null: every function; "x|cos,sin" one library per layer)
    symbolic: bool = False
    symbolic_prune: float = 0.01
    symbolic_library: Any = None


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
    if hidden is not None and (not isinstance(hidden, (list, tuple)) or any(
            isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden)):
        raise ValueError(f"model.hidden must be a list of positive integers (the hidden layers' widths, e.g. "
                         f"[10] or [32,32]), got {hidden!r}")
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
    from hydra.types import RunMode
    from omegaconf import OmegaConf

    from .cli_errors import EXIT_CONFIG, EXIT_DIVERGED, EXIT_PROBLEM, describe, full_errors
    from .threads import apply_threads, job_threads
    from .training import SetupError, TrainingDiverged, solve
    from .training.distributed import SINGLE, init_distributed, launch_environment, shutdown

    hydra_cfg = HydraConfig.get()
    run_dir = Path(hydra_cfg.runtime.output_dir)
    # a job of a sweep records why it failed and returns, so the sweep goes on (sweep_status.py)
    in_sweep = hydra_cfg.mode == RunMode.MULTIRUN
    ctx = SINGLE
    try:  # the configuration: nothing is trained or written by this part
        if cfg.resume not in (True, False, "force"):
            raise ValueError(f"resume must be true, false or force, got {cfg.resume!r}")
        # under torchrun / srun: join the other processes; every one works in rank 0's run folder
        launch = launch_environment()
        if launch is not None and launch.rank == 0:  # says why the run waits, should a process be missing
            print(f"kanpde: process 0 of {launch.world_size} ({launch.launcher}); meeting the others at "
                  f"{launch.master_addr}:{launch.master_port}", file=sys.stderr, flush=True)
        ctx = init_distributed(cfg.device)
        run_dir = Path(ctx.broadcast(str(run_dir)))
        apply_threads(job_threads(cfg.threads, OmegaConf.to_container(hydra_cfg.launcher, resolve=True)))
        failure = None
        try:
            problem, model, options = build(cfg)
        except Exception as exc:  # noqa: BLE001 - every process must learn of any process's failure
            failure = exc
        ctx.agree(failure)
    except Exception as exc:
        if full_errors():
            raise
        return _job_failed(run_dir, in_sweep, "failed", describe(exc), EXIT_CONFIG, ctx.is_main)
    try:
        result = solve(problem, model, options=options, output_dir=run_dir, resume=cfg.resume,
                       overwrite=cfg.overwrite, config_yaml=OmegaConf.to_yaml(cfg), plots=cfg.plots)
    except TrainingDiverged as exc:
        return _job_failed(run_dir, in_sweep, "diverged", str(exc), EXIT_DIVERGED, ctx.is_main)
    except Exception as exc:
        if full_errors():
            raise
        code = EXIT_CONFIG if isinstance(exc, SetupError) else EXIT_PROBLEM
        return _job_failed(run_dir, in_sweep, "failed", describe(exc), code, ctx.is_main)
    finally:
        shutdown()
    if not ctx.is_main:  # rank 0 reports (and reads the formula) for the whole run
        return
    print(result.summary())
    if cfg.symbolic:
        from .symbolic import symbolic_run

        try:
            symbolic_run(run_dir, threshold=cfg.symbolic_prune, library=cfg.symbolic_library, plots=cfg.plots)
        except Exception as exc:
            if full_errors():
                raise
            return _job_failed(run_dir, in_sweep, "failed", f"the run finished, but reading it as a formula failed: "
                               f"{describe(exc)}", EXIT_CONFIG)


def _job_failed(run_dir: Path, in_sweep: bool, status: str, message: str, exit_code: int,
                reports: bool = True) -> None:
    """Report a run that did not complete: one message; then, alone, exit with ``exit_code``,
    or, as a job of a sweep, record it in the job's folder and let the sweep go on.  Of the
    processes of a distributed run only rank 0 ``reports`` (all exit)."""
    from .training.distributed import shutdown

    shutdown()
    if reports:
        print(f"kanpde: error: {message}", file=sys.stderr)
    if not in_sweep:
        raise SystemExit(exit_code) from None
    if not reports:
        return
    from .sweep_status import write_job_status

    write_job_status(run_dir, status, message, exit_code)


def _command_line_overrides(argv: list[str]) -> dict[str, str]:
    """The ``key=value`` overrides of a command line as Hydra will read them (``+``/``++``
    prefixes dropped, the last value of a key wins), for the few settings that must act before
    Hydra composes the configuration: the run folders, ``resume``, a distributed launch."""
    out = {}
    for arg in argv:
        key, sep, value = arg.partition("=")
        if sep and not key.startswith("-"):
            out[key.lstrip("+")] = value
    return out


def _check_output_folders(overrides: dict[str, str]) -> None:
    """Refuse a run or sweep folder that lies under a file, before Hydra tries to create it."""
    from .cli_errors import EXIT_CONFIG

    for key in ("hydra.run.dir", "hydra.sweep.dir"):
        value = overrides.get(key)
        if not value:
            continue
        path = Path(value).expanduser()
        for p in (path, *path.parents):
            if p.exists() and not p.is_dir():
                print(f"kanpde: error: {key}={value!r} cannot be a folder: {str(p)!r} is a file", file=sys.stderr)
                raise SystemExit(EXIT_CONFIG)


def _quiet_helper_process(argv: list[str]) -> list[str]:
    """``argv`` for this process: processes other than rank 0 of a distributed launch (torchrun,
    srun) leave Hydra's run folder, logs and saved config to rank 0 (they learn its folder from
    it once they have joined, so that one run leaves one folder)."""
    from .cli_errors import EXIT_CONFIG
    from .training.distributed import DistributedSetupError, launch_environment

    try:
        launch = launch_environment()
    except DistributedSetupError as exc:
        print(f"kanpde: error: {exc}", file=sys.stderr)
        raise SystemExit(EXIT_CONFIG) from None
    if launch is None or launch.rank == 0:
        return argv
    quiet = {"hydra.output_subdir": "null", "hydra/job_logging": "disabled", "hydra/hydra_logging": "disabled",
             "hydra.run.dir": "."}
    return [a for a in argv if a.partition("=")[0].lstrip("+") not in quiet] + [f"{k}={v}" for k, v in quiet.items()]


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
    from .sweep_status import SWEEP_FAILED_EXIT, last_sweep

    _register()
    _check_output_folders(_command_line_overrides(sys.argv[1:]))
    sys.argv[1:] = _quiet_helper_process(sys.argv[1:])
    overrides = _command_line_overrides(sys.argv[1:])
    if overrides.get("resume", "").lower() in ("true", "force") and "hydra.output_subdir" not in overrides:
        # a resume keeps the run's own .hydra/ (the configuration it was started with); a resume
        # that is refused must leave the folder as it was
        sys.argv.append("hydra.output_subdir=null")
    hydra.main(version_base="1.3", config_path=config_dir(), config_name="config")(_run)()
    if last_sweep.get("failed") or last_sweep.get("diverged"):
        raise SystemExit(SWEEP_FAILED_EXIT)


if __name__ == "__main__":
    main()
