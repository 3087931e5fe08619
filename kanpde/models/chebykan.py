"""Chebyshev Kolmogorov–Arnold networks (ChebyKAN).

Like the B-spline KAN, every edge ``p -> q`` of a layer carries its own learnable univariate
function and the nodes only sum.  Here the edge function is a Chebyshev series of the input
squashed into ``(-1, 1)``:

    phi_pq(x) = sum_{n=1}^{degree} c_pqn T_n(tanh x)

and a layer computes ``out_q = b_q + sum_p phi_pq(h_p)``.  The constant terms ``c_pq0 T_0`` of
all edges entering a node add up to one number, so they are collected into the node bias ``b_q``
(``bias=True``) instead of being stored ``in_features`` times; the function class is exactly
that of ``sum_{n=0}^{degree}`` per edge.  ``tanh`` keeps every input inside the domain of the
polynomials (no grid to update) and keeps ``phi``, ``phi'`` and ``phi''`` bounded for inputs
of any size.

Chebyshev polynomials and their first two derivatives are evaluated by the three-term
recurrences (never through ``cos(n arccos s)``, whose derivatives blow up at ``s = +-1``).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from .activations import ACTIVATIONS
from .base import Jet, Model, check_dtype, check_int

__all__ = ["chebyshev_basis", "ChebyKANLayer", "ChebyKAN"]


def chebyshev_basis(s: torch.Tensor, degree: int, order: int = 0) -> tuple[torch.Tensor, ...]:
    """Chebyshev polynomials of the first kind and their derivatives, by recurrence.

    With ``T_0 = 1``, ``T_1 = s`` and ``T_{n+1} = 2 s T_n - T_{n-1}``, differentiating gives
    ``T'_{n+1} = 2 T_n + 2 s T'_n - T'_{n-1}`` and ``T''_{n+1} = 4 T'_n + 2 s T''_n - T''_{n-1}``.
    Built from plain tensor operations, so the result is differentiable in ``s`` to any order.

    Args:
        s: points, any shape ``(...)``; the polynomials are defined everywhere but are meant
            for ``s`` in ``[-1, 1]``.
        degree: highest degree ``D >= 0``.
        order: 0 returns ``(T,)``, 1 returns ``(T, T')``, 2 returns ``(T, T', T'')``.

    Returns:
        ``1 + order`` tensors of shape ``(..., D + 1)``; entry ``[..., n]`` is the n-th
        polynomial (or its derivative with respect to ``s``) at ``s``.
    """
    degree = check_int(degree, "degree", 0)
    if order not in (0, 1, 2):
        raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
    if not isinstance(s, torch.Tensor) or not torch.is_floating_point(s):
        raise TypeError(f"s must be a floating-point torch.Tensor, got "
                        f"{s.dtype if isinstance(s, torch.Tensor) else type(s).__name__}")
    one = torch.ones_like(s)
    zero = torch.zeros_like(s)
    T = [one, s]
    dT = [zero, one]
    d2T = [zero, zero]
    two_s = 2 * s
    for n in range(1, degree):
        T.append(two_s * T[n] - T[n - 1])
        if order >= 1:
            dT.append(2 * T[n] + two_s * dT[n] - dT[n - 1])
        if order >= 2:
            d2T.append(4 * dT[n] + two_s * d2T[n] - d2T[n - 1])
    k = degree + 1
    out = [torch.stack(T[:k], dim=-1)]
    if order >= 1:
        out.append(torch.stack(dT[:k], dim=-1))
    if order >= 2:
        out.append(torch.stack(d2T[:k], dim=-1))
    return tuple(out)


class ChebyKANLayer(nn.Module):
    """One ChebyKAN layer: ``out_q = b_q + sum_p sum_{n=1}^{D} c_pqn T_n(tanh h_p)``.

    Parameters:
        coef: ``(in_features, out_features, degree)``; ``coef[p, q, n-1]`` is ``c_pqn``.
        bias: ``(out_features,)`` or ``None`` (stands for the ``T_0`` terms, see module doc).

    ``reset_parameters`` draws ``c_pqn ~ N(0, std_n^2)`` with ``std_n = k / n^2`` and
    ``k^2 = 1 / (in_features * sum_n n^-4)`` (smooth edge functions whose derivatives start
    small; an output starts with variance about ``1/2``) and zeroes the bias.
    """

    def __init__(self, in_features: int, out_features: int, degree: int = 8, bias: bool = True,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        self.degree = check_int(degree, "degree", 1)
        check_dtype(dtype)
        kw = {"dtype": dtype, "device": device}
        self.coef = nn.Parameter(torch.empty(self.in_features, self.out_features, self.degree, **kw))
        if bias:
            self.bias = nn.Parameter(torch.empty(self.out_features, **kw))
        else:
            self.register_parameter("bias", None)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Spectrally decaying coefficients, std_n proportional to 1/n^2: the edge functions
        # start smooth, so every mode contributes O(1) to phi'' and a PINN residual starts
        # O(1).  Equal variances for all n make the initial Laplacian ~D^(3/2) times larger
        # (about 200 for [2, 10, 1], D = 8) and trained markedly worse in a Poisson test.
        # Normalised so that sum_p sum_n std_n^2 = 1, i.e. Var(out_q) ~ E[T_n^2] ~ 1/2.
        n = torch.arange(1, self.degree + 1, dtype=self.coef.dtype, device=self.coef.device)
        w = n ** -2.0
        std = w / torch.sqrt(self.in_features * (w * w).sum())
        with torch.no_grad():
            self.coef.normal_()
            self.coef.mul_(std)
            if self.bias is not None:
                self.bias.zero_()

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"degree={self.degree}, bias={self.bias is not None}")

    def _coef_matrix(self) -> torch.Tensor:
        """``coef`` as a ``(in_features * degree, out_features)`` matrix, rows ordered (p, n)."""
        return self.coef.permute(0, 2, 1).reshape(self.in_features * self.degree, self.out_features)

    def _add_bias(self, y: torch.Tensor) -> torch.Tensor:
        return y if self.bias is None else y + self.bias

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` ``(N, in_features)`` -> ``(N, out_features)``."""
        (T,) = chebyshev_basis(torch.tanh(h), self.degree)
        feats = T[..., 1:].reshape(h.shape[0], self.in_features * self.degree)  # (N, in * degree)
        return self._add_bias(feats @ self._coef_matrix())

    def _basis_in_x(self, h: torch.Tensor, order: int) -> tuple[torch.Tensor, ...]:
        """``T_n(tanh h)`` and its first ``order`` derivatives with respect to ``h`` (chain rule
        through ``s = tanh h``: ``s' = 1 - s^2``, ``s'' = -2 s s'``), ``n = 1..degree``.

        Returns ``(basis, s1, s2)``: ``basis`` lists ``T``, ``dT/ds``, ``d2T/ds2`` up to
        ``order``, each ``(N, in, degree)``; ``s1 = ds/dh`` and ``s2 = d2s/dh2`` are
        ``(N, in)`` or ``None`` when ``order`` does not need them.
        """
        ds = ACTIVATIONS["tanh"].derivatives(h, order) + [None] * (2 - order)
        basis = [b[..., 1:] for b in chebyshev_basis(ds[0], self.degree, order)]
        return basis, ds[1], ds[2]

    # Derivative tensors are handled "direction-major": the Jet's (N, m, d) grad is used as its
    # (d, N, m) permutation, which this module keeps contiguous, so that broadcasts run over
    # contiguous memory (the (N, m, d) layout is several times slower).

    def forward_jet(self, jet: Jet) -> Jet:
        """Propagate a jet through the layer in closed form.

        With ``s_p = tanh h_p`` and ``out_q = b_q + sum_{p,n} c_pqn T_n(s_p)``, the chain rule
        gives, for every input direction ``j`` (``g = jet.grad``, ``hd = jet.hess_diag``):

            ds_pj  = s'(h_p) g_pj,   d2s_pj = s''(h_p) g_pj^2 + s'(h_p) hd_pj
            grad_qj = sum_p sum_n c_pqn T_n'(s_p) ds_pj
            hess_qj = sum_p sum_n c_pqn (T_n''(s_p) ds_pj^2 + T_n'(s_p) d2s_pj)

        Two equivalent contraction orders are used, whichever moves less memory: for narrow
        outputs, sum over ``n`` first (the edge derivatives ``phi_pq'``, ``phi_pq''`` as
        functions of ``s``), then over ``p``; for wide outputs, form the features
        ``T_n' ds``, ``T_n'' ds^2 + T_n' d2s`` and contract ``(p, n)`` in one matrix product.

        Args:
            jet: ``value`` ``(N, in)``, ``grad``/``hess_diag`` ``(N, in, d)`` or ``None``.

        Returns:
            Jet with ``value`` ``(N, out)`` and ``grad``/``hess_diag`` ``(N, out, d)`` to the
            same order as the input jet.
        """
        if jet.order == 0:
            return Jet(self.forward(jet.value))
        d = jet.grad.shape[-1]
        # element counts of the temporaries: ~(3 + 3d) N p q per edge, ~(5d - 2) N p D per feature
        if 3 * (1 + d) * self.out_features < (5 * d - 2) * self.degree:
            return self._jet_by_edges(jet)
        return self._jet_by_features(jet)

    def _jet_by_edges(self, jet: Jet) -> Jet:
        order = jet.order
        basis, s1, s2 = self._basis_in_x(jet.value.t().contiguous(), order)  # (in, N, D), (in, N)
        # E[r, p, :, q] = sum_n c_pqn d^r T_n / ds^r (s_p): (1 + order, in, N, out)
        E = torch.matmul(torch.stack(basis, dim=0), self.coef.transpose(1, 2))
        value = self._add_bias(E[0].sum(0))
        g = jet.grad.permute(2, 1, 0).contiguous()  # (d, in, N)
        ds = s1 * g
        grad = (ds.unsqueeze(-1) * E[1]).sum(1)  # (d, N, out)
        hess = None
        if order >= 2:
            d2s = torch.addcmul(s1 * jet.hess_diag.permute(2, 1, 0).contiguous(), s2, g * g)
            hess = torch.addcmul(d2s.unsqueeze(-1) * E[1], (ds * ds).unsqueeze(-1), E[2]).sum(1)
            hess = hess.permute(1, 2, 0)
        return Jet(value, grad.permute(1, 2, 0), hess)

    def _jet_by_features(self, jet: Jet) -> Jet:
        h = jet.value
        order = jet.order
        n = h.shape[0]
        basis, s1, s2 = self._basis_in_x(h, order)  # (N, in, D), (N, in)
        g = jet.grad.permute(2, 0, 1)  # (d, N, in)
        d = g.shape[0]
        ds = s1 * g
        feats = [basis[0].unsqueeze(0), ds.unsqueeze(-1) * basis[1]]  # (1 | d, N, in, D)
        if order >= 2:
            d2s = torch.addcmul(s1 * jet.hess_diag.permute(2, 0, 1), s2, g * g)
            feats.append(torch.addcmul(d2s.unsqueeze(-1) * basis[1], (ds * ds).unsqueeze(-1), basis[2]))
        rows = 1 + order * d
        F = torch.cat(feats, dim=0).reshape(rows * n, self.in_features * self.degree)
        out = (F @ self._coef_matrix()).reshape(rows, n, self.out_features)
        value = self._add_bias(out[0])
        grad = out[1:1 + d].permute(1, 2, 0)
        hess = out[1 + d:].permute(1, 2, 0) if order >= 2 else None
        return Jet(value, grad, hess)

    def _edge_jets_dmajor(self, h_t: torch.Tensor, order: int) -> torch.Tensor:
        """Edge functions and derivatives for inputs given as ``h_t`` ``(in, N)``;
        returns ``(1 + order, in, N, out)``."""
        basis, s1, s2 = self._basis_in_x(h_t, order)  # (in, N, D), (in, N)
        feats = [basis[0]]
        if order >= 1:
            feats.append(s1.unsqueeze(-1) * basis[1])
        if order >= 2:
            feats.append(torch.addcmul(s2.unsqueeze(-1) * basis[1], (s1 * s1).unsqueeze(-1), basis[2]))
        X = torch.stack(feats, dim=0)  # (1 + order, in, N, D)
        return torch.matmul(X, self.coef.transpose(1, 2))  # (in, D, out) broadcast over rows

    def edge_jets(self, h: torch.Tensor, order: int = 2) -> torch.Tensor:
        """Every edge function and its derivatives at ``h``.

        Args:
            h: ``(N, in_features)``.
            order: 0, 1 or 2.

        Returns:
            ``(N, 1 + order, in, out)``: ``[:, 0, p, q] = phi_pq(h_p)``, ``[:, 1] = phi_pq'``,
            ``[:, 2] = phi_pq''`` (derivatives with respect to the edge input; no bias).
        """
        if order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
        return self._edge_jets_dmajor(h.t().contiguous(), order).permute(2, 0, 1, 3)

    def forward_jet_input(self, x: torch.Tensor, order: int = 2) -> Jet:
        """``forward_jet(Jet.seed(x, order))``, cheaper: for the identity seed only the edge
        ``x_j -> q`` depends on ``x_j``, so ``d out_q / d x_j = phi_jq'(x_j)`` and
        ``d^2 out_q / d x_j^2 = phi_jq''(x_j)``.

        Args:
            x: ``(N, in_features)``, the network input.
        Returns:
            Jet with ``value`` ``(N, out)`` and ``grad``/``hess_diag`` ``(N, out, in)``.
        """
        if order == 0:
            return Jet(self.forward(x))
        E = self._edge_jets_dmajor(x.t().contiguous(), order)  # (1 + order, in, N, out)
        value = self._add_bias(E[0].sum(0))
        grad = E[1].permute(1, 2, 0)
        hess = E[2].permute(1, 2, 0) if order >= 2 else None
        return Jet(value, grad, hess)


