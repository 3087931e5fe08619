"""Residual-based adaptive collocation: points where the PDE residual is large.

Both methods draw a pool of candidate points uniformly in the domain (space-time and CSG
domains alike, through ``domain.sample_interior``), evaluate the residual there and change the
collocation set every ``every`` steps (Wu, Zhu, Tan, Kartha & Lu 2023, "A comprehensive study of
non-adaptive and residual-based adaptive sampling for physics-informed neural networks",
CMAME 403, 115671):

- **RAR** (residual-based adaptive refinement, Lu et al. 2021, SIAM Review 63): add the
  ``n_add`` candidates with the largest residual to the collocation points;
- **RAD** (residual-based adaptive distribution): replace the collocation points by a draw
  from the pool with probability ``p(x) ∝ |r(x)|^k / mean(|r|^k) + c`` (without replacement).

The collocation points a method made are kept in checkpoints, so a resumed run continues on
them.
"""
from __future__ import annotations

import torch

from .base import TrainerPlugin

__all__ = ["AdaptiveSampling", "rad_probabilities"]


def rad_probabilities(residual: torch.Tensor, k: float, c: float) -> torch.Tensor:
    """RAD's sampling law over a pool: ``p_i ∝ |r_i|^k / mean(|r|^k) + c``, normalised to sum 1.
    ``residual``: ``(N,)``; returns ``(N,)``.  A pool with zero residual everywhere is uniform."""
    e = residual.abs().double().pow(k)
    mean = e.mean()
    dens = (e / mean if mean > 0 else torch.zeros_like(e)) + c
    if not dens.sum() > 0:  # k > 0, c = 0 and a vanishing residual: nothing to prefer
        dens = torch.ones_like(dens)
    return dens / dens.sum()


class AdaptiveSampling(TrainerPlugin):
    """RAR or RAD every ``every`` steps on a pool of ``pool`` uniform candidates (see the module
    docstring); ``n_add``: RAR's points per refinement; ``k``, ``c``: RAD's law."""

    name = "adaptive_sampling"

    def __init__(self, method: str, every: int, pool: int, n_add: int = 100, k: float = 1.0, c: float = 1.0):
        if method not in ("rar", "rad"):
            raise ValueError(f"adaptive sampling method must be 'rar' or 'rad', got {method!r}")
        self.method, self.every, self.pool = method, every, pool
        self.n_add, self.k, self.c = n_add, k, c
        self.rounds = 0

    def steps_to_next_event(self, trainer) -> int | None:
        return self.every - trainer.step % self.every

    def on_step_end(self, trainer) -> None:
        if trainer.step % self.every:
            return
        n = trainer.collocation.shape[0]
        if self.method == "rad" and self.pool < n:
            raise ValueError(f"RAD draws the {n} collocation points from a pool of methods.sampling.pool="
                             f"{self.pool} candidates; the pool must hold at least as many points")
        pool = trainer.problem.domain.sample_interior(self.pool, method="uniform",
                                                      seed=trainer.seed_for(trainer.step, 7919))
        pool = pool.to(device=trainer.device, dtype=trainer.dtype)
        r = trainer.pointwise_residual(pool)
        if self.method == "rar":
            worst = pool[r.topk(min(self.n_add, self.pool)).indices]
            trainer.set_collocation(torch.cat([trainer.collocation.detach(), worst]))
        else:
            gen = torch.Generator().manual_seed(trainer.seed_for(trainer.step, 104729))
            idx = torch.multinomial(rad_probabilities(r, self.k, self.c).cpu(), n, replacement=False, generator=gen)
            trainer.set_collocation(pool[idx.to(pool.device)])
        self.rounds += 1

    def log_values(self, trainer):
        return {"collocation_points": float(trainer.collocation.shape[0])}

    def state_dict(self) -> dict:
        return {"rounds": self.rounds}

    def load_state_dict(self, state: dict) -> None:
        self.rounds = state.get("rounds", 0)
