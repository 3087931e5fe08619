"""The training loop: stages of optimizer steps on a physics-informed loss, with plugins.

The loop is short and fixed (:meth:`Trainer.run`): run the current stage's optimizer up to the
next event any plugin asks for, check the loss stayed finite, let every plugin act
(:mod:`kanpde.training.plugins`), move to the next stage when a stage's steps are done.  What
the trainer owns itself: the collocation points, the loss, the stages' optimizers, the training
state (for checkpoints, resume and recovery from divergence) and the results on disk.
"""
from __future__ import annotations

import copy
import math
import random
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import torch

from .. import __version__, io, metrics, operators, xdmf
from .distributed import current as distributed_context
from ..models import (ConstrainedOutput, GridAdaptive, prefers_autograd_for_partial_hessians, prepare_kernels,
                      wrapped_models)
from .errors import ResumeMismatch
from .optimizers import OPTIMIZERS, make_scheduler
from .options import SolveOptions, Stage
from .plugins import (Checkpoints, EarlyStopping, Evaluation, GridExtension, GridUpdates, Resampling,
                      TrainerPlugin, method_plugins)
from .result import Result, TrainingDiverged, model_name, problem_name
from .signature import RESUME_MAY_CHANGE, run_signature, signature_changes

__all__ = ["Trainer", "resolve_device", "CHECKPOINT", "RESULTS"]

CHECKPOINT = "checkpoint.pt"
RESULTS = "results.h5"


def resolve_device(device: str) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cuda`` without a GPU is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was requested but torch sees no CUDA device; use device=auto or cpu")
    return torch.device(device)


def _derive_seed(*keys: int) -> int:
    return int(np.random.SeedSequence([int(k) & 0xFFFFFFFF for k in keys]).generate_state(1)[0])


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _Diverged(Exception):
    def __init__(self, loss: float, why: str = ""):
        self.loss, self.why = loss, why


