"""The settings of a training run: one typed schema for the Python API and the command line.

:class:`SolveOptions` groups the settings as the command line does (``optim``, ``sampler``,
``eval``, ``stop``, plus ``seed``, ``dtype``, ``device``, ``derivatives``, ``progress``).  The
Hydra CLI's structured config (:class:`kanpde.cli.KanpdeConfig`) *is* this class with the
problem, the model and the run-folder switches added, so every setting has one name, one type
and one default whichever way a run is started::

    kanpde sampler.n_interior=4000 optim.stages.0.steps=500
    kanpde.solve(problem, model, sampler={"n_interior": 4000}, optim={"stages": [...]})

The defaults are kanpde's default recipe (what ``kanpde`` runs): L-BFGS with KAN grid
extension G -> 2G -> 4G, knots following the collocation points for the first 100 steps and the
KAN paper's residual weight 0.01.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any, Dict, List, Optional

__all__ = ["Stage", "OptimOptions", "SamplerOptions", "EvalOptions", "StopOptions", "MethodsOptions",
           "AdaptiveSamplingOptions", "BalancingOptions", "CausalOptions", "SolveOptions", "SCHEDULERS", "DTYPES",
           "DEVICES"]

SCHEDULERS = ("none", "cosine", "exponential", "step")
DTYPES = ("float64", "float32")
DEVICES = ("auto", "cpu", "cuda")
#: fewest evaluation points: one point gave rel_l2 = NaN (0 / 0 where the solution vanishes)
MIN_EVAL_POINTS = 16


@dataclass
class Stage:
    """One phase of optimisation.

    A run is a list of stages executed in order, each with a fresh optimizer: for example
    "Adam for 1000 steps, then L-BFGS for 500", or the KAN paper's grid extension (L-BFGS at
    G = 5, then G = 10, then G = 20).  Models without a grid ignore the grid settings.

    For Adam one step is one gradient step; for L-BFGS (strong-Wolfe line search) one
    quasi-Newton iteration.  ``optimizer`` names an entry of
    :data:`kanpde.training.optimizers.OPTIMIZERS`.
    """

    optimizer: str = "adam"
    steps: int = 1000
    lr: float = 1e-3
    #: learning-rate schedule within the stage (one-step optimizers such as Adam): none, cosine
    #: (to lr*gamma), exponential (to lr*gamma at the end of the stage), step (x gamma every
    #: step_size steps)
    scheduler: str = "none"
    gamma: float = 0.1
    step_size: int = 1000
    #: grid extension at the start of the stage: refine a KAN to this grid size (None: keep the
    #: grid; a size below the current one is an error, a stage never coarsens a grid) ...
    grid_size: Optional[int] = None
    #: ... or multiply its grid size by this factor (e.g. 2: G = 5 -> 10)
    grid_factor: Optional[int] = None
    #: L-BFGS only: memory size
    history_size: int = 50
    #: the KAN paper's sparsity penalty during this stage, ``{lamb: 1e-3, entropy: 2.0}``: adds
    #: ``lamb * (sum of the edges' L1 norms + entropy * their entropy)`` at the collocation points
    #: (KAN.regularization_loss), so the run can be pruned afterwards; None: off
    regularization: Optional[Dict[str, float]] = None

    def validate(self, index: int = 0) -> None:
        """Raise a ``ValueError`` naming the stage, the setting, its value and what is allowed."""
        from .optimizers import OPTIMIZERS

        where = f"stage {index}"
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"{where}: optimizer must be one of {tuple(OPTIMIZERS)}, got {self.optimizer!r}")
        if self.scheduler not in SCHEDULERS:
            raise ValueError(f"{where}: scheduler must be one of {SCHEDULERS}, got {self.scheduler!r}")
        if self.scheduler != "none" and not OPTIMIZERS[self.optimizer].schedules:
            takes = tuple(name for name, entry in OPTIMIZERS.items() if entry.schedules)
            raise ValueError(f"{where}: scheduler={self.scheduler!r} applies to {takes}, not to "
                             f"optimizer={self.optimizer!r}; use scheduler='none'")
        if not _is_int(self.steps) or self.steps < 0:
            raise ValueError(f"{where}: steps must be a non-negative integer, got {self.steps!r}")
        if not _is_number(self.lr) or not self.lr > 0:
            raise ValueError(f"{where}: lr must be a positive number, got {self.lr!r}")
        if self.grid_size is not None and (not _is_int(self.grid_size) or self.grid_size < 1):
            raise ValueError(f"{where}: grid_size must be a positive integer or None (keep the grid), "
                             f"got {self.grid_size!r}")
        if self.grid_factor is not None and (not _is_int(self.grid_factor) or self.grid_factor < 1):
            raise ValueError(f"{where}: grid_factor must be a positive integer or None, got {self.grid_factor!r}")
        if self.grid_size is not None and self.grid_factor is not None:
            raise ValueError(f"{where}: give grid_size ({self.grid_size}) or grid_factor ({self.grid_factor}), "
                             f"not both; for an absolute size on a stage with a factor, clear the factor "
                             f"(CLI: optim.stages.{index}.grid_factor=null)")
        if not _is_int(self.step_size) or self.step_size < 1:
            raise ValueError(f"{where}: step_size must be an integer >= 1, got {self.step_size!r}")
        if not _is_int(self.history_size) or self.history_size < 1:
            raise ValueError(f"{where}: history_size must be an integer >= 1, got {self.history_size!r}")
        reg = self.regularization
        if reg is not None:
            if not isinstance(reg, dict) or set(reg) - {"lamb", "entropy"} or not all(
                    _is_number(v) and v >= 0 for v in reg.values()):
                raise ValueError(f"{where}: regularization must be null or a mapping with lamb (the L1 weight) and "
                                 f"optionally entropy (its entropy factor, default 2.0), both >= 0, e.g. "
                                 f"{{lamb: 0.001, entropy: 2.0}}; got {reg!r}")

    def regularization_weights(self) -> tuple[float, float]:
        """``(lamb, entropy)`` of :attr:`regularization` (``(0, 0)`` when off)."""
        if not self.regularization:
            return 0.0, 0.0
        return float(self.regularization.get("lamb", 0.0)), float(self.regularization.get("entropy", 2.0))

    def grid_after(self, grid_size: int, index: int = 0) -> int:
        """The grid size this stage trains with when the model comes in with ``grid_size``;
        a ``ValueError`` naming both sizes if the stage would coarsen the grid."""
        if self.grid_factor is not None:
            return grid_size * self.grid_factor
        if self.grid_size is None:
            return grid_size
        if self.grid_size < grid_size:
            raise ValueError(f"stage {index}: grid_size={self.grid_size} would coarsen the model's grid "
                             f"(grid_size={grid_size} when the stage starts); a stage only refines a grid. "
                             f"Use grid_size: null to keep it, grid_factor to refine it relative to the model, "
                             f"or a smaller model.grid_size")
        return self.grid_size


def default_stages() -> List[Stage]:
    """kanpde's default recipe: L-BFGS for 200, 300 and 2000 steps with the grid doubled at the
    start of the second and third stage (G = 5 -> 10 -> 20 for the default KAN)."""
    return [Stage(optimizer="lbfgs", steps=200, lr=1.0),
            Stage(optimizer="lbfgs", steps=300, lr=1.0, grid_factor=2),
            Stage(optimizer="lbfgs", steps=2000, lr=1.0, grid_factor=2)]


@dataclass
class OptimOptions:
    """Optimisation: the ``stages``, the loss ``weights`` and the KAN grid updates.

    Loss: ``sum_t weights[t] * mean(r_t^2)`` over the residual terms (named ``residual`` or by
    the problem) and the conditions (named by ``Condition.name``); terms not listed weigh 1
    (residuals) or ``Condition.weight`` (conditions).  KAN grids: every ``grid_update_every``
    steps up to step ``grid_update_until`` the knots follow the current collocation points
    (0: never).
    """

    stages: List[Stage] = field(default_factory=default_stages)
    weights: Dict[str, float] = field(default_factory=lambda: {"residual": 0.01})
    grid_update_every: int = 5
    grid_update_until: int = 100


@dataclass
class SamplerOptions:
    """Collocation: ``n_interior`` points in the domain and ``n_boundary`` points per condition,
    drawn by ``method`` (uniform, grid, lhs, sobol, halton), redrawn every ``resample_every``
    steps (0: never)."""

    method: str = "sobol"
    n_interior: int = 2500
    n_boundary: int = 400
    resample_every: int = 0


@dataclass
class EvalOptions:
    """Errors (relative L2/H1, ...) on an evaluation grid of ``n_points`` every ``every`` steps
    (and at the end of every stage); a checkpoint goes with each evaluation."""

    every: int = 50
    n_points: int = 10000


@dataclass
class StopOptions:
    """Early stop at an evaluation: once ``target_rel_l2`` is reached, when the loss has not
    improved by 1 % in ``plateau_patience`` evaluations (0: never), or after ``max_time_s``
    seconds of training.  A run stops as diverged (its last good state kept) when the loss is
    NaN or infinite, when it grows above ``divergence_factor`` times its best value so far, or
    when an error metric stops being finite (``divergence_factor: null`` allows finite blow-ups)."""

    target_rel_l2: Optional[float] = None
    plateau_patience: int = 0
    max_time_s: Optional[float] = None
    divergence_factor: Optional[float] = 1e8


@dataclass
class AdaptiveSamplingOptions:
    """Residual-based adaptive collocation (``method``: none, rar, rad): every ``every`` steps,
    evaluate the residual on ``pool`` uniform candidates; RAR adds the ``n_add`` worst, RAD
    redraws the collocation points with probability ``|r|^k / mean|r|^k + c``
    (:mod:`kanpde.training.plugins.adaptive_sampling`)."""

    method: str = "none"
    every: int = 500
    pool: int = 10000
    n_add: int = 100
    k: float = 1.0
    c: float = 1.0


@dataclass
class BalancingOptions:
    """Adaptive loss weights (``method``: none, gradnorm, rba).  gradnorm: every ``every`` steps
    the factors that equalise the terms' gradient norms, averaged with ``alpha``; rba:
    residual-based attention weights per collocation point, ``lambda <- gamma lambda + eta
    |r| / max|r|`` every ``every`` steps (:mod:`kanpde.training.plugins.balancing`)."""

    method: str = "none"
    every: int = 100
    alpha: float = 0.9
    gamma: float = 0.999
    eta: float = 0.01


@dataclass
class CausalOptions:
    """Causal training of time-dependent problems: the time axis in ``chunks`` slices weighted
    by ``exp(-eps * earlier slices' residual loss)``, updated every ``every`` steps; ``anneal``:
    eps x10 (up to ``eps_max``) once every weight exceeds 0.99
    (:mod:`kanpde.training.plugins.causal`)."""

    enabled: bool = False
    chunks: int = 16
    eps: float = 1.0
    anneal: bool = False
    eps_max: float = 100.0
    every: int = 1


@dataclass
class MethodsOptions:
    """Training methods for hard PDEs, each off by default: adaptive collocation
    (``sampling``), loss balancing (``balancing``), causal training (``causal``), and
    ``hard_constraints`` (every Dirichlet and initial condition imposed exactly by an output
    transform, as ``hard=True`` on the condition does)."""

    sampling: AdaptiveSamplingOptions = field(default_factory=AdaptiveSamplingOptions)
    balancing: BalancingOptions = field(default_factory=BalancingOptions)
    causal: CausalOptions = field(default_factory=CausalOptions)
    hard_constraints: bool = False

    def validate(self) -> None:
        sa, ba, ca = self.sampling, self.balancing, self.causal
        choices = (("methods.sampling.method", sa.method, ("none", "rar", "rad")),
                   ("methods.balancing.method", ba.method, ("none", "gradnorm", "rba")))
        for name, value, allowed in choices:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {allowed}, got {value!r}")
        for name, v in (("methods.sampling.every", sa.every), ("methods.sampling.pool", sa.pool),
                        ("methods.sampling.n_add", sa.n_add), ("methods.balancing.every", ba.every),
                        ("methods.causal.chunks", ca.chunks), ("methods.causal.every", ca.every)):
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        for name, v, lo, hi in (("methods.sampling.k", sa.k, 0.0, None), ("methods.sampling.c", sa.c, 0.0, None),
                                ("methods.balancing.alpha", ba.alpha, 0.0, 1.0),
                                ("methods.balancing.gamma", ba.gamma, 0.0, 1.0),
                                ("methods.balancing.eta", ba.eta, 0.0, None), ("methods.causal.eps", ca.eps, 0.0, None),
                                ("methods.causal.eps_max", ca.eps_max, 0.0, None)):
            if not _is_number(v) or v < lo or (hi is not None and v > hi):
                allowed = f"in [{lo}, {hi}]" if hi is not None else f">= {lo}"
                raise ValueError(f"{name} must be a number {allowed}, got {v!r}")
        if sa.method == "rad" and sa.k == 0 and sa.c == 0:
            raise ValueError("methods.sampling: RAD with k = 0 and c = 0 has no sampling law; set c > 0 or k > 0")


#: the groups of SolveOptions and their classes
GROUPS = {"optim": OptimOptions, "sampler": SamplerOptions, "eval": EvalOptions, "stop": StopOptions,
          "methods": MethodsOptions}


@dataclass
class SolveOptions:
    """Everything about a run except the problem and the model (see the module docstring)."""

    optim: OptimOptions = field(default_factory=OptimOptions)
    sampler: SamplerOptions = field(default_factory=SamplerOptions)
    eval: EvalOptions = field(default_factory=EvalOptions)
    stop: StopOptions = field(default_factory=StopOptions)
    methods: MethodsOptions = field(default_factory=MethodsOptions)
    seed: int = 0
    dtype: str = "float64"
    device: str = "auto"
    derivatives: str = "auto"
    progress: bool = True

    def validate(self) -> None:
        """Raise a ``ValueError`` naming the first bad setting, its value and what is allowed."""
        from .. import operators, sampling

        o, s, e, st = self.optim, self.sampler, self.eval, self.stop
        if not o.stages:
            raise ValueError("optim.stages must contain at least one stage")
        for i, stage in enumerate(o.stages):
            stage.validate(i)
        for name, v in (("sampler.n_interior", s.n_interior), ("sampler.n_boundary", s.n_boundary),
                        ("eval.every", e.every), ("eval.n_points", e.n_points)):
            if not _is_int(v) or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        if e.n_points < MIN_EVAL_POINTS:
            raise ValueError(f"eval.n_points must be at least {MIN_EVAL_POINTS} (the errors are integrals over the "
                             f"domain, approximated on that many points), got {e.n_points!r}")
        for name, v in (("sampler.resample_every", s.resample_every), ("optim.grid_update_every", o.grid_update_every),
                        ("optim.grid_update_until", o.grid_update_until),
                        ("stop.plateau_patience", st.plateau_patience), ("seed", self.seed)):
            if not _is_int(v) or v < 0:
                raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
        for name, w in o.weights.items():
            if not _is_number(w) or not w >= 0:
                raise ValueError(f"optim.weights.{name} must be a non-negative number, got {w!r}")
        if s.method not in sampling.METHODS:
            raise ValueError(f"sampler.method must be one of {tuple(sampling.METHODS)}, got {s.method!r}")
        if self.derivatives not in operators.DERIVATIVE_MODES:
            raise ValueError(f"derivatives must be one of {operators.DERIVATIVE_MODES}, got {self.derivatives!r}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
        if self.device not in DEVICES and not str(self.device).startswith("cuda:"):
            raise ValueError(f"device must be one of {DEVICES} (or 'cuda:N'), got {self.device!r}")
        if st.target_rel_l2 is not None and not (_is_number(st.target_rel_l2) and st.target_rel_l2 > 0):
            raise ValueError(f"stop.target_rel_l2 must be a positive number or None, got {st.target_rel_l2!r}")
        if st.max_time_s is not None and not (_is_number(st.max_time_s) and st.max_time_s > 0):
            raise ValueError(f"stop.max_time_s must be a positive number or None, got {st.max_time_s!r}")
        if st.divergence_factor is not None and not (_is_number(st.divergence_factor) and st.divergence_factor > 1):
            raise ValueError(f"stop.divergence_factor must be a number > 1 or None, got {st.divergence_factor!r}")
        self.methods.validate()

    @property
    def total_steps(self) -> int:
        return sum(s.steps for s in self.optim.stages)

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> "SolveOptions":
        """Build and validate options from keyword arguments named like the fields: top-level
        settings (``seed=1``) and groups as dicts or option objects (``sampler={"n_interior":
        4000}``, ``optim={"stages": [{"optimizer": "lbfgs", "steps": 200}]}``; a dict changes
        only the settings it names).  Stages may be dicts or :class:`Stage` objects.

        An unknown name raises ``TypeError`` listing the accepted ones (and, for a setting of a
        group passed at the top level, where it belongs)."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(kwargs) - known)
        if unknown:
            hints = [f"{name} is {group}.{name}: pass {group}={{{name!r}: ...}}"
                     for name in unknown for group, klass in GROUPS.items()
                     if name in {f.name for f in fields(klass)}]
            raise TypeError(f"unknown option(s) {unknown}" + (f" ({'; '.join(hints)})" if hints else "")
                            + f"; accepted options are {sorted(known)}")
        values = {name: _group(name, value) if name in GROUPS else value for name, value in kwargs.items()}
        opts = cls(**values)
        opts.validate()
        return opts


def _group(name: str, value: Any):
    """A group option from a dict (changing the defaults it names) or an option object."""
    return _build(GROUPS[name], value, name)


def _build(klass: type, value: Any, path: str):
    """``klass`` from a dict naming some of its settings (nested groups as dicts too, stages as
    dicts or :class:`Stage`), or an instance of it (its stages converted); clear errors."""
    if isinstance(value, klass):
        value = {f.name: getattr(value, f.name) for f in fields(klass)}
    elif not isinstance(value, dict):
        raise TypeError(f"{path} must be a dict or a {klass.__name__}, got {type(value).__name__}")
    _check_keys(value, klass, f"unknown {path} setting(s)")
    values = dict(value)
    for f in fields(klass):
        if f.name not in values:
            continue
        if f.name == "stages" and klass is OptimOptions:
            values["stages"] = _stages(values["stages"])
        elif f.default_factory is not dataclasses.MISSING and dataclasses.is_dataclass(f.default_factory()):
            values[f.name] = _build(type(f.default_factory()), values[f.name], f"{path}.{f.name}")
    return klass(**values)


def _stages(stages: Any) -> List[Stage]:
    if isinstance(stages, (str, bytes, dict)) or not hasattr(stages, "__iter__"):
        raise TypeError(f"optim.stages must be a list of stages (dicts or Stage), got {stages!r}")
    return [s if isinstance(s, Stage) else _stage_from_dict(s, i) for i, s in enumerate(stages)]


def _stage_from_dict(d: Any, index: int) -> Stage:
    if not isinstance(d, dict):
        raise TypeError(f"stage {index} must be a dict or a Stage, got {d!r}")
    _check_keys(d, Stage, f"stage {index}: unknown key(s)")
    return Stage(**d)


def _check_keys(d: dict, klass: type, what: str) -> None:
    """A ``TypeError`` starting with ``what`` for keys of ``d`` that are not fields of ``klass``."""
    accepted = {f.name for f in fields(klass)}
    unknown = sorted(set(d) - accepted)
    if unknown:
        raise TypeError(f"{what} {unknown}; accepted are {sorted(accepted)}")


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)
