"""``kanpde.load``: a finished run folder back as a trained model to evaluate anywhere.

::

    import kanpde
    run = kanpde.load("outputs/2026-12-07/12-00-00")
    u = run.predict(points)                                   # numpy in, numpy out
    d = run.predict(points, derivatives=["grad", "laplacian"])  # {"u", "grad", "laplacian"}
    run.metrics["rel_l2"], run.history["loss"], run.unknowns   # what the run wrote

The problem and the model are rebuilt from the configuration the run saved in its checkpoint
(a run of the ``kanpde`` command), exactly as the run built them (hard constraints included),
and the trained parameters are loaded into them.  A run made from Python with
``kanpde.solve(problem, model, output_dir=...)`` saved no configuration: pass the same kind of
``problem`` and ``model`` to :func:`load` and it loads the parameters into them.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from . import __version__, io, operators

__all__ = ["load", "Run", "LoadError", "DERIVATIVES", "run_folder_parser"]

#: what :meth:`Run.predict` can return besides the values
DERIVATIVES = ("grad", "laplacian", "hessian", "dt")

_CHUNK = 8192


class LoadError(ValueError):
    """A run folder cannot be loaded (the message names the folder and why)."""


@dataclass
class Run:
    """A trained run, loaded by :func:`load`.

    ``problem`` and ``model`` are the objects the run trained (the model in eval mode, on
    ``device``); ``metrics``, ``history``, ``field`` and ``attrs`` are the run's
    ``results.h5`` (empty when it has none); ``unknowns`` the learned scalar unknowns of an
    inverse problem; ``config_yaml`` the configuration it ran with ("" for a Python run).
    """

    folder: Path
    problem: Any
    model: torch.nn.Module
    device: torch.device
    dtype: torch.dtype
    derivatives: str
    metrics: dict = dataclass_field(default_factory=dict)
    history: dict = dataclass_field(default_factory=dict)
    field: dict = dataclass_field(default_factory=dict)
    attrs: dict = dataclass_field(default_factory=dict)
    unknowns: dict = dataclass_field(default_factory=dict)
    config_yaml: str = ""
    #: the run's settings (:class:`~kanpde.training.SolveOptions`)
    options: Any = None

    def _points(self, x, what: str = "x") -> tuple[torch.Tensor, bool]:
        """``x`` as a tensor on the run's device and dtype (time axis tagged); whether it came
        as numpy (the answer goes back as numpy)."""
        is_numpy = not isinstance(x, torch.Tensor)
        arr = torch.as_tensor(np.asarray(x, dtype=np.float64)) if is_numpy else x.detach()
        d = self.problem.input_dim
        if arr.dim() == 1 and d == 1:
            arr = arr.reshape(-1, 1)
        if arr.dim() != 2 or arr.shape[1] != d:
            raise ValueError(f"{what} must have shape (N, {d}) (columns {', '.join(self.problem.input_names)}) for "
                             f"problem {self.problem.name!r}, got {tuple(arr.shape)}")
        if not torch.isfinite(arr).all():
            raise ValueError(f"{what} holds NaN or infinite coordinates")
        arr = arr.to(device=self.device, dtype=self.dtype)
        axis = self.problem.time_axis
        return (arr if axis is None else operators.with_time_axis(arr, axis)), is_numpy

    def predict(self, x, derivatives: Sequence[str] | None = None):
        """The trained solution at points ``x`` ``(N, d)`` (numpy or torch; the answer comes
        back the same way, on the CPU for numpy): ``(N, m)`` values, or with ``derivatives``
        (names from :data:`DERIVATIVES`) a dict ``{"u": (N, m), "grad": (N, d) or (N, m, d),
        "laplacian": (N, m), "hessian": (N, d, d) or (N, m, d, d), "dt": (N, m)}`` computed
        as the run's residual computed them (the same derivative path)."""
        wanted = list(derivatives or [])
        bad = [w for w in wanted if w not in DERIVATIVES]
        if bad:
            raise ValueError(f"derivatives must be names from {DERIVATIVES}, got {bad}")
        if "dt" in wanted and self.problem.time_axis is None:
            raise ValueError(f"derivative 'dt' needs a space-time problem; {self.problem.name!r} has no time axis")
        pts, is_numpy = self._points(x)
        transform = getattr(self.problem, "output_transform", None)
        parts: dict[str, list[torch.Tensor]] = {name: [] for name in ["u", *wanted]}
        for start in range(0, pts.shape[0], _CHUNK):
            xs = pts[start:start + _CHUNK]
            if not wanted:
                with torch.no_grad():
                    u = operators.evaluate(self.model, xs, derivatives=self.derivatives, order=1, transform=transform)
                parts["u"].append(u.detach())
                continue
            # requires_grad lets every operator fall back to autograd where the jet lacks it
            xs = xs.detach().requires_grad_(True)
            with torch.enable_grad():
                u = operators.evaluate(self.model, xs, derivatives=self.derivatives, order=2, transform=transform)
                scalar = u.shape[1] == 1
                values = {"u": u}
                for name in wanted:
                    if name == "grad":
                        values[name] = operators.grad(u, xs)
                    elif name == "laplacian":
                        values[name] = operators.laplacian(u, xs)
                    elif name == "dt":
                        values[name] = operators.dt(u, xs)
                    else:
                        rows = [operators.hessian(u, xs, component=c) for c in range(u.shape[1])]
                        values[name] = rows[0] if scalar else torch.stack(rows, dim=1)
            for name, value in values.items():
                parts[name].append(value.detach())
        out = {name: torch.cat(chunks) if chunks else torch.zeros(0) for name, chunks in parts.items()}
        if is_numpy:
            out = {name: value.cpu().numpy() for name, value in out.items()}
        return out if wanted else out["u"]

    def predict_unknown(self, name: str, x=None):
        """A learned unknown: a scalar's value (float), or a field's values at ``x`` ``(N, d)``
        (numpy or torch, answered the same way)."""
        params = self.problem.unknown_parameters
        specs = {} if params is None else params.specs
        if name not in specs:
            raise KeyError(f"problem {self.problem.name!r} has no unknown {name!r}; its unknowns are {list(specs)}")
        if name in params.scalars:
            return params.scalar_values()[name]
        if x is None:
            raise ValueError(f"unknown {name!r} is a field: pass the points x (N, {self.problem.input_dim})")
        pts, is_numpy = self._points(x)
        with torch.no_grad():
            values = params.fields[name](pts).detach()
        return values.cpu().numpy() if is_numpy else values


