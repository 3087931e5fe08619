"""Multilayer perceptron, the baseline a KAN is compared against.

``MLP([2, 32, 32, 1], activation="tanh")`` is ``Dense(2, 32, tanh) -> Dense(32, 32, tanh) ->
Dense(32, 1)``: learnable linear maps with a fixed activation between them and none after the
last layer.  Weights start Glorot-normal (``N(0, 2 / (in + out))``), biases at zero.

Every activation is given with its first two derivatives in closed form, so a layer maps a
jet (value, gradient, Hessian diagonal) to a jet exactly: for ``z = W h + b`` and ``y = sigma(z)``

    grad y = sigma'(z) (W grad h),   hess_diag y = sigma''(z) (W grad h)^2 + sigma'(z) (W hess_diag h).
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .base import Jet, Model, check_dtype, check_int

__all__ = ["ACTIVATIONS", "DenseLayer", "MLP"]

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# Each entry maps z and an order (0, 1, 2) to (sigma(z), sigma'(z) or None, sigma''(z) or None).
_JetFn = Callable[[torch.Tensor, int], tuple]


def _tanh_jet(z, order):
    t = torch.tanh(z)
    d1 = 1 - t * t if order >= 1 else None
    d2 = -2 * t * d1 if order >= 2 else None
    return t, d1, d2


def _sin_jet(z, order):
    s = torch.sin(z)
    d1 = torch.cos(z) if order >= 1 else None
    d2 = -s if order >= 2 else None
    return s, d1, d2


def _sigmoid_jet(z, order):
    sg = torch.sigmoid(z)
    d1 = sg * (1 - sg) if order >= 1 else None
    d2 = d1 * (1 - 2 * sg) if order >= 2 else None
    return sg, d1, d2


def _silu_jet(z, order):
    # silu = z sigma(z); silu' = sigma (1 + z (1 - sigma)); silu'' = sigma (1 - sigma) (2 + z (1 - 2 sigma))
    sg = torch.sigmoid(z)
    y = z * sg
    d1 = sg * (1 + z * (1 - sg)) if order >= 1 else None
    d2 = sg * (1 - sg) * (2 + z * (1 - 2 * sg)) if order >= 2 else None
    return y, d1, d2


def _gelu_jet(z, order):
    # exact gelu = z Phi(z); gelu' = Phi + z phi; gelu'' = phi (2 - z^2)
    cdf = 0.5 * (1 + torch.erf(z * _SQRT_HALF))
    y = z * cdf
    d1 = d2 = None
    if order >= 1:
        pdf = _INV_SQRT_2PI * torch.exp(-0.5 * z * z)
        d1 = cdf + z * pdf
        if order >= 2:
            d2 = pdf * (2 - z * z)
    return y, d1, d2


#: name -> (forward function, jet function) of every supported activation
ACTIVATIONS: dict[str, tuple[Callable[[torch.Tensor], torch.Tensor], _JetFn]] = {
    "tanh": (torch.tanh, _tanh_jet),
    "sin": (torch.sin, _sin_jet),
    "silu": (F.silu, _silu_jet),
    "gelu": (F.gelu, _gelu_jet),
    "sigmoid": (torch.sigmoid, _sigmoid_jet),
}


def _check_activation(activation, allow_none: bool) -> str | None:
    if activation is None and allow_none:
        return None
    if not isinstance(activation, str):
        raise TypeError(f"activation must be one of {sorted(ACTIVATIONS)}"
                        f"{' or None' if allow_none else ''}, got {activation!r}")
    name = activation.lower()
    if name not in ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(ACTIVATIONS)}, got {activation!r}")
    return name


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
        return ACTIVATIONS[self.activation][0](z)

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
            y, d1, d2 = ACTIVATIONS[self.activation][1](z, order)
            grad = hess = None
            if order >= 1:
                grad = d1 * gz
            if order >= 2:
                hess = d2 * (gz * gz) if hz is None else torch.addcmul(d1 * hz, d2, gz * gz)
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
