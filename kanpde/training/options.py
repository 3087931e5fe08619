"""Plain dataclasses describing a training run.

The Python API (:func:`kanpde.solve`) takes these (or keyword arguments that build them);
the Hydra CLI uses the same classes as its typed config schema, so a misspelt key or a value
of the wrong type is rejected before anything runs.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

OPTIMIZERS = ("adam", "lbfgs")
SCHEDULERS = ("none", "cosine", "exponential", "step")
DTYPES = ("float64", "float32")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class Stage:
    """One phase of optimisation.

    A run is a list of stages executed in order, each with a fresh optimizer: for example
    "Adam for 1000 steps, then L-BFGS for 500", or the KAN paper's grid extension
    (L-BFGS at G = 5, then G = 10, then G = 20; ``grid_size`` refines a KAN at the start of
    the stage and is ignored by models without a grid).

    For Adam one step is one gradient step.  For L-BFGS (strong-Wolfe line search) one step is
    one quasi-Newton iteration.
    """

    optimizer: str = "adam"
    steps: int = 1000
    lr: float = 1e-3
    #: learning-rate schedule within the stage (Adam only): none, cosine (to lr*gamma),
    #: exponential (to lr*gamma at the end of the stage), step (x gamma every step_size steps)
    scheduler: str = "none"
    gamma: float = 0.1
    step_size: int = 1000
    #: refine a KAN to this grid size at the start of the stage (grid extension)
    grid_size: Optional[int] = None
    #: L-BFGS only: memory size
    history_size: int = 50

    def validate(self, index: int = 0) -> None:
        where = f"stage {index}"
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"{where}: optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"{where}: scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if not isinstance(self.steps, int) or self.steps < 0:
            raise ValueError(f"{where}: steps must be a non-negative integer, got {self.steps!r}")
        if not self.lr > 0:
            raise ValueError(f"{where}: lr must be positive, got {self.lr!r}")
        if self.grid_size is not None and self.grid_size < 1:
            raise ValueError(f"{where}: grid_size must be a positive integer or None, got {self.grid_size!r}")
        if self.step_size < 1:
            raise ValueError(f"{where}: step_size must be >= 1, got {self.step_size!r}")
        if self.history_size < 1:
            raise ValueError(f"{where}: history_size must be >= 1, got {self.history_size!r}")


@dataclass
class SolveOptions:
    """Everything about a run except the problem and the model.

    Sampling: ``n_interior`` collocation points in the domain and ``n_boundary`` points per
    condition, drawn by ``sampler`` (uniform, grid, lhs, sobol, halton), redrawn every
    ``resample_every`` steps (0: never).

    Loss: ``sum_t weights[t] * mean(r_t^2)`` over the residual terms (named ``residual`` or by
    the problem) and the conditions (named by ``Condition.name``); unnamed terms weigh 1 for
    residuals and ``Condition.weight`` for conditions.

    KAN grids: every ``grid_update_every`` steps up to step ``grid_update_until`` the knots
    follow the current collocation points (0: never).

    Evaluation: relative L2/H1 errors on ``n_eval`` evaluation points every ``eval_every``
    steps; stop early when ``target_rel_l2`` is reached, or when the loss has not improved by
    1% in ``plateau_patience`` evaluations (0: never), or after ``max_time_s`` seconds.
    With an output folder, a checkpoint is written at every evaluation.
    """

    stages: List[Stage] = field(default_factory=lambda: [Stage()])
    n_interior: int = 2000
    n_boundary: int = 400
    sampler: str = "sobol"
    resample_every: int = 0
    weights: Dict[str, float] = field(default_factory=dict)
    grid_update_every: int = 0
    grid_update_until: int = 0
    derivatives: str = "auto"
    dtype: str = "float64"
    device: str = "auto"
    seed: int = 0
    eval_every: int = 50
    n_eval: int = 10000
    target_rel_l2: Optional[float] = None
    plateau_patience: int = 0
    max_time_s: Optional[float] = None
    progress: bool = True

    def validate(self) -> None:
        from .. import operators, sampling

        if not self.stages:
            raise ValueError("stages must contain at least one Stage")
        for i, s in enumerate(self.stages):
            s.validate(i)
        for name in ("n_interior", "n_boundary", "eval_every", "n_eval"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name in ("resample_every", "grid_update_every", "grid_update_until",
                     "plateau_patience"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        if self.sampler not in sampling.METHODS:
            raise ValueError(f"sampler must be one of {tuple(sampling.METHODS)}, got {self.sampler!r}")
        if self.derivatives not in operators.DERIVATIVE_MODES:
            raise ValueError(f"derivatives must be one of {operators.DERIVATIVE_MODES}, got {self.derivatives!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {self.device!r}")
        if self.target_rel_l2 is not None and not self.target_rel_l2 > 0:
            raise ValueError(f"target_rel_l2 must be positive or None, got {self.target_rel_l2!r}")
        if self.max_time_s is not None and not self.max_time_s > 0:
            raise ValueError(f"max_time_s must be positive or None, got {self.max_time_s!r}")

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.stages)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "SolveOptions":
        """Build options from keyword arguments; ``stages`` may be a list of dicts.

        Unknown keywords raise ``TypeError`` listing the accepted ones.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            raise TypeError(f"unknown option(s) {unknown}; accepted options are {sorted(known)}")
        stages = kwargs.pop("stages", None)
        opts = cls(**kwargs)
        if stages is not None:
            opts.stages = [s if isinstance(s, Stage) else _stage_from_dict(s, i) for i, s in enumerate(stages)]
        opts.validate()
        return opts


def _stage_from_dict(d: Any, index: int) -> Stage:
    known = {f.name for f in fields(Stage)}
    d = dict(d)
    unknown = sorted(set(d) - known)
    if unknown:
        raise TypeError(f"stage {index}: unknown key(s) {unknown}; accepted keys are {sorted(known)}")
    return Stage(**d)
