"""Causal training for time-dependent problems (Wang, Sankaran & Perdikaris 2024, "Respecting
causality for training physics-informed neural networks", CMAME 421, 116813).

The time interval is cut into ``chunks`` equal slices; with ``L_i`` the mean squared PDE
residual of the collocation points in slice ``i``, the residual loss becomes

    (1 / M) sum_i w_i L_i,    w_i = exp(-eps * sum_{k < i} L_k)   (no gradient through w),

so a slice only counts once the earlier ones are solved: ``w_0 = 1``, the weights never grow
with time, and all reach 1 when the residual vanishes.  The weights are recomputed from the
slice losses of the latest loss evaluation every ``every`` steps (at the end of an optimizer
call: one step of Adam, a chunk of L-BFGS steps) and stay fixed in between, so that every
evaluation within a step, an L-BFGS line search's included, sees one function; each update
restarts L-BFGS's memory, so with L-BFGS a larger ``every`` lets it work.  With
``anneal``, ``eps`` grows tenfold (up to ``eps_max``) once every weight exceeds 0.99, as the
paper's schedule does.  The weights are logged (``causal_min_weight``, ``causal_eps``).
"""
from __future__ import annotations

import torch

from .base import TrainerPlugin

__all__ = ["CausalWeights", "causal_weights"]


def causal_weights(slice_losses: torch.Tensor, eps: float) -> torch.Tensor:
    """``w_i = exp(-eps * sum_{k < i} L_k)`` for the slice losses ``L`` ``(M,)``; ``(M,)``."""
    before = torch.cat([slice_losses.new_zeros(1), torch.cumsum(slice_losses, 0)[:-1]])
    return torch.exp(-eps * before)


class CausalWeights(TrainerPlugin):
    """Causal weights on the PDE residual terms (see the module docstring)."""

    name = "causal"

    def __init__(self, chunks: int, eps: float, anneal: bool = False, eps_max: float = 100.0, every: int = 1):
        self.chunks, self.eps, self.anneal, self.eps_max, self.every = chunks, eps, anneal, eps_max, every
        self.weights: torch.Tensor | None = None  # per slice, fixed between step ends
        self._pending: torch.Tensor | None = None  # slice losses of the latest loss evaluation

    def _setup(self, trainer) -> None:
        domain = trainer.problem.domain
        if getattr(domain, "time_axis", None) is None:
            raise ValueError(f"causal training (methods.causal.enabled) needs a time-dependent problem; "
                             f"{trainer.problem.name!r} has no time axis (domain {domain!r})")
        lo, hi = domain.bbox
        self._axis, self._t0, self._t1 = domain.time_axis, float(lo[domain.time_axis]), float(hi[domain.time_axis])

    def _slices(self, x: torch.Tensor) -> torch.Tensor:
        t = (x[:, self._axis].detach() - self._t0) / (self._t1 - self._t0)
        return (t * self.chunks).floor().clamp_(0, self.chunks - 1).long()

    def point_weights(self, trainer, term, x, residual):
        if term not in trainer.residual_names:
            return None
        if not hasattr(self, "_axis"):  # the loss may be evaluated before training starts
            self._setup(trainer)
        idx = self._slices(x)
        # a distributed run: the slices' counts and losses over every process's points
        reduce = trainer.distributed.all_reduce_sum
        counts = reduce(torch.bincount(idx, minlength=self.chunks).to(residual.dtype))
        losses = torch.zeros(self.chunks, dtype=residual.dtype, device=residual.device)
        losses = reduce(losses.index_add_(0, idx, residual.pow(2).sum(1))) / counts.clamp_min(1)
        n_points = trainer.collocation.shape[0] if trainer.distributed.active else x.shape[0]
        # the weights stay fixed between updates (a step's end), so that every evaluation of the
        # loss within a step, an L-BFGS line search's included, sees the same function
        self._pending = losses
        if self.weights is None:
            self.weights = causal_weights(losses, self.eps)
        # per point w_i * N / (M n_i): the mean over the points is (1 / M) sum_i w_i L_i
        return (self.weights * n_points / (self.chunks * counts.clamp_min(1)))[idx]

    def steps_to_next_event(self, trainer) -> int | None:
        return self.every - trainer.step % self.every if self.every > 1 else None

    def on_step_end(self, trainer) -> None:
        if self._pending is None or trainer.step % self.every:
            return
        self.weights = causal_weights(self._pending, self.eps)
        if self.anneal and float(self.weights.min()) > 0.99 and self.eps < self.eps_max:
            self.eps = min(self.eps * 10.0, self.eps_max)
            self.weights = causal_weights(self._pending, self.eps)
        trainer.loss_changed()

    def log_values(self, trainer):
        w = self.weights
        return {"causal_min_weight": float("nan") if w is None else float(w.min()), "causal_eps": self.eps}

    def state_dict(self) -> dict:
        return {"eps": self.eps, "weights": None if self.weights is None else self.weights.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.eps = state.get("eps", self.eps)
        self.weights = state.get("weights")

    def on_train_start(self, trainer) -> None:
        self._setup(trainer)
        if self.weights is not None:
            self.weights = self.weights.to(device=trainer.device, dtype=trainer.dtype)
