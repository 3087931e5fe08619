"""The training engine shared by the Python API and the CLI."""
from __future__ import annotations

import copy
import math
import random
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .. import __version__, io, metrics, operators, runtime
from ..models import prepare_kernels
from .lbfgs import AVAILABLE as LBFGS_AVAILABLE, LBFGS
from .options import SolveOptions, Stage

__all__ = ["solve", "Result", "TrainingDiverged", "resolve_device"]

CHECKPOINT = "checkpoint.pt"
RESULTS = "results.h5"


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
    ``history``: arrays over evaluations (step, time_s, loss, rel_l2, rel_h1, loss_<term>);
    ``field``: evaluation points ``x`` with ``u_pred`` and ``u_exact``;
    ``status``: completed, target_reached, plateau, time_limit or diverged.
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

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def summary(self) -> str:
        """One line: problem, model, params, rel_l2, rel_h1, wall time, folder."""
        m = self.metrics
        parts = [
            f"problem={_problem_name(self.problem)}",
            f"model={_model_name(self.model)}",
            f"params={self.n_params}",
            f"rel_l2={m.get('rel_l2', float('nan')):.3e}",
            f"rel_h1={m.get('rel_h1', float('nan')):.3e}",
            f"time={self.wall_time_s:.1f}s",
            f"status={self.status}",
        ]
        if self.run_dir is not None:
            parts.append(f"folder={self.run_dir}")
        return "kanpde: " + " ".join(parts)


def _problem_name(problem) -> str:
    return getattr(problem, "name", None) or type(problem).__name__


def _model_name(model) -> str:
    widths = getattr(model, "widths", None)
    name = type(model).__name__
    if widths is not None:
        name += str(list(widths)).replace(" ", "")
    g = getattr(model, "grid_size", None)
    if g is not None:
        name += f"(G={g})"
    return name


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


def solve(problem, model, *, options: SolveOptions | None = None, output_dir: str | Path | None = None,
          resume: bool = False, config_yaml: str = "", plots: bool = True, **kwargs) -> Result:
    """Train ``model`` on ``problem`` with a physics-informed loss and return a :class:`Result`.

    ``options`` is a :class:`SolveOptions`; alternatively pass its fields as keyword arguments,
    e.g. ``solve(problem, model, stages=[{"optimizer": "lbfgs", "steps": 200}], n_interior=2000)``.

    With ``output_dir`` the run writes ``results.h5``, ``checkpoint.pt`` (at every evaluation and
    at the end) and the plots there; ``resume=True`` continues from that folder's checkpoint.
    Raises :class:`TrainingDiverged` (after saving the last good state) if the loss becomes
    NaN or infinite.  The first call in a process tunes the C allocator for repeated large
    temporaries (:func:`kanpde.runtime.tune_allocator`; ``KANPDE_TUNE_MALLOC=0`` disables it).
    """
    runtime.tune_allocator()
    if options is None:
        options = SolveOptions.from_kwargs(**kwargs)
    elif kwargs:
        raise TypeError(f"pass either options= or keyword options, not both (got {sorted(kwargs)})")
    else:
        options.validate()
    return _Trainer(problem, model, options, output_dir, config_yaml, plots).run(resume=resume)


