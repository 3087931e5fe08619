"""Activation functions with their derivatives in closed form: one table for every model.

A KAN's base branch ``b(x)`` (silu, tanh, identity), a ChebyKAN's squashing ``tanh`` and an
MLP's activation all come from :data:`ACTIVATIONS`.  Each entry gives the function and
``derivatives(z, order)``, the list ``[f(z), f'(z), .., f^(order)(z)]`` computed without an
autograd graph of its own (the formulas are plain tensor expressions, so they stay
differentiable where a caller needs that).  Forward derivative propagation needs orders up to
2; nested autograd through a KAN layer asks for higher ones (a Laplacian's backward pass needs
the third), so every entry serves any order:

- silu ``z sigma(z)``: closed forms up to order 3, then ``silu^(n) = z sigma^(n) + n sigma^(n-1)``
  with the derivatives of ``sigma`` as polynomials in ``sigma`` (``sigma' = sigma (1 - sigma)``);
- tanh: closed forms up to order 3, then polynomials in ``tanh`` (``tanh' = 1 - tanh^2``);
- sigmoid: polynomials in ``sigma``; sin: the cycle sin, cos, -sin, -cos;
- gelu (exact, ``z Phi(z)``): ``gelu^(n) = z Phi^(n) + n Phi^(n-1)`` with
  ``Phi^(m+1) = (-1)^m He_m(z) phi(z)`` (probabilists' Hermite polynomials);
- identity: ``z``, 1, 0, ...
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

__all__ = ["Activation", "ACTIVATIONS", "activation", "poly_derivatives"]

_SQRT_HALF = 1.0 / math.sqrt(2.0)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@dataclass(frozen=True)
class Activation:
    """A scalar activation: ``function(z)`` and ``derivatives(z, order)`` -> ``[f, f', ..]``
    (``order + 1`` tensors shaped like ``z``)."""

    name: str
    function: Callable[[torch.Tensor], torch.Tensor]
    derivatives: Callable[[torch.Tensor, int], list]


def poly_derivatives(poly: Sequence[float], dvar: Sequence[float], order: int) -> list[list[float]]:
    """Coefficients (ascending powers of ``v``) of ``d^n/dz^n P(v(z))`` for ``n <= order`` when
    ``dv/dz = dvar(v)`` is itself a polynomial in ``v`` (chain rule, repeatedly)."""
    out = [list(poly)]
    for _ in range(order):
        p = out[-1]
        dp = [i * c for i, c in enumerate(p)][1:] or [0.0]
        prod = [0.0] * (len(dp) + len(dvar) - 1)
        for i, a in enumerate(dp):
            for j, b in enumerate(dvar):
                prod[i + j] += a * b
        out.append(prod)
    return out


def _horner(coef: Sequence[float], v: torch.Tensor) -> torch.Tensor:
    acc = torch.full_like(v, coef[-1])
    for c in reversed(coef[:-1]):
        acc = acc.mul_(v).add_(c)
    return acc


#: d sigma / dz = sigma - sigma^2 and d tanh / dz = 1 - tanh^2, as polynomials in themselves
_SIGMOID_SLOPE = (0.0, 1.0, -1.0)
_TANH_SLOPE = (1.0, 0.0, -1.0)


def _silu(z: torch.Tensor, order: int) -> list[torch.Tensor]:
    if order == 0:
        return [F.silu(z)]
    sg = torch.sigmoid(z)
    a = torch.addcmul(sg, sg, sg, value=-1.0)  # sigma' = sigma (1 - sigma)
    out = [F.silu(z), torch.addcmul(sg, z, a)]  # silu, silu' = sigma + z sigma'
    if order >= 2:
        zw = torch.addcmul(z, z, sg, value=-2.0)  # z w, w = 1 - 2 sigma = sigma'' / sigma'
        out.append((zw + 2.0).mul_(a))  # silu'' = sigma' (2 + z w)
        if order >= 3:
            w = torch.mul(sg, -2.0).add_(1.0)
            out.append((zw + 3.0).mul_(w).addcmul_(z, a, value=-2.0).mul_(a))  # sigma' (w (3 + z w) - 2 z sigma')
    if order >= 4:
        sig = poly_derivatives([0.0, 1.0], _SIGMOID_SLOPE, order)
        out += [z * _horner(sig[n], sg) + n * _horner(sig[n - 1], sg) for n in range(4, order + 1)]
    return out[:order + 1]


def _tanh(z: torch.Tensor, order: int) -> list[torch.Tensor]:
    t = torch.tanh(z)
    if order == 0:
        return [t]
    d1 = 1 - t * t
    out = [t, d1]
    if order >= 2:
        out.append(-2 * t * d1)
        if order >= 3:
            out.append(-2 * d1 * (d1 - 2 * t * t))
    if order >= 4:
        th = poly_derivatives([0.0, 1.0], _TANH_SLOPE, order)
        out += [_horner(th[n], t) for n in range(4, order + 1)]
    return out[:order + 1]


def _identity_function(z: torch.Tensor) -> torch.Tensor:
    return z


def _identity(z: torch.Tensor, order: int) -> list[torch.Tensor]:
    out = [z, torch.ones_like(z)] + [torch.zeros_like(z) for _ in range(max(order - 1, 1))]
    return out[:order + 1]


def _sin(z: torch.Tensor, order: int) -> list[torch.Tensor]:
    s = torch.sin(z)
    if order == 0:
        return [s]
    c = torch.cos(z)
    cycle = (s, c, -s, -c)
    return [cycle[n % 4] for n in range(order + 1)]


def _sigmoid(z: torch.Tensor, order: int) -> list[torch.Tensor]:
    sg = torch.sigmoid(z)
    out = [sg]
    if order >= 1:
        out.append(sg * (1 - sg))
        if order >= 2:
            out.append(out[1] * (1 - 2 * sg))
    if order >= 3:
        sig = poly_derivatives([0.0, 1.0], _SIGMOID_SLOPE, order)
        out += [_horner(sig[n], sg) for n in range(3, order + 1)]
    return out


def _gelu(z: torch.Tensor, order: int) -> list[torch.Tensor]:
    cdf = 0.5 * (1 + torch.erf(z * _SQRT_HALF))
    out = [z * cdf]
    if order >= 1:
        pdf = _INV_SQRT_2PI * torch.exp(-0.5 * z * z)
        out.append(cdf + z * pdf)
        if order >= 2:
            out.append(pdf * (2 - z * z))
        if order >= 3:
            # Phi^(m+1) = (-1)^m He_m(z) phi, He_{m+1} = z He_m - m He_{m-1}
            he = [torch.ones_like(z), z]
            for m in range(1, order - 1):
                he.append(z * he[m] - m * he[m - 1])

            def cdf_derivative(m: int) -> torch.Tensor:  # Phi^(m), m >= 1
                return (-1) ** (m - 1) * he[m - 1] * pdf

            out += [z * cdf_derivative(n) + n * cdf_derivative(n - 1) for n in range(3, order + 1)]
    return out


#: every activation a model can use, by name
ACTIVATIONS: dict[str, Activation] = {
    "silu": Activation("silu", F.silu, _silu),
    "tanh": Activation("tanh", torch.tanh, _tanh),
    "identity": Activation("identity", _identity_function, _identity),
    "sin": Activation("sin", torch.sin, _sin),
    "sigmoid": Activation("sigmoid", torch.sigmoid, _sigmoid),
    "gelu": Activation("gelu", F.gelu, _gelu),
}


def activation(name, allowed: Sequence[str], what: str = "activation") -> str:
    """``name`` lower-cased if it is one of ``allowed``; otherwise a ``TypeError``/``ValueError``
    naming ``what``, the value and the allowed names."""
    if not isinstance(name, str):
        raise TypeError(f"{what} must be one of {sorted(allowed)}, got {name!r}")
    if name.lower() not in allowed:
        raise ValueError(f"{what} must be one of {sorted(allowed)}, got {name!r}")
    return name.lower()
