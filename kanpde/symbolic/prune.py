"""Pruning a trained KAN to its important edges and nodes (the KAN paper, section 2.5.1).

The importance of edge ``p -> q`` of a layer is its mean magnitude ``|phi_qp|_1 = mean_n
|phi_qp(h_np)|`` over sample points, relative to the largest edge of the layer.  A hidden node
stays when its largest incoming and its largest outgoing edge are both at least ``threshold``;
an edge stays when it is at least ``threshold`` and joins nodes that stay.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

__all__ = ["Pruned", "edge_importance", "prune"]


@dataclass
class Pruned:
    """The pruned KAN and what was kept: ``model`` (a new, smaller KAN whose removed edges are
    zero), ``nodes[l]`` the original indices of the nodes of layer boundary ``l`` that stay
    (``nodes[0]`` the inputs, ``nodes[-1]`` the outputs), ``edges[l]`` the kept edges of layer
    ``l`` as ``(q, p)`` in the new numbering, ``importance[l]`` ``(out, in)`` of the original KAN."""

    model: torch.nn.Module
    nodes: list[list[int]]
    edges: list[set[tuple[int, int]]]
    importance: list[torch.Tensor]


@torch.no_grad()
def edge_importance(model, x: torch.Tensor) -> list[torch.Tensor]:
    """``(out, in)`` per layer: each edge's mean magnitude at the samples ``x``, divided by the
    layer's largest."""
    scores, h = [], x
    for layer in model.layers:
        phi = layer.edge_activations(h)                 # (N, in, out)
        l1 = phi.abs().mean(0).t()                      # (out, in)
        scores.append(l1 / l1.max().clamp_min(torch.finfo(l1.dtype).tiny))
        h = layer(h)
    return scores


@torch.no_grad()
def prune(model, x: torch.Tensor, threshold: float = 0.01) -> Pruned:
    """The KAN ``model`` without its unimportant edges and hidden nodes (see the module
    docstring), judged at sample points ``x`` ``(N, in)``; ``threshold`` in [0, 1).  Refused
    with a message when it would prune every edge of a layer."""
    from ..models import KAN

    if not isinstance(model, KAN):
        raise TypeError(f"prune needs a B-spline KAN, got {type(model).__name__}")
    if not (isinstance(threshold, (int, float)) and 0 <= threshold < 1):
        raise ValueError(f"the pruning threshold is relative to each layer's largest edge and must lie in [0, 1) "
                         f"(1 or more would prune every edge), got {threshold!r}")
    x = x.to(dtype=model.layers[0].spline_weight.dtype)
    scores = edge_importance(model, x)
    widths = model.widths
    keep = [list(range(widths[0]))]
    for l in range(1, len(widths) - 1):
        incoming = scores[l - 1].max(dim=1).values      # node i of boundary l: its largest incoming edge
        outgoing = scores[l].max(dim=0).values          # and its largest outgoing edge
        nodes = [i for i in range(widths[l]) if incoming[i] >= threshold and outgoing[i] >= threshold]
        if not nodes:
            raise ValueError(f"a pruning threshold of {threshold} removes every node of hidden layer {l} "
                             f"(largest node importance {float(torch.minimum(incoming, outgoing).max()):.3g}); "
                             f"use a smaller threshold")
        keep.append(nodes)
    keep.append(list(range(widths[-1])))
    new_widths = [len(n) for n in keep]
    src = model.layers[0]
    pruned = KAN(new_widths, grid_size=model.grid_size, spline_order=model.spline_order,
                 grid_range=model.grid_range, base_activation=model.base_activation, grid_eps=src.grid_eps,
                 bias=src.bias is not None, dtype=src.spline_weight.dtype, device=src.spline_weight.device)
    edges = []
    for l, (layer, new) in enumerate(zip(model.layers, pruned.layers)):
        rows, cols = keep[l + 1], keep[l]
        mask = scores[l][rows][:, cols] >= threshold
        if not mask.any():
            raise ValueError(f"a pruning threshold of {threshold} removes every edge of layer {l}; use a smaller threshold")
        state = {"grid": layer.grid[cols].clone(),
                 "spline_weight": layer.spline_weight[rows][:, cols].clone(),
                 "spline_scaler": layer.spline_scaler[rows][:, cols] * mask}
        if layer.base_weight is not None:
            state["base_weight"] = layer.base_weight[rows][:, cols] * mask
        if layer.bias is not None:
            state["bias"] = layer.bias[rows].clone()
        new.load_state_dict(state)
        edges.append({(q, p) for q, p in mask.nonzero().tolist()})
    return Pruned(pruned, keep, edges, scores)
