"""Multilayer perceptron, the baseline a KAN is compared against.

``MLP([2, 32, 32, 1], activation="tanh")`` is ``Dense(2, 32, tanh) -> Dense(32, 32, tanh) ->
Dense(32, 1)``: learnable linear maps with a fixed activation between them and none after the
last layer.  Weights start Glorot-normal (``N(0, 2 / (in + out))``), biases at zero.

Every activation comes with its derivatives in closed form (:mod:`kanpde.models.activations`,
the table every model shares), so a layer maps a
jet (value, gradient, Hessian diagonal) to a jet exactly: for ``z = W h + b`` and ``y = sigma(z)``

    grad y = sigma'(z) (W grad h),   hess_diag y = sigma''(z) (W grad h)^2 + sigma'(z) (W hess_diag h).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .activations import ACTIVATIONS, activation
from .base import Jet, Model, check_dtype, check_int

__all__ = ["MLP_ACTIVATIONS", "DenseLayer", "MLP"]

#: the activations an MLP can use (formulas and derivatives: :mod:`kanpde.models.activations`)
MLP_ACTIVATIONS = ("tanh", "sin", "silu", "gelu", "sigmoid")


def _check_activation(name, allow_none: bool) -> str | None:
    if name is None and allow_none:
        return None
    what = "activation" + (" (or None)" if allow_none else "")
    return activation(name, MLP_ACTIVATIONS, what)


class DenseLayer(nn.Module):
    """``y = sigma(W h + b)``, or ``y = W h + b`` when ``activation`` is ``None``.

    Parameters:
        weight: ``(out_features, in_features)``, Glorot-normal at reset.
        bias: ``(out_features,)`` (zero at reset) or ``None``.
    """

    def __init__(self, in_features: int, out_features: int, activation: str | None = None,
                 bias: bool = True, dtype: torch.dtype | None = None,
                 device: torch.device | str | None = None):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        self.activation = _check_activation(activation, allow_none=True)
        check_dtype(dtype)
        kw = {"dtype": dtype, "device": device}
        self.weight = nn.Parameter(torch.empty(self.out_features, self.in_features, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_normal_(self.weight)
        if self.bias is not None:
            nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"activation={self.activation!r}, bias={self.bias is not None}")

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` ``(N, in_features)`` -> ``(N, out_features)``."""
        z = F.linear(h, self.weight, self.bias)
        if self.activation is None:
            return z
        return ACTIVATIONS[self.activation].function(z)

    # Derivative tensors are handled "direction-major": the Jet's (N, m, d) grad is used as its
    # (d, N, m) permutation, which this module keeps contiguous.  Then W applies to all d
    # directions in one matrix product and sigma'(z) broadcasts over the leading dim, so forward
    # and backward passes run over contiguous memory (the (N, m, d) layout is several times slower).

    def _activate(self, z: torch.Tensor, gz: torch.Tensor | None, hz: torch.Tensor | None,
                  order: int) -> Jet:
        """Jet of ``sigma`` given ``z`` ``(N, out)`` and direction-major ``gz``, ``hz``
        ``(d, N, out)`` (``hz = None`` means zero)."""
        if self.activation is None:
            y, grad, hess = z, gz, hz
        else:
            ds = ACTIVATIONS[self.activation].derivatives(z, order)
            y = ds[0]
            grad = hess = None
            if order >= 1:
                grad = ds[1] * gz
            if order >= 2:
                hess = ds[2] * (gz * gz) if hz is None else torch.addcmul(ds[1] * hz, ds[2], gz * gz)
        return Jet(y, _from_dmajor(grad), _from_dmajor(hess))

    def forward_jet(self, jet: Jet) -> Jet:
        """Propagate a jet in closed form.

        Args:
            jet: ``value`` ``(N, in)``, ``grad``/``hess_diag`` ``(N, in, d)`` or ``None``.
        Returns:
            Jet with ``value`` ``(N, out)`` and ``grad``/``hess_diag`` ``(N, out, d)`` to the
            same order as the input jet.
        """
        order = jet.order
        z = F.linear(jet.value, self.weight, self.bias)
        wt = self.weight.t()
        gz = torch.matmul(_to_dmajor(jet.grad), wt) if order >= 1 else None
        hz = torch.matmul(_to_dmajor(jet.hess_diag), wt) if order >= 2 else None
        return self._activate(z, gz, hz, order)

    def forward_jet_input(self, x: torch.Tensor, order: int = 2) -> Jet:
        """``forward_jet(Jet.seed(x, order))``, cheaper: with the identity seed the gradient of
        ``W x + b`` is ``W`` itself and its Hessian is zero.

        Args:
            x: ``(N, in_features)``, the network input.
        Returns:
            Jet with ``value`` ``(N, out)`` and ``grad``/``hess_diag`` ``(N, out, in)``.
        """
        z = F.linear(x, self.weight, self.bias)
        gz = hz = None
        if order >= 1:
            # direction-major gz[j, n, k] = W[k, j], kept as a (d, 1, out) tensor: the
            # activation's products broadcast it over N (gz * gz costs d * out operations)
            gz = self.weight.t().contiguous().unsqueeze(1)
            if self.activation is None:
                gz = gz.expand(-1, x.shape[0], -1).contiguous()
                hz = torch.zeros_like(gz) if order >= 2 else None
        return self._activate(z, gz, hz, order)


def _to_dmajor(t: torch.Tensor) -> torch.Tensor:
    """``(N, m, d)`` -> ``(d, N, m)`` view."""
    return t.permute(2, 0, 1)


def _from_dmajor(t: torch.Tensor | None) -> torch.Tensor | None:
    """``(d, N, m)`` -> ``(N, m, d)`` view."""
    return None if t is None else t.permute(1, 2, 0)


class MLP(Model):
    """Fully connected network ``Dense -> sigma -> ... -> Dense`` (no activation at the end).

    Args:
        widths: layer widths ``[in, hidden..., out]``, e.g. ``[2, 32, 32, 1]`` (copied, never
            mutated).
        activation: one of ``"tanh"``, ``"sin"``, ``"silu"``, ``"gelu"`` (exact, erf-based),
            ``"sigmoid"``.
        bias: learnable biases in every layer.
        dtype, device: of the parameters (``None``: torch defaults).

    ``forward(x)``: ``(N, widths[0])`` -> ``(N, widths[-1])``.  Trainable parameters:
    ``sum_l in_l * out_l`` (+ ``sum_l out_l`` with bias).
    """

    # dense layers carry every input axis's jet channels whether the residual uses them or not
    autograd_for_partial_hessians = True

    def __init__(self, widths: Sequence[int], activation: str = "tanh", bias: bool = True,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None):
        super().__init__(widths)
        self.activation = _check_activation(activation, allow_none=False)
        check_dtype(dtype)
        self.bias = bool(bias)
        last = len(self.widths) - 2
        self.layers = nn.ModuleList(
            DenseLayer(a, b, None if i == last else self.activation, bias=self.bias,
                       dtype=dtype, device=device)
            for i, (a, b) in enumerate(zip(self.widths[:-1], self.widths[1:]))
        )

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def extra_repr(self) -> str:
        return f"widths={self.widths}, activation={self.activation!r}, bias={self.bias}"