class _Trainer:
    def __init__(self, problem, model, opts: SolveOptions, output_dir, config_yaml: str, plots: bool):
        self.problem = problem
        self.model = model
        self.opts = opts
        self.run_dir = None if output_dir is None else Path(output_dir)
        self.config_yaml = config_yaml
        self.plots = plots
        self.device = resolve_device(opts.device)
        self.dtype = getattr(torch, opts.dtype)
        if self.run_dir is not None:
            io.check_writable(self.run_dir)
        self.transform = _output_transform(problem)
        self.step = 0
        self.stage_index = 0
        self.stage_step = 0
        self.train_time = 0.0
        self.history: dict[str, list[float]] = {}
        self.round = -1
        self.x_needs_grad = opts.derivatives == "autograd"
        # A snapshot becomes "good" only once a loss computed from its parameters is finite.
        self.last_good: dict | None = None
        self._unverified: dict | None = None
        self.optimizer = None
        self.scheduler = None

    # ------------------------------------------------------------------ set-up
    def _cast(self, t: torch.Tensor) -> torch.Tensor:
        return t.to(device=self.device, dtype=self.dtype)

    def _resample(self, round_: int) -> None:
        """Draw collocation round ``round_`` (deterministic in the seed and the round)."""
        self.round = round_
        o, domain = self.opts, self.problem.domain
        x = domain.sample_interior(o.n_interior, method=o.sampler, seed=_derive_seed(o.seed, round_, 0))
        self.x_interior = self._points(x)
        self.batches = []
        for i, cond in enumerate(self.problem.conditions):
            n = getattr(cond, "n_points", None) or o.n_boundary
            batch = cond.sample(domain, n, method=o.sampler, seed=_derive_seed(o.seed, round_, i + 1))
            self.batches.append({k: self._batch_tensor(v) for k, v in batch.items()})

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
            return operators.evaluate(self.model, x, derivatives=self.opts.derivatives, order=order,
                                      transform=self.transform)
        return u_fn

    # ------------------------------------------------------------------ loss
    def _weight(self, name: str, default: float) -> float:
        return float(self.opts.weights.get(name, default))

    def _loss_terms(self) -> dict[str, torch.Tensor]:
        # a fresh alias of the points each evaluation, so no gradient accumulates on them
        x = self._points(self.x_interior.detach().requires_grad_(self.x_needs_grad))
        conds = self.problem.conditions
        value_only = [not getattr(c, "needs_derivatives", True) for c in conds]
        # value-only conditions evaluated at batch["x"] share the collocation points' jet pass
        fused = [i for i, c in enumerate(conds)
                 if value_only[i] and getattr(c, "values_at_x", False) and "x" in self.batches[i]]
        known: dict[int, torch.Tensor] = {}
        if fused and operators.uses_forward_path(self.model, self.opts.derivatives, 2, self.transform):
            pts = [self.batches[i]["x"] for i in fused]
            u, values = operators.evaluate_with_values(self.model, x, pts, derivatives=self.opts.derivatives,
                                                       transform=self.transform)
            known = {id(p): v for p, v in zip(pts, values)}
        else:
            u = self._u_fn()(x)
        terms = {name: r.pow(2).mean() for name, r in self.problem.residual_terms(x, u).items()}
        for i, (cond, batch) in enumerate(zip(conds, self.batches)):
            # value-only conditions (Dirichlet, data) need no derivative propagation; conditions
            # that differentiate make their own requires-grad copy of the points
            u_fn = self._u_fn(0 if value_only[i] else 2)
            if known:
                u_fn = self._known_values(u_fn, batch.get("x"), known)
            terms[cond.name] = cond.residual(batch, u_fn).pow(2).mean()
        return terms

    @staticmethod
    def _known_values(u_fn, x, known):
        """``u_fn`` that answers a call at exactly the tensor ``x`` from ``known`` (values
        computed in the collocation points' pass), and any other call by evaluating."""
        v = known.get(id(x))
        if v is None:
            return u_fn
        return lambda pts: v if pts is x else u_fn(pts)

    def _weights(self) -> dict[str, float]:
        w = {}
        for cond in self.problem.conditions:
            w[cond.name] = self._weight(cond.name, getattr(cond, "weight", 1.0))
        return w

    def _loss(self) -> tuple[torch.Tensor, dict[str, float]]:
        terms = self._loss_terms()
        cw = self._cond_weights
        total = sum(t * (cw[k] if k in cw else self._weight(k, 1.0)) for k, t in terms.items())
        return total, {k: float(v.detach()) for k, v in terms.items()}

    def _probe_derivative_path(self) -> None:
        """Under derivatives=auto, find out once whether the residual can run entirely on the
        forward path (points without requires_grad); otherwise enable autograd fallback."""
        if self.x_needs_grad:
            return
        try:
            self._loss()
        except (operators.ForwardPathUnavailable, ValueError, RuntimeError):
            if self.opts.derivatives == "forward":
                raise
            self.x_needs_grad = True

    # ------------------------------------------------------------------ optimisation
    def _make_optimizer(self, stage: Stage) -> None:
        params = [p for p in self.model.parameters() if p.requires_grad]
        if stage.optimizer == "adam":
            self.optimizer = torch.optim.Adam(params, lr=stage.lr)
        else:
            kw = dict(lr=stage.lr, max_iter=1, history_size=stage.history_size,
                      tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
            if LBFGS_AVAILABLE:
                # the loss only changes with a resampling or a grid update, and both make a new
                # optimizer: a step may start from the previous step's last evaluation
                self.optimizer = LBFGS(params, reuse_evaluation=True, **kw)
            else:
                self.optimizer = torch.optim.LBFGS(params, **kw)
        self.scheduler = None
        if stage.optimizer == "adam" and stage.scheduler != "none":
            n = max(stage.steps, 1)
            if stage.scheduler == "cosine":
                self.scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
                    self.optimizer, T_max=n, eta_min=stage.lr * stage.gamma)
            elif stage.scheduler == "exponential":
                self.scheduler = torch.optim.lr_scheduler.ExponentialLR(
                    self.optimizer, gamma=stage.gamma ** (1.0 / n))
            else:
                self.scheduler = torch.optim.lr_scheduler.StepLR(
                    self.optimizer, step_size=stage.step_size, gamma=stage.gamma)
        self._param_ids = [id(p) for p in params]

    def _start_stage(self, stage: Stage) -> None:
        if stage.grid_size is not None and hasattr(self.model, "refine"):
            if getattr(self.model, "grid_size", None) != stage.grid_size:
                self.model.refine(stage.grid_size)
                self.model.to(device=self.device, dtype=self.dtype)
        self._make_optimizer(stage)

    def _boundaries(self) -> list[int]:
        o = self.opts
        return [e for e in (o.eval_every, o.resample_every, o.grid_update_every) if e > 0]

    def _chunk(self, stage: Stage) -> int:
        """Steps until the next event (evaluation, resampling, grid update or stage end)."""
        left = stage.steps - self.stage_step
        for every in self._boundaries():
            left = min(left, every - self.step % every)
        return max(left, 1)

    def _train_chunk(self, stage: Stage) -> tuple[int, float, dict[str, float]]:
        self.model.train()
        if stage.optimizer == "adam":
            self.optimizer.zero_grad(set_to_none=True)
            loss, parts = self._loss()
            loss.backward()
            self.optimizer.step()
            if self.scheduler is not None:
                self.scheduler.step()
            return 1, float(loss.detach()), parts
        n = self._chunk(stage)
        last: dict[str, Any] = {}

        def closure():
            self.optimizer.zero_grad(set_to_none=True)
            loss, parts = self._loss()
            loss.backward()
            last["loss"], last["parts"] = float(loss.detach()), parts
            return loss

        group = self.optimizer.param_groups[0]
        group["max_iter"] = n
        group["max_eval"] = n * 5 // 4 + 20
        state = self.optimizer.state[group["params"][0]]
        before = state.get("n_iter", 0)
        self.optimizer.step(closure)
        done = max(state.get("n_iter", 0) - before, 1)
        return min(done, n), last["loss"], last["parts"]

    # ------------------------------------------------------------------ evaluation
    def _evaluate(self) -> tuple[dict, dict]:
        self.model.eval()
        if not hasattr(self, "x_eval"):
            x, w = self.problem.domain.evaluation_points(self.opts.n_eval)
            self.x_eval, self.w_eval = self._points(x), self._cast(torch.as_tensor(w))
        return metrics.evaluate_errors(self.problem, self._u_fn(order=1), self.x_eval, self.w_eval)

    def _record(self, loss: float, parts: dict[str, float], errs: dict) -> None:
        row = {"step": self.step, "time_s": self.train_time, "loss": loss,
               "rel_l2": errs.get("rel_l2", math.nan), "rel_h1": errs.get("rel_h1", math.nan)}
        row.update({f"loss_{k}": v for k, v in parts.items()})
        n = len(self.history.get("step", []))
        for k, v in row.items():
            self.history.setdefault(k, [math.nan] * n).append(float(v))

    # ------------------------------------------------------------------ state
    def _state(self) -> dict:
        return {
            "model": copy.deepcopy(self.model.state_dict()),
            "grid_size": getattr(self.model, "grid_size", None),
            "optimizer": copy.deepcopy(self.optimizer.state_dict()) if self.optimizer else None,
            "scheduler": self.scheduler.state_dict() if self.scheduler else None,
            "step": self.step, "stage_index": self.stage_index, "stage_step": self.stage_step,
            "train_time": self.train_time, "round": self.round,
            "history": copy.deepcopy(self.history), "x_needs_grad": self.x_needs_grad,
            "rng": io.rng_state(), "kanpde_version": __version__, "config_yaml": self.config_yaml,
        }

    def _load_state(self, state: dict) -> None:
        g = state.get("grid_size")
        if g is not None and hasattr(self.model, "refine") and getattr(self.model, "grid_size", None) != g:
            self.model.refine(g)
        self.model.load_state_dict(state["model"])
        self.model.to(device=self.device, dtype=self.dtype)
        self.step, self.stage_index = state["step"], state["stage_index"]
        self.stage_step, self.train_time = state["stage_step"], state["train_time"]
        self.history = copy.deepcopy(state["history"])
        self.x_needs_grad = state["x_needs_grad"]
        self._resample(state["round"])
        if self.stage_index < len(self.opts.stages):
            self._make_optimizer(self.opts.stages[self.stage_index])
            if state["optimizer"] is not None:
                self.optimizer.load_state_dict(state["optimizer"])
            if self.scheduler is not None and state["scheduler"] is not None:
                self.scheduler.load_state_dict(state["scheduler"])
        io.set_rng_state(state["rng"])

    def _checkpoint(self, state: dict | None = None) -> None:
        if self.run_dir is not None:
            io.save_checkpoint(self.run_dir / CHECKPOINT, state or self._state())

    # ------------------------------------------------------------------ main loop
    def run(self, resume: bool = False) -> Result:
        o = self.opts
        # load (on a machine's first use: build and announce) compiled kernels here, so a one-off
        # build is not counted as training time
        prepare_kernels(self.model, self.device)
        start = time.perf_counter()
        self.model.to(device=self.device, dtype=self.dtype)
        self._cond_weights = self._weights()
        if resume:
            if self.run_dir is None:
                raise ValueError("resume=True needs output_dir, the folder of the interrupted run")
            path = self.run_dir / CHECKPOINT
            if not path.exists():
                raise FileNotFoundError(
                    f"cannot resume: no {CHECKPOINT} in {self.run_dir}; point the run at the folder of "
                    f"the interrupted run (CLI: hydra.run.dir=<that folder> resume=true)")
            self._load_state(io.load_checkpoint(path, map_location=self.device))
        else:
            _seed_everything(o.seed)
            self._resample(0)
            self._start_stage(o.stages[0])
            self._probe_derivative_path()
        self._unverified = self._state()
        status = "completed"
        bar = _progress(o.total_steps, self.step, o.progress, _problem_name(self.problem))
        loss, parts = math.nan, {}
        try:
            while self.stage_index < len(o.stages):
                stage = o.stages[self.stage_index]
                if self.stage_step >= stage.steps:
                    self.stage_index += 1
                    self.stage_step = 0
                    if self.stage_index < len(o.stages):
                        self._start_stage(o.stages[self.stage_index])
                    continue
                t0 = time.perf_counter()
                n, loss, parts = self._train_chunk(stage)
                self.train_time += time.perf_counter() - t0
                self.step += n
                self.stage_step += n
                bar.update(n)
                if not (math.isfinite(loss) and all(bool(torch.isfinite(p).all()) for p in self.model.parameters())):
                    raise _Diverged(loss)
                if self._unverified is not None:
                    self.last_good, self._unverified = self._unverified, None
                end_of_stage = self.stage_step >= stage.steps
                evaluate = (o.eval_every and self.step % o.eval_every == 0) or end_of_stage
                if evaluate:
                    errs, _ = self._evaluate()
                    self._record(loss, parts, errs)
                    bar.set_postfix(loss=f"{loss:.2e}", rel_l2=f"{errs.get('rel_l2', math.nan):.2e}")
                    status = self._stop_reason(errs)
                if o.resample_every and self.step % o.resample_every == 0:
                    self._resample(self.round + 1)
                    if stage.optimizer == "lbfgs":
                        self._make_optimizer(stage)
                if (o.grid_update_every and hasattr(self.model, "update_grid")
                        and self.step % o.grid_update_every == 0 and self.step <= o.grid_update_until):
                    self._update_grid(stage)
                if evaluate:
                    # saved after this step's resampling and grid update, so a resumed run
                    # continues exactly where the uninterrupted one does
                    state = self._state()
                    self._unverified = state
                    self._checkpoint(state)
                    if status != "completed":
                        break
        except _Diverged as exc:
            bar.close()
            return self._diverged(exc.loss, start)
        except KeyboardInterrupt:
            # the checkpoint of the last evaluation is on disk: resume=True continues from it
            bar.close()
            raise
        bar.close()
        errs, fieldd = self._evaluate()
        if not self.history.get("step") or self.history["step"][-1] != self.step:
            self._record(loss, parts, errs)
        result = Result(self.problem, self.model, o, errs, _arrays(self.history), fieldd,
                        time.perf_counter() - start, status, self.run_dir)
        self._checkpoint()
        self._write(result)
        return result

    def _update_grid(self, stage: Stage) -> None:
        with torch.no_grad():
            self.model.update_grid(self.x_interior.detach())
        params = [p for p in self.model.parameters() if p.requires_grad]
        if [id(p) for p in params] != self._param_ids or stage.optimizer == "lbfgs":
            # new parameter objects, or L-BFGS curvature pairs of a function that has changed
            self._make_optimizer(stage)

    def _stop_reason(self, errs: dict) -> str:
        o = self.opts
        if o.target_rel_l2 is not None and errs.get("rel_l2", math.inf) <= o.target_rel_l2:
            return "target_reached"
        if o.max_time_s is not None and self.train_time >= o.max_time_s:
            return "time_limit"
        if o.plateau_patience:
            losses = self.history["loss"]
            k = o.plateau_patience
            if len(losses) > k and min(losses[-k:]) > 0.99 * min(losses[:-k]):
                return "plateau"
        return "completed"

    def _diverged(self, loss: float, start: float) -> Result:
        where = f"at step {self.step} (loss = {loss})"
        if self.last_good is None:
            raise TrainingDiverged(
                f"training diverged {where}: the initial parameters already give a non-finite loss. "
                f"Lower the learning rate (optim.stages.N.lr) or use float64.")
        good_step = self.last_good["step"]
        self._load_state(self.last_good)
        self._checkpoint(self.last_good)
        errs, fieldd = self._evaluate()
        result = Result(self.problem, self.model, self.opts, errs, _arrays(self.history), fieldd,
                        time.perf_counter() - start, "diverged", self.run_dir)
        self._write(result)
        saved = f"; kept the last good state (step {good_step}) in {self.run_dir}" if self.run_dir else ""
        raise TrainingDiverged(
            f"training diverged {where}{saved}. Lower the learning rate (optim.stages.N.lr) "
            f"or use float64.", result)

    # ------------------------------------------------------------------ output
    def _write(self, result: Result) -> None:
        if self.run_dir is None:
            return
        attrs = {
            "problem": _problem_name(self.problem), "model": _model_name(self.model),
            "n_params": result.n_params, "wall_time_s": result.wall_time_s, "seed": self.opts.seed,
            "kanpde_version": __version__, "config_yaml": self.config_yaml, "status": result.status,
            "device": str(self.device), "dtype": self.opts.dtype, "derivatives": self.opts.derivatives,
            "train_time_s": self.train_time, "steps": self.step,
        }
        io.write_results(self.run_dir / RESULTS, attrs=attrs, metrics=result.metrics,
                         history=result.history, field=result.field)
        if self.plots:
            _plots(self.run_dir, result, getattr(self.problem.domain, "time_axis", None))


class _Diverged(Exception):
    def __init__(self, loss: float):
        self.loss = loss


def _arrays(history: dict) -> dict:
    return {k: np.asarray(v, dtype=np.int64 if k == "step" else np.float64) for k, v in history.items()}


def _output_transform(problem):
    """The problem's hard-constraint transform ``(x, u) -> u``, or ``None``."""
    return getattr(problem, "output_transform", None)


def _plots(run_dir: Path, result: Result, time_axis) -> None:
    from .. import plotting

    plotting.plot_solution(result.field, run_dir / "solution.png", run_dir / "error.png", time_axis=time_axis)
    plotting.plot_history(result.history, run_dir / "history.png")
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
