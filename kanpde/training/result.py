"""What a run produced, and the error a diverged run raises."""
from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any

import torch

from .options import SolveOptions

__all__ = ["Result", "TrainingDiverged", "problem_name", "model_name"]


class TrainingDiverged(RuntimeError):
    """Raised when the loss or the parameters stop being finite.

    The model is restored to the last good state first; ``result`` holds that state's result
    (written to disk when the run has an output folder).
    """

    def __init__(self, message: str, result: "Result | None" = None):
        super().__init__(message)
        self.result = result


@dataclass
class Result:
    """What a run produced.

    ``metrics``: final errors on the evaluation set (rel_l2, rel_h1, mse, linf, l2, h1);
    ``history``: arrays over evaluations (step, time_s, loss, rel_l2, rel_h1, loss_<term>, and
    grid_size for grid-adaptive models); ``field``: evaluation points ``x`` with ``u_pred`` and
    ``u_exact``; ``status``: completed, target_reached, plateau, time_limit, diverged or the
    status a plugin stopped the run with.
    """

    problem: Any
    model: torch.nn.Module
    options: SolveOptions
    metrics: dict
    history: dict
    field: dict
    wall_time_s: float
    status: str
    run_dir: Path | None = None
    #: final values of the problem's scalar unknowns (inverse problems), ``{name: value}``
    unknowns: dict = dataclass_field(default_factory=dict)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def summary(self) -> str:
        """One line: problem, model, params, rel_l2, rel_h1, wall time, folder."""
        m = self.metrics
        parts = [
            f"problem={problem_name(self.problem)}",
            f"model={model_name(self.model)}",
            f"params={self.n_params}",
            f"rel_l2={m.get('rel_l2', float('nan')):.3e}",
            f"rel_h1={m.get('rel_h1', float('nan')):.3e}",
            f"time={self.wall_time_s:.1f}s",
            f"status={self.status}",
        ]
        parts += [f"{name}={value:.6g}" for name, value in self.unknowns.items()]
        parts += [f"{k}={v:.3e}" for k, v in m.items() if k.startswith(("rel_err_unknown_", "rel_l2_unknown_"))]
        if self.run_dir is not None:
            parts.append(f"folder={self.run_dir}")
        return "kanpde: " + " ".join(parts)


def problem_name(problem) -> str:
    return getattr(problem, "name", None) or type(problem).__name__


def model_name(model) -> str:
    """e.g. ``KAN[2,10,1](G=5)``; a wrapper names what it wraps: ``FourierFeatures(MLP)[2,64,32,1]``."""
    widths = getattr(model, "widths", None)
    chain, inner = [_public_class_name(model)], getattr(model, "inner", None)
    while inner is not None:
        chain.append(_public_class_name(inner))
        inner = getattr(inner, "inner", None)
    name = "(".join(chain) + ")" * (len(chain) - 1)
    if widths is not None:
        name += str(list(widths)).replace(" ", "")
    g = getattr(model, "grid_size", None)
    if g is not None:
        name += f"(G={g})"
    return name


def _public_class_name(model) -> str:
    """The name of the model's class as kanpde.models exports it (a wrapper of a KAN is an
    internal subclass of the public wrapper), else the class's own name."""
    from .. import models

    for klass in type(model).__mro__:
        if klass.__name__ in models.__all__ and klass.__module__.startswith("kanpde.models"):
            return klass.__name__
    return type(model).__name__