def load(folder: str | os.PathLike, *, device: str = "cpu", problem=None, model=None) -> Run:
    """Load the finished (or interrupted) run in ``folder`` and return a :class:`Run`.

    ``device``: where the model goes (``cpu``, ``cuda``, ``auto``).  ``problem`` and ``model``:
    for a run made from Python (no saved configuration), objects like the ones it trained;
    for a ``kanpde`` run they replace the rebuilt ones.  Raises :class:`LoadError` naming the
    folder for a missing folder or checkpoint, a run of another kanpde version, or a model
    whose class or shape differs from the run's."""
    from .training.trainer import CHECKPOINT, RESULTS, resolve_device

    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise LoadError(f"run folder {str(folder)!r} does not exist")
    path = folder / CHECKPOINT
    if not path.is_file():
        has_results = (folder / RESULTS).is_file()
        raise LoadError(f"run folder {str(folder)!r} has no {CHECKPOINT}"
                        + (f" (it has {RESULTS}, but the trained parameters are only in the checkpoint)"
                           if has_results else "; is it a kanpde run folder?"))
    state = io.load_checkpoint(path, map_location="cpu")
    version = state.get("kanpde_version")
    if version != __version__:
        raise LoadError(f"run folder {str(folder)!r} was written by kanpde {version}; this is kanpde {__version__}. "
                        f"Load it with kanpde {version}, or rerun it with this version")
    config_yaml = state.get("config_yaml") or ""
    options = None
    if config_yaml and (problem is None or model is None):
        built_problem, built_model, options = _rebuild(config_yaml, folder)
        problem = built_problem if problem is None else problem
        model = built_model if model is None else model
    if problem is None or model is None:
        raise LoadError(f"run folder {str(folder)!r} was made with kanpde.solve from Python and saved no "
                        f"configuration: pass the problem and a model like the one it trained, "
                        f"kanpde.load(folder, problem=..., model=...)")
    if options is None:  # a Python run: the settings that matter here from its signature
        from .training.options import SolveOptions

        signature = state.get("signature") or {}
        options = SolveOptions.from_kwargs(
            dtype=signature.get("dtype", "float64"), derivatives=signature.get("derivatives", "auto"),
            methods={"hard_constraints": bool(signature.get("methods.hard_constraints", False))})
    from .models import GridAdaptive
    from .training.solve import as_trained

    problem, model = as_trained(problem, model, options)
    saved_class = state.get("model_class")
    own_class = f"{type(model).__module__}.{type(model).__qualname__}"
    if saved_class is not None and saved_class != own_class:
        raise LoadError(f"run folder {str(folder)!r} trained a {saved_class}, not a {own_class}: load it with a "
                        f"model of the run's class (or without model= to rebuild it from the run's configuration)")
    grid = state.get("grid_size")
    if grid is not None and isinstance(model, GridAdaptive) and model.grid_size != grid:
        model.refine(grid)
    dev = resolve_device(device)
    dtype = getattr(torch, options.dtype)
    # the run's dtype first: loading float64 numbers into a float32 model would round them
    model.to(device=dev, dtype=dtype)
    if problem.unknown_parameters is not None:
        problem.unknown_parameters.to(device=dev, dtype=dtype)
    try:
        model.load_state_dict(state["model"])
        if problem.unknown_parameters is not None:
            problem.unknown_parameters.load_state_dict(state.get("unknowns") or {})
    except (RuntimeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0]
        raise LoadError(f"run folder {str(folder)!r}: its trained parameters do not fit the model or problem given "
                        f"({first})") from None
    model.eval()
    run = Run(folder, problem, model, dev, dtype, state.get("derivatives") or options.derivatives,
              config_yaml=config_yaml, options=options,
              unknowns={} if problem.unknown_parameters is None else problem.unknown_parameters.scalar_values())
    if (folder / RESULTS).is_file():
        results = io.read_results(folder / RESULTS)
        run.metrics, run.history, run.field, run.attrs = results.metrics, results.history, results.field, results.attrs
    return run


def _rebuild(config_yaml: str, folder: Path):
    """The problem, model and options of a ``kanpde`` run, from its saved configuration."""
    from omegaconf import OmegaConf

    from .cli import build

    try:
        cfg = OmegaConf.create(config_yaml)
        # build() seeds torch for the initial weights; the caller's random state stays as it was
        with torch.random.fork_rng(devices=[]):
            return build(cfg)
    except Exception as exc:
        raise LoadError(f"run folder {str(folder)!r}: its configuration cannot be rebuilt here: "
                        f"{type(exc).__name__}: {exc}") from None


def run_folder_parser(prog: str, description: str):
    """The argument parser of a command that works on one run folder (``kanpde-predict``,
    ``kanpde-export``): the folder and ``--device``; the command adds its own options."""
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", help="the run folder (holding checkpoint.pt)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (default cpu)")
    return parser
