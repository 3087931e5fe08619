"""The B-spline KAN: a stack of :class:`~kanpde.models.kan.layer.KANLayer`."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from ..activations import activation
from ..base import Model, check_int, check_real
from .layer import BASE_ACTIVATIONS, KANLayer, check_grid_range

__all__ = ["KAN"]


class KAN(Model):
    """B-spline Kolmogorov–Arnold network: a stack of :class:`KANLayer`.

    Args:
        widths: layer widths ``[in, hidden..., out]``, e.g. ``[2, 10, 1]`` (copied, never mutated).
        grid_size, spline_order, grid_range, base_activation, grid_eps, bias, noise_scale:
            passed to every :class:`KANLayer`.
        dtype, device: of the parameters (``None``: torch defaults).
        seed: if given, the initial parameters are drawn from ``torch.Generator().manual_seed(seed)``
            (identical on every device); otherwise from torch's global generator.

    ``forward(x)``: ``(N, widths[0])`` -> ``(N, widths[-1])``.  Trainable parameters per layer:
    ``in * out * (G + k + 2) + out`` (``G + k`` spline coefficients, ``w_s`` and ``w_b`` per edge,
    one bias per node).
    """

    def __init__(self, widths: Sequence[int], grid_size: int = 5, spline_order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), base_activation: str = "silu",
                 grid_eps: float = 0.02, bias: bool = True, noise_scale: float = 0.1,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None,
                 seed: int | None = None):
        super().__init__(widths)
        self.grid_size = check_int(grid_size, "grid_size", 1)
        self.spline_order = check_int(spline_order, "spline_order", 1)
        self.grid_range = check_grid_range(grid_range)
        self.base_activation = activation(base_activation, BASE_ACTIVATIONS, "base_activation")
        if seed is not None:
            seed = check_int(seed, "seed", 0)
        self.layers = nn.ModuleList(
            KANLayer(a, b, self.grid_size, self.spline_order, self.grid_range, self.base_activation,
                     grid_eps, bias, noise_scale, dtype=dtype, device=device)
            for a, b in zip(self.widths[:-1], self.widths[1:])
        )
        if seed is not None:
            self.reset_parameters(torch.Generator().manual_seed(seed))

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw every layer's parameters (see :meth:`KANLayer.reset_parameters`)."""
        for layer in self.layers:
            layer.reset_parameters(generator)

    def extra_repr(self) -> str:
        return (f"widths={self.widths}, grid_size={self.grid_size}, spline_order={self.spline_order}, "
                f"base_activation={self.base_activation!r}")

    @torch.no_grad()
    def update_grid(self, x: torch.Tensor) -> None:
        """Adapt every layer's knots to its inputs at the samples ``x`` ``(N, in)`` (layer by
        layer, each seeing the already updated layers' outputs), keeping the function
        (see :meth:`KANLayer.update_grid`).  Parameters keep their identity and shapes."""
        self._check(x)
        h = x.detach()
        for layer in self.layers:
            layer.update_grid(h)
            h = layer(h)

    def refine(self, new_grid_size: int) -> "KAN":
        """Grid extension: every layer moves to ``new_grid_size`` intervals keeping its
        function (see :meth:`KANLayer.refine`).  Replaces the spline parameters (create a new
        optimizer afterwards); updates ``grid_size``; returns ``self``."""
        new_grid_size = check_int(new_grid_size, "new_grid_size", 1)
        for layer in self.layers:
            layer.refine(new_grid_size)
        self.grid_size = new_grid_size
        return self

    def regularization_loss(self, x: torch.Tensor, lamb_l1: float = 1.0, lamb_entropy: float = 2.0) -> torch.Tensor:
        """The KAN paper's sparsification penalty (section 2.5.1) on the batch ``x`` ``(N, in)``.

        For every layer the L1 norm of edge ``p -> q`` is ``|phi_qp|_1 = mean_n |phi_qp(h_np)|``;
        the layer contributes ``lamb_l1 * sum_qp |phi_qp|_1 + lamb_entropy * S`` with the entropy
        ``S = -sum_qp (|phi_qp|_1 / total) log(|phi_qp|_1 / total)``.  Returns a scalar tensor,
        differentiable in the parameters.  ``x`` is explicit: ``forward`` keeps no state.
        """
        self._check(x)
        lamb_l1 = check_real(lamb_l1, "lamb_l1", 0.0)
        lamb_entropy = check_real(lamb_entropy, "lamb_entropy", 0.0)
        total = x.new_zeros(())
        h = x
        for layer in self.layers:
            phi = layer.edge_activations(h)  # (N, in, out)
            l1 = phi.abs().mean(0)
            s = l1.sum()
            p = l1 / s.clamp_min(torch.finfo(x.dtype).tiny)
            entropy = -(p * torch.log(p.clamp_min(torch.finfo(x.dtype).tiny))).sum()
            total = total + lamb_l1 * s + lamb_entropy * entropy
            h = phi.sum(1)
            if layer.bias is not None:
                h = h + layer.bias
        return total

    @torch.no_grad()
    def activation_curves(self, n: int = 200) -> list[dict]:
        """Every edge function sampled over its grid range, for plotting (the paper's view).

        Returns one dict per layer: ``"x"`` ``(n, in)`` (column ``p`` spans input ``p``'s knot
        range) and ``"phi"`` ``(n, in, out)`` with ``phi[:, p, q] = phi_qp(x[:, p])``.
        """
        n = check_int(n, "n", 2)
        curves = []
        for layer in self.layers:
            k, g = layer.spline_order, layer.grid_size
            lo, hi = layer.grid[:, k], layer.grid[:, k + g]
            t = torch.linspace(0, 1, n, dtype=lo.dtype, device=lo.device).unsqueeze(1)
            x = (lo + (hi - lo) * t).contiguous()
            curves.append({"x": x, "phi": layer.edge_activations(x)})
        return curves
