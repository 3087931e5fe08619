"""Loss balancing: weights that adapt to the training dynamics.

- **Gradient-norm balancing** (:class:`GradNormBalancing`; the learning-rate annealing of Wang,
  Teng & Perdikaris 2021, "Understanding and mitigating gradient flow pathologies in
  physics-informed neural networks", SIAM J. Sci. Comput. 43, in the grad-norm form of Wang et
  al. 2023, "An expert's guide to training physics-informed neural networks", arXiv 2308.08468):
  every ``every`` steps, with ``g_i = ||grad_theta (w_i L_i)||`` the gradient norm of each
  weighted loss term, the factor ``lambda_i_hat = mean_j g_j / g_i`` makes every term's
  gradient as large as the average one; ``lambda_i <- alpha lambda_i + (1 - alpha)
  lambda_i_hat``.  The factors multiply the configured weights ``w_i``.
- **Residual-based attention** (:class:`ResidualAttention`, RBA; Anagnostopoulos, Toscano,
  Stergiopulos & Karniadakis 2024, "Residual-based attention in physics-informed neural
  networks", CMAME 421, 116805): one weight per collocation point, ``lambda_p <- gamma lambda_p
  + eta |r_p| / max_q |r_q|`` after every ``every`` steps, and the residual term becomes
  ``mean((lambda_p r_p)^2)``.  The weights start at 1 and restart when the collocation points
  change.

A weight change is a change of the loss: multi-step optimizers (L-BFGS) restart their memory,
so both methods suit Adam best (RBA with L-BFGS updates only at the trainer's chunk ends).
"""
from __future__ import annotations

import math

import torch

from .base import TrainerPlugin

__all__ = ["GradNormBalancing", "ResidualAttention", "grad_norm_factors"]


def grad_norm_factors(norms: dict[str, float]) -> dict[str, float]:
    """``lambda_i = mean_j g_j / g_i`` for the gradient norms ``g_i`` (terms whose gradient
    vanishes keep the factor 1)."""
    positive = [g for g in norms.values() if g > 0 and math.isfinite(g)]
    if not positive:
        return {k: 1.0 for k in norms}
    mean = sum(positive) / len(positive)
    return {k: (mean / g if g > 0 and math.isfinite(g) else 1.0) for k, g in norms.items()}


class GradNormBalancing(TrainerPlugin):
    """Gradient-norm balancing of the loss terms (see the module docstring)."""

    name = "grad_norm_balancing"

    def __init__(self, every: int, alpha: float):
        self.every, self.alpha = every, alpha
        self.factors: dict[str, float] = {}

    def steps_to_next_event(self, trainer) -> int | None:
        return self.every - trainer.step % self.every

    def update(self, trainer) -> dict[str, float]:
        """Recompute the factors from the current gradient norms; returns the norms."""
        params = [p for p in trainer.model.parameters() if p.requires_grad]
        terms = trainer.loss_terms()
        weights = trainer.term_weights(terms)
        norms = {}
        for i, (name, term) in enumerate(terms.items()):
            grads = torch.autograd.grad(term * weights[name], params, retain_graph=i < len(terms) - 1,
                                        allow_unused=True)
            grads = trainer.reduce_gradients(grads)  # a distributed run: the global term's gradient
            norms[name] = math.sqrt(sum(float(g.detach().pow(2).sum()) for g in grads if g is not None))
        target = grad_norm_factors(norms)
        a = self.alpha if self.factors else 0.0  # the first update takes the measured factors
        self.factors = {k: a * self.factors.get(k, 1.0) + (1 - a) * v for k, v in target.items()}
        trainer.loss_changed()
        return norms

    def on_train_start(self, trainer) -> None:
        if not self.factors:
            self.update(trainer)

    def on_step_end(self, trainer) -> None:
        if trainer.step % self.every == 0:
            self.update(trainer)

    def loss_weights(self, trainer):
        return self.factors

    def log_values(self, trainer):
        return {f"weight_{k}": v for k, v in self.factors.items()}

    def state_dict(self) -> dict:
        return {"factors": dict(self.factors)}

    def load_state_dict(self, state: dict) -> None:
        self.factors = dict(state.get("factors", {}))


class ResidualAttention(TrainerPlugin):
    """Residual-based attention weights on the collocation points (see the module docstring)."""

    name = "residual_attention"

    def __init__(self, every: int = 1, gamma: float = 0.999, eta: float = 0.01):
        self.every, self.gamma, self.eta = every, gamma, eta
        self.weights: torch.Tensor | None = None
        self._points_key = None

    def _key(self, trainer):
        x = trainer.collocation
        return x.data_ptr(), tuple(x.shape), trainer.round

    def steps_to_next_event(self, trainer) -> int | None:
        return self.every - trainer.step % self.every

    def on_step_end(self, trainer) -> None:
        if trainer.step % self.every:
            return
        if self.weights is None or self._points_key != self._key(trainer):
            self.weights = torch.ones(trainer.collocation.shape[0], dtype=trainer.dtype, device=trainer.device)
            self._points_key = self._key(trainer)
        r = trainer.pointwise_residual(trainer.collocation)
        self.weights = self.gamma * self.weights + self.eta * r / r.max().clamp_min(torch.finfo(r.dtype).tiny)
        trainer.loss_changed()

    def point_weights(self, trainer, term, x, residual):
        # the weights belong to the global collocation set; the loss sees this process's shard
        if (self.weights is None or term not in trainer.residual_names or self._points_key != self._key(trainer)
                or self.weights.shape[0] != trainer.collocation.shape[0]):
            return None
        return trainer.shard(self.weights).square()

    def log_values(self, trainer):
        if self.weights is None:
            return {"attention_mean": 1.0, "attention_max": 1.0}
        return {"attention_mean": float(self.weights.mean()), "attention_max": float(self.weights.max())}

    def state_dict(self) -> dict:
        return {"weights": None if self.weights is None else self.weights.detach().cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        w = state.get("weights")
        self.weights, self._points_key = (None, None) if w is None else (w, "restored")

    def on_train_start(self, trainer) -> None:
        if self._points_key == "restored":
            self.weights = self.weights.to(device=trainer.device, dtype=trainer.dtype)
            self._points_key = self._key(trainer)
