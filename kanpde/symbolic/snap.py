"""Snapping the edges of an :class:`~kanpde.symbolic.network.EdgeNetwork` to formulas.

Round by round, layer by layer from the inputs: every spline edge of the first layer that still
has one is fitted with each library candidate on the samples it sees
(:mod:`kanpde.symbolic.fit`); the edges whose chosen candidate fits to within ``tolerance``
(1 - R^2) are replaced by it, or, when none does, the one that fits best; then ``fine_tune``
(a short L-BFGS stage against the PDE loss) lets the rest of the network adapt before the next
round.  The KAN paper and its reference implementation snap the same way (``fix_symbolic``,
then train).
"""
from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Callable

import numpy as np
import torch

from .fit import EdgeFit, fit_edge
from .library import Candidate
from .network import EdgeNetwork, FormulaEdge, SplineEdge

__all__ = ["SnappedEdge", "auto_symbolic"]


@dataclass
class SnappedEdge:
    """What one edge became: layer ``l``, ``q`` (output), ``p`` (input), the chosen fit, every
    candidate's fit, the round it was snapped in, and the samples it was fitted on."""

    l: int
    q: int
    p: int
    chosen: EdgeFit
    fits: list[EdgeFit]
    round: int
    samples: tuple[np.ndarray, np.ndarray] = dataclass_field(repr=False, default=None)


def auto_symbolic(net: EdgeNetwork, x: torch.Tensor, candidates: list[Candidate],
                  fine_tune: Callable[[EdgeNetwork], None] | None = None, tolerance: float = 1e-4,
                  progress: Callable[[str], None] | None = None, max_samples: int = 1000) -> list[SnappedEdge]:
    """Snap every spline edge of ``net`` (in place), fitting on at most ``max_samples`` of the
    points ``x``; returns one record per edge.  ``candidates``: one list for every layer, or a
    list of lists, one per layer (the last one also for any further layers)."""
    records: list[SnappedEdge] = []
    round_ = 0
    per_layer = bool(candidates) and isinstance(candidates[0], (list, tuple))
    if x.shape[0] > max_samples:  # an even spread of the points is plenty for a 4-parameter fit
        x = x[torch.linspace(0, x.shape[0] - 1, max_samples).round().long()]
    while True:
        with torch.no_grad():
            inputs = net.layer_inputs(x)
            pending = []
            for l, (keys, modules) in enumerate(zip(net.keys, net.layers)):
                for (q, p), module in zip(keys, modules):
                    if isinstance(module, SplineEdge):
                        h = inputs[l][:, p]
                        y = module(h)
                        pending.append((l, q, p, h.cpu().numpy(), y.cpu().numpy()))
        if not pending:
            return records
        first = min(l for l, *_ in pending)  # layer by layer from the inputs: a snapped edge changes
        pending = [e for e in pending if e[0] == first]  # what the layers after it see
        fitted = []
        for l, q, p, h, y in pending:
            chosen, fits = fit_edge(h, y, candidates[min(l, len(candidates) - 1)] if per_layer else candidates)
            fitted.append(SnappedEdge(l, q, p, chosen, fits, round_, (h, y)))
        now = [r for r in fitted if 1 - r.chosen.r2 <= tolerance] or [max(fitted, key=lambda r: r.chosen.r2)]
        for r in now:
            net.set_edge(r.l, r.q, r.p, FormulaEdge(r.chosen.name, r.chosen.params).to(x.device))
            records.append(r)
        if progress is not None:
            progress(f"round {round_}: " + ", ".join(f"edge ({r.l},{r.p}->{r.q}) = {r.chosen.name} "
                                                      f"(1-R^2 = {1 - r.chosen.r2:.1e})" for r in now))
        if fine_tune is not None:
            fine_tune(net)
        round_ += 1