class Trainer:
    """Trains ``model`` on ``problem`` with ``options`` (see :func:`kanpde.solve`, which builds
    and runs it).  ``plugins`` come after the built-in ones (evaluation, early stop,
    resampling, grid updates) and before the checkpoint, which is always last."""

    def __init__(self, problem, model, options: SolveOptions, output_dir=None, config_yaml: str = "",
                 plots: bool = True, plugins: Sequence[TrainerPlugin] = ()):
        self.problem = problem
        self.model = model
        #: the problem's unknowns (inverse problems), trained with the model; None without
        self.unknowns = problem.unknown_parameters
        self.options = options
        self.run_dir = None if output_dir is None else Path(output_dir)
        self.config_yaml = config_yaml
        self.plots = plots
        # what a resume must match (before any training changes the model, e.g. its grid)
        self.signature = run_signature(problem, model, options)
        self.resume_changes: list[str] = []
        #: this process's place in a data-parallel run (:mod:`kanpde.training.distributed`)
        self.distributed = distributed_context()
        self.device = self.distributed.device(options.device)
        self.dtype = getattr(torch, options.dtype)
        #: this process writes the run folder (in a distributed run only rank 0 does)
        self.writes = self.run_dir is not None and self.distributed.is_main
        if self.writes:
            io.check_writable(self.run_dir)
        self.transform = getattr(problem, "output_transform", None)
        o = options
        self.plugins: list[TrainerPlugin] = [
            GridExtension(), Evaluation(o.eval.every),
            EarlyStopping(o.stop.target_rel_l2, o.stop.max_time_s, o.stop.plateau_patience),
            Resampling(o.sampler.resample_every), GridUpdates(o.optim.grid_update_every, o.optim.grid_update_until),
            *method_plugins(o.methods), *plugins, Checkpoints()]
        keys = [p.key for p in self.plugins]
        if len(set(keys)) != len(keys):
            raise ValueError(f"plugins need distinct names (their checkpoint keys), got {keys}")
        self.step = 0
        self.stage_index = 0
        self.stage_step = 0
        self.train_time = 0.0
        self.history: dict[str, list[float]] = {}
        self.round = -1
        self._own_collocation = False
        self.residual_names: set[str] = set()
        self.last_loss, self.last_terms = math.nan, {}
        self.first_terms: dict | None = None
        self.best_loss = math.inf      # the lowest finite loss so far (finite blow-ups count as divergence)
        self._bad_metric = ""          # set by record() when an error metric is not finite
        self.evaluated_this_step = False
        self.stop_status = "completed"
        self.x_needs_grad = o.derivatives == "autograd"
        #: the derivative path in use: options.derivatives, or "autograd" where auto chose it
        self.derivatives = o.derivatives
        # A snapshot becomes "good" only once a loss computed from its parameters is finite.
        self.last_good: dict | None = None
        self._unverified: dict | None = None
        self.optimizer = None
        self.scheduler = None
        self._bar = None
        self._cond_weights = self._condition_weights()
        #: conditions the model satisfies by construction (left out of the loss)
        self.exact_conditions = _exact_conditions(problem, model)

    @property
    def stage(self) -> Stage:
        """The stage being trained."""
        return self.options.optim.stages[self.stage_index]

    # ------------------------------------------------------------------ points
    def _cast(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.device, dtype=self.dtype)

    def resample(self, round_: int | None = None) -> None:
        """Draw collocation round ``round_`` (default: the next one; deterministic in the seed
        and the round) and tell the optimizer that the loss changed."""
        self._draw(self.round + 1 if round_ is None else round_)
        self.loss_changed()

    def _draw(self, round_: int) -> None:
        self.round = round_
        self._own_collocation = False  # the round's points, redrawn from the seed on resume
        o, domain = self.options, self.problem.domain
        x = domain.sample_interior(o.sampler.n_interior, method=o.sampler.method, seed=_derive_seed(o.seed, round_, 0))
        self.collocation = self._points(x)
        self.batches = []
        for i, cond in enumerate(self.problem.conditions):
            n = getattr(cond, "n_points", None) or o.sampler.n_boundary
            batch = cond.sample(domain, n, method=o.sampler.method, seed=_derive_seed(o.seed, round_, i + 1))
            self.batches.append({k: self._batch_tensor(v) for k, v in batch.items()})
        self._share_points()

    def set_collocation(self, x: torch.Tensor) -> None:
        """Replace the interior collocation points by ``x`` ``(N, d)`` (adaptive sampling) and
        tell the optimizer that the loss changed."""
        x = torch.as_tensor(x)
        if x.dim() != 2 or x.shape[1] != self.problem.domain.dim or x.shape[0] < 1:
            raise ValueError(f"collocation points must have shape (N >= 1, {self.problem.domain.dim}), "
                             f"got {tuple(x.shape)}")
        self.collocation = self._points(x.detach())
        self._own_collocation = True  # kept in checkpoints: a resumed run cannot redraw it
        self._share_points()
        self.loss_changed()

    def _share_points(self) -> None:
        """This process's shard of the point sets (``local_collocation``, ``local_batches``);
        in one process, the point sets themselves.  Every process holds the global sets (the
        same on all), so that plugins (grid updates, adaptive sampling) see all the points."""
        d = self.distributed
        self._batch_rows = [_rows(batch) for batch in self.batches]
        if not d.active:
            self.local_collocation, self.local_batches = self.collocation, self.batches
            return
        d.check_shardable(self.collocation.shape[0], "the interior collocation set (sampler.n_interior)")
        self.local_collocation = self._points(d.shard(self.collocation).contiguous())
        self.local_batches = []
        for cond, batch, n in zip(self.problem.conditions, self.batches, self._batch_rows):
            if cond.name not in self.exact_conditions:
                d.check_shardable(n, f"condition {cond.name!r}")
            self.local_batches.append({k: self._batch_tensor(d.shard(v).contiguous())
                                       if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == n else v
                                       for k, v in batch.items()})

    def shard(self, t: torch.Tensor) -> torch.Tensor:
        """This process's rows of a per-point tensor ``t`` of the global collocation set (e.g.
        point weights a plugin keeps for all points); ``t`` itself in one process."""
        return self.distributed.shard(t)

    def _points(self, x: torch.Tensor) -> torch.Tensor:
        x = self._cast(torch.as_tensor(x))
        axis = getattr(self.problem.domain, "time_axis", None)
        return x if axis is None else operators.with_time_axis(x, axis)

    def _batch_tensor(self, v):
        """Cast a condition batch entry; point sets (``x``, ``x_pair``) keep the time axis."""
        if not (isinstance(v, torch.Tensor) and v.is_floating_point()):
            return v
        if v.dim() == 2 and v.shape[1] == self.problem.domain.dim:
            return self._points(v)
        return self._cast(v)

    def _u_fn(self, order: int = 2) -> Callable[[torch.Tensor], torch.Tensor]:
        def u_fn(x: torch.Tensor) -> torch.Tensor:
            return operators.evaluate(self.model, x, derivatives=self.derivatives, order=order,
                                      transform=self.transform)
        return u_fn

    # ------------------------------------------------------------------ loss
    def _weight(self, name: str, default: float) -> float:
        return float(self.options.optim.weights.get(name, default))

    def _condition_weights(self) -> dict[str, float]:
        return {cond.name: self._weight(cond.name, getattr(cond, "weight", 1.0)) for cond in self.problem.conditions}

    def _mean_square(self, name: str, r: torch.Tensor, x: torch.Tensor | None, n_global: int) -> torch.Tensor:
        """``mean(r^2)`` of loss term ``name``, weighted per point where a plugin asks; in a
        distributed run this process's share of it (its shard's sum over the global count of
        ``n_global`` points), so that the shares summed over the processes make the mean."""
        sq = r.pow(2)
        for plugin in self.plugins:
            w = plugin.point_weights(self, name, x, r.detach()) if x is not None else None
            if w is not None:
                sq = sq * (w.reshape(-1, 1) if w.dim() == 1 else w)
        d = self.distributed
        if not d.active:
            return sq.mean()
        n_local = len(range(d.rank, n_global, d.world_size))
        if sq.dim() == 0 or sq.shape[0] != n_local:
            raise ValueError(f"loss term {name!r}: a distributed run needs one residual row per point ({n_local} "
                             f"rows on process {d.rank}), got shape {tuple(sq.shape)}")
        return sq.sum() / (n_global * (sq.numel() // n_local))

    def pointwise_residual(self, x: torch.Tensor, chunk: int = 8192) -> torch.Tensor:
        """The PDE residual's size at points ``x`` ``(N, d)`` of the domain for the current model:
        ``(N,)``, the Euclidean norm over all residual terms and components; no graph (for
        adaptive sampling and attention weights).  Evaluated in chunks of ``chunk`` points; in a
        distributed run each process evaluates its shard of ``x`` and all receive the whole."""
        d = self.distributed
        if d.active:
            return d.gather_rows(self._pointwise_residual(d.shard(x), chunk), x.shape[0])
        return self._pointwise_residual(x, chunk)

    def _pointwise_residual(self, x: torch.Tensor, chunk: int) -> torch.Tensor:
        out = []
        for start in range(0, x.shape[0], chunk):
            xs = self._points(torch.as_tensor(x[start:start + chunk]).detach()).requires_grad_(self.x_needs_grad)
            with torch.enable_grad():
                u = self._u_fn(self.problem.derivative_order)(xs)
                terms = self.problem.residual_terms(xs, u)
            out.append(torch.cat([t.detach() for t in terms.values()], 1).norm(dim=1))
        return torch.cat(out) if out else x.new_zeros(0)

    def loss_terms(self) -> dict[str, torch.Tensor]:
        """Every loss term ``mean(r^2)`` (unweighted), named ``residual`` (or by the problem)
        and by the conditions; differentiable in the parameters.  In a distributed run each
        process computes its shard's share: the terms summed over the processes (and their
        gradients, :meth:`reduce_gradients`) are the means."""
        # a fresh alias of the points each evaluation, so no gradient accumulates on them
        x = self._points(self.local_collocation.detach().requires_grad_(self.x_needs_grad))
        conds, batches = self.problem.conditions, self.local_batches
        value_only = [not getattr(c, "needs_derivatives", True) for c in conds]
        # value-only conditions evaluated at batch["x"] share the collocation points' jet pass
        fused = [i for i, c in enumerate(conds) if value_only[i] and getattr(c, "values_at_x", False)
                 and "x" in batches[i] and c.name not in self.exact_conditions]
        known: dict[int, torch.Tensor] = {}
        if fused and operators.uses_forward_path(self.model, self.derivatives, 2, self.transform):
            pts = [batches[i]["x"] for i in fused]
            u, values = operators.evaluate_with_values(self.model, x, pts, derivatives=self.derivatives,
                                                       transform=self.transform)
            known = {id(p): v for p, v in zip(pts, values)}
        else:
            u = self._u_fn(self.problem.derivative_order)(x)
        residuals = self.problem.residual_terms(x, u)
        self.residual_names = set(residuals)  # the PDE's terms, for plugins that weight only those
        n = self.collocation.shape[0]
        terms = {name: self._mean_square(name, r, x, n) for name, r in residuals.items()}
        for i, (cond, batch) in enumerate(zip(conds, batches)):
            if cond.name in self.exact_conditions:
                continue
            # value-only conditions (Dirichlet, data) need no derivative propagation; conditions
            # that differentiate make their own requires-grad copy of the points
            u_fn = self._u_fn(0 if value_only[i] else 2)
            if known:
                u_fn = self._known_values(u_fn, batch.get("x"), known)
            terms[cond.name] = self._mean_square(cond.name, cond.residual(batch, u_fn), batch.get("x"),
                                                 self._batch_rows[i])
        return terms

    @staticmethod
    def _known_values(u_fn, x, known):
        """``u_fn`` that answers a call at exactly the tensor ``x`` from ``known`` (values
        computed in the collocation points' pass), and any other call by evaluating."""
        v = known.get(id(x))
        if v is None:
            return u_fn
        return lambda pts: v if pts is x else u_fn(pts)

    def term_weights(self, terms) -> dict[str, float]:
        """The configured weight of each loss term named in ``terms``: ``optim.weights``, else
        the condition's own ``weight``, else 1."""
        cw = self._cond_weights
        return {k: cw[k] if k in cw else self._weight(k, 1.0) for k in terms}

    def seed_for(self, *keys: int) -> int:
        """A seed derived from the run's seed and ``keys`` (plugins' random draws: the same run
        draws the same numbers, also when resumed)."""
        return _derive_seed(self.options.seed, *keys)

    def loss(self) -> tuple[torch.Tensor, dict[str, float]]:
        """The weighted loss and its terms (floats); in a distributed run, this process's share
        of both (see :meth:`loss_terms`)."""
        total, terms = self._loss_tensors()
        return total, {k: float(v.detach()) for k, v in terms.items()}

    def _loss_tensors(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        terms = self.loss_terms()
        weights = self.term_weights(terms)
        for plugin in self.plugins:  # loss balancing: factors on the configured weights
            for k, factor in (plugin.loss_weights(self) or {}).items():
                if k not in weights:
                    raise ValueError(f"{type(plugin).__name__}.loss_weights names {k!r}, which is not a loss "
                                     f"term; the terms are {sorted(weights)}")
                weights[k] = weights[k] * float(factor)
        total = sum(t * weights[k] for k, t in terms.items())
        lamb, entropy = self.stage.regularization_weights() if self.stage_index < len(self.options.optim.stages) \
            else (0.0, 0.0)
        if lamb > 0:  # a sparsity stage (the KAN paper's L1 + entropy penalty on the edges)
            terms["regularization"] = lamb * self._sparse_model().regularization_loss(
                self.collocation.detach(), 1.0, entropy)
            if self.distributed.active:  # every process computes it on all points: each adds its share
                terms["regularization"] = terms["regularization"] / self.distributed.world_size
            total = total + terms["regularization"]
        return total, terms

    def _sparse_model(self):
        """The KAN the sparsity penalty acts on: the model, or the KAN inside a wrapper that
        passes the inputs through (a hard-constraint wrapper)."""
        for model in wrapped_models(self.model):
            if hasattr(model, "regularization_loss") and getattr(model, "in_features", None) == self.problem.input_dim:
                return model
        raise ValueError(f"optim.stages.{self.stage_index}.regularization applies to B-spline KANs taking the "
                         f"problem's inputs; the model is {model_name(self.model)}")

    def _probe_derivative_path(self) -> None:
        """Under derivatives=auto, find out once whether the residual can run entirely on the
        forward path (points without requires_grad); otherwise enable autograd fallback.

        A model whose forward jet costs as much for an unused input axis as for a used one
        (``autograd_for_partial_hessians``: an MLP's dense layers carry every axis's channels)
        takes the autograd path when the residual's second derivatives run along only some of
        the inputs (Burgers, heat, Allen-Cahn: none along time): autograd then computes only
        those."""
        if self.x_needs_grad:
            return
        if self.options.derivatives == "auto" and self._partial_hessian_model():
            self.derivatives, self.x_needs_grad = "autograd", True
            return
        try:
            self.loss()
        except (operators.ForwardPathUnavailable, ValueError, RuntimeError):
            if self.options.derivatives == "forward":
                raise
            self.x_needs_grad = True

    def _derivative_path(self) -> str:
        """What computes the residual's derivatives: ``forward`` (the model's jet), ``autograd``,
        or ``forward+autograd`` (the jet, autograd for what it lacks)."""
        if not operators.uses_forward_path(self.model, self.derivatives, 2, self.transform):
            return "autograd"
        return "forward+autograd" if self.x_needs_grad else "forward"

    def _partial_hessian_model(self) -> bool:
        """Whether the model prefers autograd here: it says so, and the residual's second
        derivatives (recorded on a few collocation points) miss some input axis."""
        if not prefers_autograd_for_partial_hessians(self.model) or self.problem.derivative_order < 2:
            return False
        x = self._points(self.collocation[:8].detach()).requires_grad_(True)
        with torch.enable_grad(), operators.second_derivative_axes() as axes:
            u = operators.evaluate(self.model, x, derivatives="autograd", transform=self.transform)
            self.problem.residual_terms(x, u)
        return bool(axes) and len(axes) < x.shape[1]

    # ------------------------------------------------------------------ optimisation
    def _to_device(self) -> None:
        self.model.to(device=self.device, dtype=self.dtype)
        if self.unknowns is not None:
            self.unknowns.to(device=self.device, dtype=self.dtype)

    def trained_parameters(self) -> list[torch.nn.Parameter]:
        """What the optimizers train: the model's parameters, then the unknowns'."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        if self.unknowns is not None:
            params += [p for _, group in self.unknowns.parameter_groups() for p in group if p.requires_grad]
        return params

    def _make_optimizer(self, stage: Stage) -> None:
        params = self.trained_parameters()
        entry = OPTIMIZERS[stage.optimizer]
        own_rates = [] if self.unknowns is None else [(lr, ps) for lr, ps in self.unknowns.parameter_groups() if lr]
        if own_rates and entry.schedules:
            # unknowns with a learning rate of their own form their own parameter groups
            special = {id(p) for _, ps in own_rates for p in ps}
            groups = [{"params": [p for p in params if id(p) not in special]}]
            groups += [{"params": ps, "lr": lr} for lr, ps in own_rates]
            self.optimizer = entry.build(groups, stage)
        else:
            self.optimizer = entry.build(params, stage)
        self.scheduler = make_scheduler(self.optimizer, stage)
        self._param_ids = [id(p) for p in params]

    def loss_changed(self) -> None:
        """The loss function changed (new points, moved knots): optimizers whose memory belongs
        to the old one (L-BFGS) start afresh."""
        if self.optimizer is not None and OPTIMIZERS[self.stage.optimizer].reset_when_loss_changes:
            self._make_optimizer(self.stage)

    def parameters_changed(self) -> None:
        """The model's function changed in place, or its parameter objects were replaced: a
        new optimizer where either matters."""
        params = self.trained_parameters()
        if [id(p) for p in params] != self._param_ids:
            self._make_optimizer(self.stage)
        else:
            self.loss_changed()

    def _start_stage(self) -> None:
        for plugin in self.plugins:
            plugin.on_stage_start(self, self.stage)
        self._make_optimizer(self.stage)

    def steps_to_next_event(self) -> int:
        """Steps until the stage ends or a plugin wants to act, at least 1."""
        left = self.stage.steps - self.stage_step
        for plugin in self.plugins:
            wish = plugin.steps_to_next_event(self)
            if wish is not None:
                left = min(left, wish)
        return max(left, 1)

    def _train_chunk(self) -> int:
        self.model.train()
        entry = OPTIMIZERS[self.stage.optimizer]

        def closure():
            self.optimizer.zero_grad(set_to_none=True)
            if self.distributed.active:
                loss, terms = self._global_loss_and_gradient()
            else:
                loss, terms = self.loss()
                loss.backward()
            self.last_loss, self.last_terms = float(loss.detach()), terms
            if self.first_terms is None:
                self.first_terms = terms  # with the initial parameters (names a problem's own NaN)
            return loss

        done = entry.run(self.optimizer, closure, self.steps_to_next_event())
        if self.scheduler is not None:
            for _ in range(done):
                self.scheduler.step()
        return done

    def _global_loss_and_gradient(self) -> tuple[torch.Tensor, dict[str, float]]:
        """A distributed run's closure: this process's share of the loss, back-propagated, then
        one all-reduce (sum) of the gradients, the loss and its terms together, so that every
        process holds the global loss and gradient."""
        loss, terms = self._loss_tensors()
        loss.backward()
        params = [p for p in self.trained_parameters() if p.grad is not None]
        values = torch.stack([loss.detach(), *(t.detach() for t in terms.values())]).to(self.device)
        *grads, values = self.distributed.all_reduce_sum_many([*(p.grad for p in params), values])
        for p, g in zip(params, grads):
            p.grad.copy_(g)
        return values[0].clone(), dict(zip(terms, values[1:].tolist()))

    def reduce_gradients(self, grads: Sequence[torch.Tensor | None]) -> list[torch.Tensor | None]:
        """Gradients of loss shares (:meth:`loss_terms` in a distributed run) summed over the
        processes: the gradients of the global terms (one all-reduce); ``grads`` unchanged in one
        process.  ``None`` entries stay ``None``."""
        grads = list(grads)
        summed = iter(self.distributed.all_reduce_sum_many([g for g in grads if g is not None]))
        return [None if g is None else next(summed) for g in grads]

    def request_stop(self, status: str) -> None:
        """End the run after this step's plugins (its status in the results: ``status``)."""
        self.stop_status = status

    # ------------------------------------------------------------------ evaluation
    def evaluate(self) -> tuple[dict, dict]:
        """Errors of the current model on the evaluation grid and the field (points,
        prediction, exact solution).  In a distributed run rank 0 evaluates and every process
        receives its errors (the other processes' field is empty)."""
        self.model.eval()
        errors, field = {}, {}
        if self.distributed.is_main:
            self._evaluation_set()
            errors, field = metrics.evaluate_errors(self.problem, self._u_fn(order=1), self._x_eval, self._w_eval,
                                                    exact=self._exact_eval)
        return self.distributed.broadcast(errors), field

    def _evaluation_set(self) -> None:
        """The evaluation points, weights and exact solution, computed once (references may be
        costly); a non-finite exact value or gradient is refused, naming where."""
        if hasattr(self, "_x_eval"):
            return
        x, w = self.problem.domain.evaluation_points(self.options.eval.n_points)
        x_eval = self._points(x)
        exact = metrics.exact_arrays(self.problem, x_eval)
        if exact is not None:
            for what, arr in (("exact()", exact[0]), ("exact_grad()", exact[1])):
                if arr is not None and not np.isfinite(arr).all():
                    rows = np.flatnonzero(~np.isfinite(arr.reshape(arr.shape[0], -1)).all(axis=1))
                    raise ValueError(
                        f"problem {problem_name(self.problem)!r}: {what} is not finite at {rows.size} of the "
                        f"{arr.shape[0]} evaluation points, e.g. at x = {x_eval[rows[0]].tolist()}; the errors "
                        f"would be NaN")
        self._x_eval, self._w_eval, self._exact_eval = x_eval, self._cast(torch.as_tensor(w)), exact

    def _check_condition_data(self) -> None:
        """Refuse non-finite targets of the conditions at their sampled points before training."""
        for cond, batch in zip(self.problem.conditions, self.batches):
            x = batch.get("x")
            for key, value in batch.items():
                if key in ("x", "x_pair", "normal") or not (isinstance(value, torch.Tensor)
                                                            and value.is_floating_point()):
                    continue
                bad = ~torch.isfinite(value.reshape(value.shape[0], -1)).all(dim=1)
                if bad.any():
                    i = int(torch.nonzero(bad)[0])
                    where = f", e.g. at x = {x[i].tolist()}" if x is not None and x.shape[0] == value.shape[0] else ""
                    raise ValueError(f"problem {problem_name(self.problem)!r}: condition {cond.name!r} has "
                                     f"non-finite {key} at {int(bad.sum())} of its {value.shape[0]} points{where}")

    def record(self, errors: dict) -> None:
        """One history row: step, training time, the latest loss and terms, the errors (and the
        grid size of a grid-adaptive model)."""
        row = {"step": self.step, "time_s": self.train_time, "loss": self.last_loss,
               "rel_l2": errors.get("rel_l2", math.nan), "rel_h1": errors.get("rel_h1", math.nan)}
        bad = sorted(k for k in ("rel_l2", "rel_h1") if k in errors and not math.isfinite(errors[k]))
        # without an exact solution every error is NaN by definition, not a sign of divergence
        if bad and self.problem.has_exact and self.options.stop.divergence_factor is not None:
            self._bad_metric = f"the error(s) {', '.join(bad)} are no longer finite"
        if isinstance(self.model, GridAdaptive):
            row["grid_size"] = self.model.grid_size
        row.update({f"loss_{k}": v for k, v in self.last_terms.items()})
        if self.unknowns is not None:
            row.update({f"unknown_{k}": v for k, v in self.unknowns.scalar_values().items()})
        for plugin in self.plugins:
            row.update(plugin.log_values(self) or {})
        n = len(self.history.get("step", []))
        for k, v in row.items():
            self.history.setdefault(k, [math.nan] * n).append(float(v))
        for values in self.history.values():  # a column a row does not have: NaN there
            if len(values) == n:
                values.append(math.nan)
        self.evaluated_this_step = True
        if self._bar is not None:
            self._bar.set_postfix(loss=f"{self.last_loss:.2e}", rel_l2=f"{row['rel_l2']:.2e}")

    # ------------------------------------------------------------------ state
    def state(self) -> dict:
        """Everything a resumed run needs to continue exactly (a deep copy)."""
        return {
            "model": copy.deepcopy(self.model.state_dict()),
            "model_class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
            "unknowns": None if self.unknowns is None else copy.deepcopy(self.unknowns.state_dict()),
            "grid_size": getattr(self.model, "grid_size", None),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()) if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "step": self.step, "stage_index": self.stage_index, "stage_step": self.stage_step,
            "train_time": self.train_time, "round": self.round,
            "collocation": self.collocation.detach().cpu().clone() if self._own_collocation else None,
            "history": copy.deepcopy(self.history), "x_needs_grad": self.x_needs_grad,
            "best_loss": self.best_loss, "signature": self.signature,
            "derivatives": self.derivatives,
            "plugins": {p.key: copy.deepcopy(p.state_dict()) for p in self.plugins},
            "rng": io.rng_state(), "kanpde_version": __version__, "config_yaml": self.config_yaml,
        }

    def _load_state(self, state: dict) -> None:
        g = state.get("grid_size")
        if g is not None and isinstance(self.model, GridAdaptive) and self.model.grid_size != g:
            self.model.refine(g)
        self.model.load_state_dict(state["model"])
        if self.unknowns is not None:
            self.unknowns.load_state_dict(state["unknowns"])
        self._to_device()
        self.step, self.stage_index = state["step"], state["stage_index"]
        self.stage_step, self.train_time = state["stage_step"], state["train_time"]
        stages = self.options.optim.stages
        saved_last = (state.get("signature") or {}).get(f"optim.stages.{len(stages) - 1}.steps")
        if self.stage_index >= len(stages) and isinstance(saved_last, int) and stages[-1].steps > saved_last:
            # a finished run resumed with more steps in its last stage goes on in that stage
            self.stage_index, self.stage_step = len(stages) - 1, saved_last
        self.history = copy.deepcopy(state["history"])
        self.x_needs_grad = state["x_needs_grad"]
        self.derivatives = state.get("derivatives", self.options.derivatives)
        self.best_loss = state.get("best_loss", math.inf)
        self._draw(state["round"])
        if state.get("collocation") is not None:
            self.collocation = self._points(state["collocation"])
            self._own_collocation = True
            self._share_points()
        for plugin in self.plugins:
            plugin.load_state_dict(copy.deepcopy(state.get("plugins", {}).get(plugin.key, {})))
        if self.stage_index < len(self.options.optim.stages):
            self._make_optimizer(self.stage)
            if state["optimizer"] is not None:
                self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state["scheduler"] is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        io.set_rng_state(state["rng"])

    def remember(self, state: dict) -> None:
        """Keep ``state`` as the one to fall back to once a step from it has a finite loss."""
        self._unverified = state

    def save_checkpoint(self, state: dict | None = None) -> None:
        """Write ``state`` (default: the current one) to the run folder's checkpoint, if any
        (rank 0 of a distributed run)."""
        if self.writes:
            io.save_checkpoint(self.run_dir / CHECKPOINT, state or self.state())

    def _resume(self, force: bool = False) -> None:
        if self.run_dir is None:
            raise ValueError("resume=True needs output_dir, the folder of the interrupted run")
        d = self.distributed
        path = self.run_dir / CHECKPOINT
        state = missing = None
        if d.is_main:  # rank 0 reads the checkpoint and hands it on (no shared file system needed)
            if path.exists():
                state = io.load_checkpoint(path, map_location="cpu" if d.active else self.device)
            else:
                missing = (f"cannot resume: no {CHECKPOINT} in {self.run_dir}; point the run at the folder of "
                           f"the interrupted run (CLI: hydra.run.dir=<that folder> resume=true)")
        state, missing = d.broadcast((state, missing))
        if missing is not None:
            raise FileNotFoundError(missing)
        changes = signature_changes(state.get("signature"), self.signature)
        refused = [c for c in changes if not c.allowed]
        if refused and not force:
            raise ResumeMismatch(
                f"cannot resume the run in {str(self.run_dir)!r} with other settings than it was started with: "
                + "; ".join(map(str, refused))
                + ". Resume with the original settings (a resume may change only "
                + ", ".join(RESUME_MAY_CHANGE) + "), or force it with resume=force (recorded in results.h5)")
        self.resume_changes = [str(c) for c in changes]
        self._load_state(state)

    # ------------------------------------------------------------------ main loop
    def run(self, resume: bool = False) -> Result:
        """Train through every stage (or continue a run from its folder's checkpoint) and
        return the :class:`Result`; raises :class:`TrainingDiverged` if the loss stops being
        finite (after restoring and saving the last good state)."""
        o = self.options
        d = self.distributed
        # load (on a machine's first use: build and announce) compiled kernels here, so a one-off
        # build is not counted as training time
        prepare_kernels(self.model, self.device)
        start = time.perf_counter()
        self._to_device()
        failure = None
        try:
            if resume:
                self._resume(force=resume == "force")
            else:
                # every process starts from rank 0's parameters (as DistributedDataParallel does)
                d.broadcast_tensors([*self.model.state_dict().values(), *self._unknown_tensors()])
                _seed_everything(o.seed)
                self._draw(0)
                self._check_condition_data()
                self._start_stage()
                self._probe_derivative_path()
                if d.is_main:  # last: the only step here that runs on one process only
                    self._evaluation_set()
        except Exception as exc:  # noqa: BLE001 - every process must learn of any process's failure
            failure = exc
        d.agree(failure)  # no process waits forever in a collective for one that failed
        for plugin in self.plugins:
            plugin.on_train_start(self)
        self._unverified = self.state()
        stages = o.optim.stages
        self._bar = _progress(o.total_steps, self.step, o.progress and d.is_main, problem_name(self.problem))
        try:
            while self.stage_index < len(stages):
                if self.stage_step >= self.stage.steps:
                    self.stage_index += 1
                    self.stage_step = 0
                    if self.stage_index < len(stages):
                        self._start_stage()
                    continue
                t0 = time.perf_counter()
                n = self._train_chunk()
                self.train_time += time.perf_counter() - t0
                if d.active:  # one clock for all (the time limit, the history): the slowest process's
                    self.train_time = float(d.all_reduce_max(torch.tensor([self.train_time], dtype=torch.float64,
                                                                          device=d.comm_device))[0])
                self.step += n
                self.stage_step += n
                self._bar.update(n)
                if not (math.isfinite(self.last_loss)
                        and all(bool(torch.isfinite(p).all()) for p in self.trained_parameters())):
                    raise _Diverged(self.last_loss)
                factor = o.stop.divergence_factor
                if factor is not None and 0 < self.best_loss and self.last_loss > factor * self.best_loss:
                    raise _Diverged(self.last_loss, f"the loss grew above {factor:g} times its best value so far "
                                                    f"({self.best_loss:.3e})")
                self.best_loss = min(self.best_loss, self.last_loss)
                if self._unverified is not None:
                    self.last_good, self._unverified = self._unverified, None
                self.evaluated_this_step = False
                for plugin in self.plugins:
                    plugin.on_step_end(self)
                if d.active:
                    self._agree_on_stop()
                if self._bad_metric:
                    raise _Diverged(self.last_loss, self._bad_metric)
                if self.stop_status != "completed":
                    break
        except _Diverged as exc:
            self._bar.close()
            return self._diverged(exc.loss, start, exc.why)
        except KeyboardInterrupt:
            # the checkpoint of the last evaluation is on disk: resume=True continues from it
            self._bar.close()
            raise
        self._bar.close()
        errors, field = self.evaluate()
        field["collocation"] = self.collocation.detach().cpu().numpy()
        if not self.history.get("step") or self.history["step"][-1] != self.step:
            self.record(errors)
        result = Result(self.problem, self.model, o, errors, _arrays(self.history), field,
                        time.perf_counter() - start, self.stop_status, self.run_dir)
        self._add_unknowns(result)
        for plugin in self.plugins:
            plugin.on_train_end(self, result)
        self.save_checkpoint()
        self._write(result)
        return result

    def _agree_on_stop(self) -> None:
        """A stop requested by a plugin on any process ends the run on every process."""
        d = self.distributed
        flag = torch.tensor([float(self.stop_status != "completed")], device=d.comm_device)
        if float(d.all_reduce_max(flag)[0]):
            self.stop_status = next(s for s in d.gather_objects(self.stop_status) if s != "completed")

    def _unknown_tensors(self) -> list[torch.Tensor]:
        return [] if self.unknowns is None else list(self.unknowns.state_dict().values())

    def _diverged(self, loss: float, start: float, why: str = "") -> Result:
        where = f"at step {self.step} (loss = {loss}{': ' + why if why else ''})"
        if self.last_good is None:
            bad = sorted(k for k, v in (self.first_terms or {}).items() if not math.isfinite(v))
            if bad:
                # no parameters ever gave a finite loss: the non-finite numbers come from the problem
                raise TrainingDiverged(
                    f"the loss is not finite before any training step: loss term(s) {', '.join(map(repr, bad))} "
                    f"of problem {problem_name(self.problem)!r} are NaN or infinite with the initial network; "
                    f"check what they are made of (the residual's source term, the condition's target values) "
                    f"for NaN, inf or division by zero on the domain")
            raise TrainingDiverged(
                f"training diverged {where}: the initial parameters already give a non-finite loss. "
                f"Lower the learning rate (optim.stages.N.lr) or use float64.")
        good_step = self.last_good["step"]
        self._load_state(self.last_good)
        self.save_checkpoint(self.last_good)
        errors, field = self.evaluate()
        result = Result(self.problem, self.model, self.options, errors, _arrays(self.history), field,
                        time.perf_counter() - start, "diverged", self.run_dir)
        self._add_unknowns(result)
        self._write(result)
        saved = f"; kept the last good state (step {good_step}) in {self.run_dir}" if self.run_dir else ""
        raise TrainingDiverged(
            f"training diverged {where}{saved}. Lower the learning rate (optim.stages.N.lr) "
            f"or use float64.", result)

    def _add_unknowns(self, result: Result) -> None:
        """The unknowns' final values into ``result``: scalars in ``result.unknowns``, each
        field's values on the evaluation points in ``result.field["unknown_<name>"]``, and the
        recovery errors where the problem knows the truth (metrics ``rel_err_unknown_<name>``
        of a scalar, ``rel_l2_unknown_<name>`` of a field)."""
        if self.unknowns is None:
            return
        result.unknowns = self.unknowns.scalar_values()
        truth = self.problem.true_unknowns() or {}
        for name, value in result.unknowns.items():
            if name in truth:
                true = float(truth[name])
                result.metrics[f"rel_err_unknown_{name}"] = abs(value - true) / max(abs(true), 1e-300)
        if not self.distributed.is_main:  # the fields' values go to rank 0's results only
            return
        x, w = self._x_eval, self._w_eval
        for name, net in self.unknowns.fields.items():
            with torch.no_grad():
                pred = net(x).detach()
            result.field[f"unknown_{name}"] = pred.cpu().numpy()
            if name in truth:
                true = torch.as_tensor(truth[name](x)).detach().to(pred).reshape(pred.shape)
                result.field[f"unknown_{name}_exact"] = true.cpu().numpy()
                result.metrics[f"rel_l2_unknown_{name}"] = metrics.errors(pred, true, weights=w)["rel_l2"]

    # ------------------------------------------------------------------ output
    def _write(self, result: Result) -> None:
        if not self.writes:
            return
        o = self.options
        attrs = {
            "problem": problem_name(self.problem), "model": model_name(self.model),
            "n_params": result.n_params, "wall_time_s": result.wall_time_s, "seed": o.seed,
            "kanpde_version": __version__, "config_yaml": self.config_yaml, "status": result.status,
            "device": str(self.device), "dtype": o.dtype, "derivatives": o.derivatives,
            "derivative_path": self._derivative_path(),
            "resume_changes": "; ".join(self.resume_changes),
            "train_time_s": self.train_time, "steps": self.step, "threads": torch.get_num_threads(),
            "world_size": self.distributed.world_size,
            **{f"unknown_{k}": v for k, v in result.unknowns.items()},
        }
        # the XDMF files (ParaView) read their arrays from results.h5's /field group
        names = dict(input_names=self.problem.input_names, output_names=self.problem.component_names,
                     time_axis=self.problem.time_axis)
        field = {**result.field, **xdmf.xdmf_datasets(result.field, **names)}
        io.write_results(self.run_dir / RESULTS, attrs=attrs, metrics=result.metrics,
                         history=result.history, field=field)
        xdmf.write_xdmf(self.run_dir, RESULTS, field, **names)
        if self.plots:
            _plots(self.run_dir, result, getattr(self.problem.domain, "time_axis", None))


def _exact_conditions(problem, model) -> set[str]:
    """Names of the conditions ``model`` satisfies exactly by construction: hard conditions (the
    model is a ConstrainedOutput for them), and Periodic conditions along the axes of an exactly
    periodic input embedding with the domain's period."""
    from ..conditions import Periodic

    hard = {c.name for c in problem.conditions if getattr(c, "hard", False)}
    if hard and not isinstance(model, ConstrainedOutput):
        raise ValueError(f"conditions {sorted(hard)} are hard (imposed exactly), but the model is not "
                         f"wrapped for them; train with kanpde.solve, or wrap it with "
                         f"kanpde.constraints.constrain(model, problem)")
    periods = {}
    for m in wrapped_models(model):  # an embedding anywhere in a stack of wrappers
        periods.update(getattr(m, "periods", None) or {})
    lo, hi = problem.domain.bbox
    return hard | {c.name for c in problem.conditions if isinstance(c, Periodic) and c.axis in periods
                   and abs(periods[c.axis] - float(hi[c.axis] - lo[c.axis])) <= 1e-12 * max(1.0, periods[c.axis])}


def _rows(batch: dict) -> int:
    """The number of points of a condition's batch (its ``x``, else its first tensor)."""
    x = batch.get("x")
    if isinstance(x, torch.Tensor):
        return int(x.shape[0])
    return next((int(v.shape[0]) for v in batch.values() if isinstance(v, torch.Tensor) and v.dim()), 0)


def _arrays(history: dict) -> dict:
    ints = ("step", "grid_size")
    return {k: np.asarray(v, dtype=np.int64 if k in ints else np.float64) for k, v in history.items()}


def _plots(run_dir: Path, result: Result, time_axis) -> None:
    from .. import plotting

    plotting.plot_solution(result.field, run_dir / "solution.png", run_dir / "error.png", time_axis=time_axis)
    plotting.plot_history(result.history, run_dir / "history.png")
    if result.problem.has_unknowns:
        plotting.plot_unknowns(result.history, result.field, result.problem.true_unknowns() or {},
                               run_dir / "unknowns.png", time_axis=time_axis)
    if hasattr(result.model, "activation_curves"):
        plotting.plot_activations(result.model, run_dir / "activations.png")


class _NoBar:
    def update(self, n): ...
    def set_postfix(self, **kw): ...
    def close(self): ...


def _progress(total: int, initial: int, enabled: bool, desc: str):
    if not enabled:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=desc, unit="step", file=sys.stderr,
                mininterval=1.0, dynamic_ncols=True)