class ChebyKAN(Model):
    """Chebyshev Kolmogorov–Arnold network: a stack of :class:`ChebyKANLayer`.

    Args:
        widths: layer widths ``[in, hidden..., out]``, e.g. ``[2, 10, 1]`` (copied, never mutated).
        degree: highest Chebyshev degree ``D >= 1`` of every edge function.
        bias: give every node a learnable constant (the edges' ``T_0`` terms, see module doc).
        dtype, device: of the parameters (``None``: torch defaults).

    ``forward(x)``: ``(N, widths[0])`` -> ``(N, widths[-1])``.  Trainable parameters:
    ``sum_l in_l * out_l * degree`` (+ ``sum_l out_l`` with bias).
    """

    def __init__(self, widths: Sequence[int], degree: int = 8, bias: bool = True,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None):
        super().__init__(widths)
        self.degree = check_int(degree, "degree", 1)
        check_dtype(dtype)
        self.bias = bool(bias)
        self.layers = nn.ModuleList(
            ChebyKANLayer(a, b, self.degree, bias=self.bias, dtype=dtype, device=device)
            for a, b in zip(self.widths[:-1], self.widths[1:])
        )

    def reset_parameters(self) -> None:
        for layer in self.layers:
            layer.reset_parameters()

    def extra_repr(self) -> str:
        return f"widths={self.widths}, degree={self.degree}, bias={self.bias}"

    @torch.no_grad()
    def activation_curves(self, n: int = 200, x_range: tuple[float, float] = (-3.0, 3.0)) -> list[dict]:
        """Sample every edge function on a uniform grid, for plotting.

        Returns one dict per layer with ``"x"`` ``(n, in)`` (the same grid for each input) and
        ``"phi"`` ``(n, in, out)``; ``x_range`` is the sampled interval of edge inputs.
        """
        n = check_int(n, "n", 1)
        curves = []
        for layer in self.layers:
            p = layer.coef
            t = torch.linspace(x_range[0], x_range[1], n, dtype=p.dtype, device=p.device)
            x = t.unsqueeze(1).expand(n, layer.in_features).contiguous()
            curves.append({"x": x, "phi": layer.edge_jets(x, order=0)[:, 0]})
        return curves
