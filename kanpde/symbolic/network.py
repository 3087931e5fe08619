"""A KAN taken apart into its edges, so that edges can become formulas one by one.

:class:`EdgeNetwork` computes ``out_q = bias_q + sum_p phi_qp(h_p)`` layer by layer like a KAN,
but every edge is its own module: a :class:`SplineEdge` (the KAN's learned spline, unchanged) or
a :class:`FormulaEdge` (``c * f(a h + b) + d`` with trainable ``a, b, c, d``).  Snapping an edge
swaps one for the other; once every edge is a formula, :meth:`EdgeNetwork.formulas` writes the
network out.  It trains like any model (``kanpde.solve``, derivatives by autograd).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .library import LIBRARY

__all__ = ["EdgeNetwork", "SplineEdge", "FormulaEdge"]


class SplineEdge(nn.Module):
    """Edge ``p -> q`` of a KAN layer as a one-input, one-output KAN layer (same knots, spline
    and base weights): the same function."""

    def __init__(self, layer, q: int, p: int):
        super().__init__()
        from ..models.kan.layer import KANLayer

        src = layer
        self.edge = KANLayer(1, 1, src.grid_size, src.spline_order, src.grid_range, src.base_activation,
                             src.grid_eps, bias=False, dtype=src.spline_weight.dtype, device=src.spline_weight.device)
        state = {"grid": src.grid[p:p + 1].clone(), "spline_weight": src.spline_weight[q:q + 1, p:p + 1].detach().clone(),
                 "spline_scaler": src.spline_scaler[q:q + 1, p:p + 1].detach().clone()}
        if src.base_weight is not None:
            state["base_weight"] = src.base_weight[q:q + 1, p:p + 1].detach().clone()
        self.edge.load_state_dict(state)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.edge(h.reshape(-1, 1))[:, 0]


class FormulaEdge(nn.Module):
    """``c * f(a h + b) + d`` with ``f`` a library function ``name`` and trainable ``a, b, c, d``."""

    def __init__(self, name: str, params: Sequence[float]):
        super().__init__()
        self.name = name
        self.params = nn.Parameter(torch.as_tensor([float(v) for v in params], dtype=torch.float64))
        if name in ("0", "x"):  # no inner affine map to train: a = 1, b = 0 (and f = 0 needs no c)
            self.params.data[:2] = torch.tensor([1.0, 0.0], dtype=torch.float64)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        a, b, c, d = self.params
        if self.name == "0":
            return d.expand(h.shape[0])
        if self.name == "x":
            return c * h + d
        return c * LIBRARY[self.name].torch_fn(a * h + b) + d

    def text(self, z: str, num) -> str:
        a, b, c, d = self.params
        if self.name == "0":
            return num(d)
        if self.name == "x":
            return f"{num(c)}*{z} + {num(d)}"
        return f"{num(c)}*{LIBRARY[self.name].text(f'{num(a)}*{z} + {num(b)}')} + {num(d)}"

    def extra_repr(self) -> str:
        return f"{self.name}, a, b, c, d = {[round(float(v), 6) for v in self.params.detach()]}"


class EdgeNetwork(nn.Module):
    """A KAN of separate edge modules (see the module docstring).  ``edges[l]`` maps ``(q, p)``
    to the edge of layer ``l`` from input ``p`` to output ``q``; missing edges are pruned."""

    def __init__(self, widths: Sequence[int], edges: list[dict[tuple[int, int], nn.Module]],
                 biases: list[torch.Tensor]):
        super().__init__()
        self.widths = [int(w) for w in widths]
        self.in_features, self.out_features = self.widths[0], self.widths[-1]
        self.keys = [sorted(layer) for layer in edges]
        self.layers = nn.ModuleList(nn.ModuleList(layer[key] for key in keys) for layer, keys in zip(edges, self.keys))
        self.biases = nn.ParameterList(nn.Parameter(b.detach().clone().to(torch.float64)) for b in biases)

    @classmethod
    def from_kan(cls, kan, kept: list[set[tuple[int, int]]] | None = None) -> "EdgeNetwork":
        """The KAN's function as an edge network (only the ``kept`` edges of each layer, default all)."""
        edges, biases = [], []
        for l, layer in enumerate(kan.layers):
            keys = kept[l] if kept is not None else {(q, p) for q in range(layer.out_features)
                                                    for p in range(layer.in_features)}
            edges.append({key: SplineEdge(layer, *key) for key in keys})
            biases.append(layer.bias.detach() if layer.bias is not None
                          else torch.zeros(layer.out_features, dtype=layer.spline_weight.dtype))
        return cls(kan.widths, edges, biases)

    def edge(self, l: int, q: int, p: int) -> nn.Module:
        return self.layers[l][self.keys[l].index((q, p))]

    def set_edge(self, l: int, q: int, p: int, module: nn.Module) -> None:
        self.layers[l][self.keys[l].index((q, p))] = module

    def layer_inputs(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The input of every layer for points ``x`` (the samples each edge sees)."""
        inputs, h = [], x
        for l in range(len(self.layers)):
            inputs.append(h)
            h = self._layer(l, h)
        return inputs

    def _layer(self, l: int, h: torch.Tensor) -> torch.Tensor:
        width = self.widths[l + 1]
        cols = [self.biases[l][q].expand(h.shape[0]) for q in range(width)]
        for (q, p), module in zip(self.keys[l], self.layers[l]):
            cols[q] = cols[q] + module(h[:, p])
        return torch.stack(cols, dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for l in range(len(self.layers)):
            h = self._layer(l, h)
        return h

    @property
    def all_formulas(self) -> bool:
        return all(isinstance(m, FormulaEdge) for layer in self.layers for m in layer)

    def formulas(self, input_names: Sequence[str], digits: int = 17) -> list[str]:
        """Each output as an expression over ``input_names`` in sympy syntax, numbers with
        ``digits`` significant digits; every edge must be a formula."""
        if not self.all_formulas:
            raise ValueError("the network still has spline edges; snap every edge before writing a formula")

        def num(v) -> str:
            return f"({float(v.detach() if hasattr(v, 'detach') else v):.{digits}g})"

        nodes = [str(n) for n in input_names]
        for l in range(len(self.layers)):
            terms = [[num(self.biases[l][q])] for q in range(self.widths[l + 1])]
            for (q, p), module in zip(self.keys[l], self.layers[l]):
                terms[q].append(module.text(nodes[p], num))
            nodes = [f"({' + '.join(t)})" for t in terms]
        return nodes
