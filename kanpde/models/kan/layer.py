"""One KAN layer: a learnable univariate function on every edge, sums at the nodes.

Every edge ``p -> q`` of a :class:`KANLayer` carries (Liu et al. 2024, arXiv 2404.19756, eq. 2.10)

    phi_qp(x) = w_b[q, p] * b(x) + w_s[q, p] * sum_i c[q, p, i] B_i(x),      b = silu,

and node ``q`` sums its incoming edges (plus an optional bias).  ``B_i`` are the degree-``k``
B-splines on the layer's grid (:mod:`~kanpde.models.kan.bspline`).  The layer works in
piecewise-polynomial form: on interval ``j`` of input ``p``

    sum_i c[q, p, i] B_i(x) = sum_{m=0}^{k} A[p, j, m, q] u^m,   u = (x - t_j) / (t_{j+1} - t_j),

with the coefficient table ``A[p, j] = M[p, j]^T c[q, p, j:j+k+1]`` (:meth:`KANLayer.table`;
``M`` the B-spline pieces of the interval).  A forward pass needs, per input value, only its
interval, ``u`` and its ``k + 1`` powers, against ``k + 1`` table rows: the cost per point does
not depend on the grid size ``G``.

Where the work happens (the choice is made in :mod:`~kanpde.models.kan.dispatch`):

- :meth:`KANLayer.forward`: the edge-sums family of :mod:`~kanpde.models.kan.nested`
  (edge-by-edge layers, and wide ones where the compiled sums kernels serve), else the row
  products of :mod:`~kanpde.models.kan.rows`; both differentiable to any order (nested
  autograd for Laplacians, then a backward pass to the parameters);
- :meth:`KANLayer.forward_jet`: value, gradient and Hessian diagonal propagated forward
  (:mod:`~kanpde.models.kan.jets`);
- :meth:`KANLayer.update_grid` and :meth:`KANLayer.refine`: :mod:`~kanpde.models.kan.grid`.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from ..activations import ACTIVATIONS, activation
from ..base import Jet, check_dtype, check_input, check_int, check_real
from . import compiled, dispatch, grid as grid_fit
from .bspline import KnotIntervals, is_uniform, locate_planes, locate_points, uniform_knots
from .graph import as_planes
from .jets import edge_jet, power_derivatives, row_jet
from .located import LocatedInputs
from .nested import SumsForward
from .planar import EdgeSpline
from .rows import SpMM

__all__ = ["KANLayer", "BASE_ACTIVATIONS", "check_grid_range"]

#: base activations ``b`` of a KAN edge; ``"none"`` has no base branch at all (pure spline
#: edges, no ``base_weight`` parameter)
BASE_ACTIVATIONS = ("silu", "tanh", "identity", "none")


def check_grid_range(grid_range) -> tuple[float, float]:
    """``grid_range`` as ``(lo, hi)`` floats with ``lo < hi``, or a clear error."""
    try:
        lo, hi = (float(v) for v in grid_range)
    except (TypeError, ValueError):
        raise TypeError(f"grid_range must be a pair of numbers (lo, hi) with lo < hi, got {grid_range!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ValueError(f"grid_range must be a pair of finite numbers (lo, hi) with lo < hi, got {grid_range!r}")
    return lo, hi


class KANLayer(nn.Module):
    """One KAN layer with ``in_features * out_features`` learnable edge functions.

    ``out_q = bias_q + sum_p [ w_b[q, p] b(h_p) + w_s[q, p] sum_i c[q, p, i] B_i(h_p) ]``.

    Args:
        in_features, out_features: number of input and output nodes.
        grid_size: number of knot intervals ``G >= 1`` spanning ``grid_range``.
        spline_order: B-spline degree ``k >= 1`` (3: cubic).
        grid_range: ``(lo, hi)`` initial range of the knots (each input gets its own knots
            after :meth:`update_grid`).
        base_activation: ``"silu"`` (paper), ``"tanh"``, ``"identity"`` or ``"none"`` (no base
            branch and no ``base_weight``).
        grid_eps: weight of the uniform grid in :meth:`update_grid` (0: pure sample quantiles,
            1: uniform over the samples' range).
        bias: learnable constant per output node.
        noise_scale: spline coefficients start uniform in ``noise_scale / G * [-1/2, 1/2]``.
        dtype, device: of parameters and grid.

    Parameters and buffers:
        ``spline_weight`` (``c``): ``(out, in, G + k)``; ``spline_scaler`` (``w_s``):
        ``(out, in)``, starts at 1; ``base_weight`` (``w_b``): ``(out, in)``, Xavier-uniform;
        ``bias``: ``(out,)``, starts at 0; buffer ``grid``: ``(in, G + 2k + 1)`` knots per input.
    """

    def __init__(self, in_features: int, out_features: int, grid_size: int = 5, spline_order: int = 3,
                 grid_range: Sequence[float] = (-1.0, 1.0), base_activation: str = "silu",
                 grid_eps: float = 0.02, bias: bool = True, noise_scale: float = 0.1,
                 dtype: torch.dtype | None = None, device: torch.device | str | None = None):
        super().__init__()
        self.in_features = check_int(in_features, "in_features", 1)
        self.out_features = check_int(out_features, "out_features", 1)
        self.grid_size = check_int(grid_size, "grid_size", 1)
        self.spline_order = check_int(spline_order, "spline_order", 1)
        self.grid_range = check_grid_range(grid_range)
        self.base_activation = activation(base_activation, BASE_ACTIVATIONS, "base_activation")
        self.grid_eps = check_real(grid_eps, "grid_eps", 0.0, 1.0)
        self.noise_scale = check_real(noise_scale, "noise_scale", 0.0)
        check_dtype(dtype)
        kw = {"dtype": dtype if dtype is not None else torch.get_default_dtype(), "device": device}
        k, g, i, o = self.spline_order, self.grid_size, self.in_features, self.out_features
        knots = uniform_knots(*self.grid_range, g, k, **kw)
        self.register_buffer("grid", knots.expand(i, -1).contiguous())
        self.spline_weight = nn.Parameter(torch.empty(o, i, g + k, **kw))
        self.spline_scaler = nn.Parameter(torch.empty(o, i, **kw))
        if self.base_activation != "none":
            self.base_weight = nn.Parameter(torch.empty(o, i, **kw))
            self._base = ACTIVATIONS[self.base_activation]
        else:
            self.register_parameter("base_weight", None)
            self._base = None
        if bias:
            self.bias = nn.Parameter(torch.empty(o, **kw))
        else:
            self.register_parameter("bias", None)
        self._knots: KnotIntervals | None = None
        self.reset_parameters()

    # ------------------------------------------------------------------ set-up
    def _apply(self, fn, *args, **kwargs):
        # Converting to a more precise dtype (a float32 model trained in float64): a grid that was
        # uniform is rebuilt exactly uniform in the new dtype from its converted ends, instead of
        # keeping the float32-rounded knots, which are not uniform at float64 precision and would
        # send every forward pass down the slower non-uniform path.  The float32 forward pass
        # already used exactly this grid (it treats knots uniform to within rounding as uniform).
        before = self.grid
        out = super()._apply(fn, *args, **kwargs)
        old, new = before.dtype, self.grid.dtype
        k, g = self.spline_order, self.grid_size
        if (old.is_floating_point and new.is_floating_point and torch.finfo(new).eps < torch.finfo(old).eps
                and is_uniform(before.detach(), k, g)):
            with torch.no_grad():
                ends = self.grid[:, [k, k + g]].double().cpu()
                knots = [uniform_knots(float(lo), float(hi), g, k, dtype=new, device=self.grid.device)
                         for lo, hi in ends.tolist()]
                self.grid.copy_(torch.stack(knots))
        self._knots = None
        return out

    @torch.no_grad()
    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Re-draw the parameters: ``c ~ U(-1/2, 1/2) * noise_scale / G``, ``w_s = 1``,
        ``w_b`` Xavier-uniform ``U(-a, a)``, ``a = sqrt(6 / (in + out))``, bias 0.  Draws on the
        CPU (with ``generator`` if given) so a seed gives the same network on every device."""
        def draw(p: torch.Tensor, scale: float) -> None:
            r = torch.rand(p.shape, generator=generator, dtype=torch.float64)
            p.copy_((r - 0.5) * (2 * scale))

        draw(self.spline_weight, 0.5 * self.noise_scale / self.grid_size)
        self.spline_scaler.fill_(1.0)
        if self.base_weight is not None:
            draw(self.base_weight, math.sqrt(6.0 / (self.in_features + self.out_features)))
        if self.bias is not None:
            self.bias.zero_()

    def extra_repr(self) -> str:
        return (f"in_features={self.in_features}, out_features={self.out_features}, "
                f"grid_size={self.grid_size}, spline_order={self.spline_order}, "
                f"base_activation={self.base_activation!r}, bias={self.bias is not None}, "
                f"grid={'uniform' if self.grid_is_uniform else 'adapted'}")

    @property
    def n_basis(self) -> int:
        """Number of B-splines per edge, ``G + k``."""
        return self.grid_size + self.spline_order

    @property
    def grid_is_uniform(self) -> bool:
        """Whether every input's knots are equally spaced (to round-off); uniform grids take
        the faster path (an interval is a division, not a search)."""
        return self.knot_intervals().uniform

    def prepare_kernels(self, device: torch.device | str) -> None:
        """Load the compiled CPU kernels now (building them on a machine's first use, about a
        minute) if the layer will run on the CPU, so that a build is not counted as training
        time; nothing on other devices (see :func:`kanpde.models.prepare_kernels`)."""
        if torch.device(device).type == "cpu":
            compiled.load_kernels()

    # ------------------------------------------------------------------ grid geometry
    def knot_intervals(self) -> KnotIntervals:
        """The grid's :class:`~kanpde.models.kan.bspline.KnotIntervals` (cached per grid
        tensor version)."""
        knots = self._knots
        if knots is None or knots.key != KnotIntervals.key_of(self.grid):
            knots = self._knots = KnotIntervals.of(self.grid, self.spline_order, self.grid_size)
        return knots

    def locate_points(self, h: torch.Tensor) -> tuple[LocatedInputs, torch.Tensor]:
        """Where the inputs ``h`` ``(N, in)`` lie on the grid, point-major, and ``u`` with its
        graph to ``h`` (see :func:`~kanpde.models.kan.bspline.locate_points`)."""
        return locate_points(h, self.knot_intervals(), self.grid_size, self.spline_order, self.base_activation)

    def locate_planes(self, h: torch.Tensor) -> LocatedInputs:
        """Where the inputs ``h`` ``(N, in)`` lie on the grid, input-major, without graph (see
        :func:`~kanpde.models.kan.bspline.locate_planes`)."""
        return locate_planes(h, self.knot_intervals(), self.grid_size, self.spline_order, self.base_activation)

    def _powers(self, u: torch.Tensor) -> list[torch.Tensor]:
        p = [torch.ones_like(u), u]
        for _ in range(2, self.spline_order + 1):
            p.append(p[-1] * u)
        return p

    def _edgewise(self) -> bool:
        return dispatch.edgewise(self.in_features, self.out_features, self.spline_order)

    def table(self, coef: torch.Tensor | None = None) -> torch.Tensor:
        """Piecewise-polynomial coefficient table ``A``: ``(in * G * (k + 1), out)``; row
        ``(p * G + j) * (k + 1) + m`` holds the ``u^m`` coefficients of the ``out`` edge splines
        of input ``p`` on interval ``j``.  ``coef``: ``(out, in, G + k)`` (default: the scaled
        spline weights ``w_s * c``); differentiable in ``coef``."""
        if coef is None:
            coef = self.spline_weight * self.spline_scaler.unsqueeze(-1)
        k1, o = self.spline_order + 1, self.out_features
        win = coef.unfold(2, k1, 1).permute(1, 2, 3, 0)  # (in, G, k+1, out): win[p, j, r, q] = c[q, p, j+r]
        # a[p, j, m, q] = sum_r M[(p, j,) r, m] win[p, j, r, q], made in the table's own layout,
        # so that its gradient (one per nested-autograd node) needs no copy back to another one
        a = torch.matmul(self.knot_intervals().pieces.to(coef.dtype).transpose(-1, -2), win)  # (in, G, k+1, out)
        return a.reshape(-1, o)

    def _check_h(self, h: torch.Tensor, what: str = "KANLayer") -> None:
        check_input(h, self.in_features, what)
        if h.dtype != self.spline_weight.dtype:
            raise TypeError(f"{what} has {self.spline_weight.dtype} parameters but got a {h.dtype} input; "
                            f"convert one of them (e.g. model.to(torch.float64))")

    def _base_derivatives(self, h: torch.Tensor, order: int) -> list[torch.Tensor]:
        """``b(h), .., b^(order)(h)`` of the base activation (``None`` entries: no base branch)."""
        return self._base.derivatives(h, order) if self._base is not None else [None] * (order + 1)

    # ------------------------------------------------------------------ basis (inspection, fitting)
    def basis(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The ``k + 1`` B-splines that are nonzero at each input value.

        ``h``: ``(N, in)``.  Returns ``(first, values)``: ``first`` ``(N, in)`` int64, the index
        ``j`` of the first nonzero B-spline (``B_j .. B_{j+k}``), and ``values`` ``(N, in, k + 1)``.
        Outside the grid range the end intervals' polynomials are continued.
        """
        self._check_h(h, "KANLayer.basis")
        knots = self.knot_intervals()
        loc, u = self.locate_points(h)
        j = loc.block - torch.arange(self.in_features, device=h.device) * self.grid_size
        powers = torch.stack(self._powers(u), -1)  # (N, in, k+1 powers)
        k1 = self.spline_order + 1
        if knots.uniform:
            values = powers @ knots.pieces.t()
        else:
            m = knots.pieces.reshape(-1, k1, k1).index_select(0, loc.block.reshape(-1))
            values = (m @ powers.reshape(-1, k1, 1)).view_as(powers)
        return j, values

    def basis_matrix(self, h: torch.Tensor) -> torch.Tensor:
        """All ``G + k`` B-splines at each input value, ``(N, in, G + k)`` (dense; for fitting
        and inspection, the forward pass never builds it)."""
        j, values = self.basis(h)
        out = values.new_zeros(*j.shape, self.n_basis)
        idx = j.unsqueeze(-1) + torch.arange(self.spline_order + 1, device=h.device)
        return out.scatter(-1, idx, values)

    # ------------------------------------------------------------------ evaluation
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """``h`` ``(N, in)`` -> ``(N, out)``."""
        self._check_h(h)
        n, o = h.shape[0], self.out_features
        table = self.table()
        if dispatch.forward_on_sums(self.in_features, o, self.spline_order, self.base_activation, h):
            # on planes, points innermost: (O, N) out, returned as an (N, O) view, which the next
            # layer reads back as planes without a copy
            out = SumsForward.apply(None, as_planes(h), table, self.base_weight, self.locate_planes(h), 0)
            if self.bias is not None:
                out = out + self.bias.unsqueeze(1)
            return out.t()
        loc, u = self.locate_points(h)
        vals = torch.stack(self._powers(u), -1).view(n, 1, self.in_features * (self.spline_order + 1))
        out = SpMM.apply(vals, table, loc.row_pattern(o)).view(n, o)
        if self.base_weight is not None:
            out = torch.addmm(out, self._base.function(h), self.base_weight.t())
        if self.bias is not None:
            out = out + self.bias
        return out

    def edge_activations(self, h: torch.Tensor) -> torch.Tensor:
        """Every edge function at the layer input: ``h`` ``(N, in)`` -> ``phi`` ``(N, in, out)``
        with ``phi[n, p, q] = phi_qp(h[n, p])`` (no bias); ``sum(1) + bias`` is :meth:`forward`."""
        self._check_h(h, "KANLayer.edge_activations")
        phi = EdgeSpline.apply(h.t(), self.table(), self.locate_planes(h), 0, 1)[0].permute(2, 1, 0)
        if self.base_weight is not None:
            phi = phi + self._base.function(h).unsqueeze(-1) * self.base_weight.t()
        return phi

    def _check_jet(self, jet: Jet) -> None:
        if not isinstance(jet, Jet):
            raise TypeError(f"KANLayer.forward_jet expects a Jet, got {type(jet).__name__}")
        h = jet.value
        self._check_h(h, "KANLayer.forward_jet")
        n, i = h.shape
        if jet.order >= 1 and (jet.grad.dim() != 3 or tuple(jet.grad.shape[:2]) != (n, i)):
            raise ValueError(f"KANLayer.forward_jet expects jet.grad of shape (N, {i}, d) with N = {n}, "
                             f"got {tuple(jet.grad.shape)}")
        if jet.order >= 2 and jet.hess_diag.shape != jet.grad.shape:
            raise ValueError(f"KANLayer.forward_jet expects jet.hess_diag of shape {tuple(jet.grad.shape)}, "
                             f"got {tuple(jet.hess_diag.shape)}")

    def forward_jet(self, jet: Jet) -> Jet:
        """Propagate a jet through the layer (see :mod:`~kanpde.models.kan.jets` for the formulas).

        ``jet.value`` ``(N, in)``, ``jet.grad``/``jet.hess_diag`` ``(N, in, d)`` -> Jet with
        ``value`` ``(N, out)``, ``grad``/``hess_diag`` ``(N, out, d)`` (as far as ``jet.order``
        goes); exact and differentiable with respect to the parameters.
        """
        self._check_jet(jet)
        h, g, s, order = jet.value, jet.grad, jet.hess_diag, jet.order
        n, o = h.shape[0], self.out_features
        table = self.table()
        if self._edgewise() and order == 2:
            value, grad, hess = edge_jet(h, g, s, table, self.base_weight, self.locate_planes(h),
                                         self.base_activation, False)
            return Jet(self._add_bias(value), grad, hess)
        if self._edgewise():
            phi = [e.permute(2, 1, 0) for e in EdgeSpline.apply(h.t(), table, self.locate_planes(h), 0, order + 1)]
            if self.base_weight is not None:
                wt = self.base_weight.t()
                phi = [f + b.unsqueeze(-1) * wt for f, b in zip(phi, self._base_derivatives(h, order))]
            value = phi[0].sum(1)
            grad = hess = None
            if order >= 1:
                grad = (phi[1].unsqueeze(-1) * g.unsqueeze(2)).sum(1)  # (N, out, d)
            if order >= 2:
                hess = (phi[2].unsqueeze(-1) * g.square().unsqueeze(2) + phi[1].unsqueeze(-1) * s.unsqueeze(2)).sum(1)
            return Jet(self._add_bias(value), grad, hess)
        loc, u = self.locate_points(h)
        if order == 2:
            k1 = self.spline_order + 1
            if self.base_weight is not None:
                # the base weights as a (k+2)-th row of every block: one row product does both
                i, g_ = self.in_features, self.grid_size
                wrow = self.base_weight.t().reshape(i, 1, 1, o).expand(i, g_, 1, o).reshape(i * g_, 1, o)
                table = torch.cat([table.view(i * g_, k1, o), wrow], 1).reshape(-1, o)
                k1 += 1
            base = self.base_activation if self.base_weight is not None else None
            value, grad, hess = row_jet(h, g, s, table, loc, base, k1, o)
            return Jet(self._add_bias(value), grad, hess)
        # orders 0 and 1: values (and gradient channels) through one row product, with graph
        qs = power_derivatives(u, loc.du_dh, self.spline_order, order + 1)  # (N, in, k+1) each
        chans = [qs[0].unsqueeze(1)]  # (N, c, in, k+1)
        gt = None
        if order == 1:
            gt = g.transpose(1, 2)  # (N, d, in)
            chans.append(qs[1].unsqueeze(1) * gt.unsqueeze(-1))
        vals = torch.cat(chans, 1) if len(chans) > 1 else chans[0]
        c = vals.shape[1]
        out = SpMM.apply(vals.reshape(n, c, self.in_features * (self.spline_order + 1)), table,
                         loc.row_pattern(o))  # (N, c, out)
        if self.base_weight is not None:
            b = self._base_derivatives(h, order)
            z = b[0].unsqueeze(1) if order == 0 else torch.cat([b[0].unsqueeze(1), b[1].unsqueeze(1) * gt], 1)
            out = out + torch.matmul(z, self.base_weight.t())
        return Jet(self._add_bias(out[:, 0]), out[:, 1:].transpose(1, 2) if order == 1 else None, None)

    def forward_jet_input(self, x: torch.Tensor, order: int = 2) -> Jet:
        """:meth:`forward_jet` of the identity jet at ``x`` (the first layer of a network).

        ``x`` ``(N, in)`` -> Jet with ``grad``/``hess_diag`` ``(N, out, in)``.  Exploits that
        ``d x_p / d x_j`` is the identity: ``grad[:, q, j] = phi_qj'(x_j)`` and
        ``hess_diag[:, q, j] = phi_qj''(x_j)``, one edge each, no ``(N, in, in)`` seed.
        """
        self._check_h(x, "KANLayer.forward_jet_input")
        if order not in (0, 1, 2):
            raise ValueError(f"order must be 0, 1 or 2, got {order!r}")
        if order == 2:
            value, grad, hess = edge_jet(x, None, None, self.table(), self.base_weight, self.locate_planes(x),
                                         self.base_activation, True)
            return Jet(self._add_bias(value), grad, hess)
        e = [t.permute(2, 1, 0) for t in EdgeSpline.apply(x.t(), self.table(), self.locate_planes(x), 0, order + 1)]
        value = e[0].sum(1)  # e[r]: (N, in, out)
        grad = None
        b = self._base_derivatives(x, order)
        if self.base_weight is not None:
            value = torch.addmm(value, b[0], self.base_weight.t())
        if order >= 1:
            grad = e[1].transpose(1, 2)
            if self.base_weight is not None:
                grad = grad + b[1].unsqueeze(1) * self.base_weight
        return Jet(self._add_bias(value), grad, None)

    def _add_bias(self, value: torch.Tensor) -> torch.Tensor:
        return value if self.bias is None else value + self.bias

    # ------------------------------------------------------------------ grid changes
    def _set_grid(self, grid: torch.Tensor) -> None:
        grid = grid.to(dtype=self.grid.dtype, device=self.grid.device).contiguous()
        if grid.shape == self.grid.shape:
            self.grid.copy_(grid)
        else:
            self.grid = grid
        self._knots = None

    @torch.no_grad()
    def update_grid(self, h: torch.Tensor) -> None:
        """Adapt the knots to samples of the layer input, keeping the function.

        ``h``: ``(N, in)``.  Per input, the ``G + 1`` interior knots become
        ``grid_eps * uniform(min, max) + (1 - grid_eps) * quantiles`` of the samples, extended by
        ``k`` knots of spacing ``(max - min) / G`` beyond each end; the spline coefficients are
        refitted by least squares so each edge function is preserved at the samples (the base
        branch does not depend on the grid).  Parameters are updated in place (same objects).
        """
        self._check_h(h, "KANLayer.update_grid")
        if h.shape[0] < 1:
            raise ValueError("KANLayer.update_grid needs at least one sample, got 0 rows")
        h = h.detach()
        target = grid_fit.spline_values(self, h)
        self._set_grid(grid_fit.adapted_knots(h, self.grid_size, self.spline_order, self.grid_eps))
        self.spline_weight.copy_(grid_fit.fit_coefficients(self, h, target))

    @torch.no_grad()
    def refine(self, new_grid_size: int) -> "KANLayer":
        """Move the splines to a grid of ``new_grid_size`` intervals over the same range(s)
        (grid extension), keeping each edge function: least squares on ``k + 2`` points per
        new interval, exact to round-off when the new grid nests the old one (e.g. 5 -> 10).
        A uniform grid stays uniform; an adapted grid is subdivided by interpolating its knots.
        ``spline_weight`` and ``grid`` are replaced (new shapes); returns ``self``."""
        new_g = check_int(new_grid_size, "new_grid_size", 1)
        k = self.spline_order
        grid = grid_fit.refined_knots(self.grid, k, self.grid_size, new_g, self.grid_is_uniform)
        pts = grid_fit.refit_points(grid, k, new_g).to(self.spline_weight.dtype).contiguous()
        target = grid_fit.spline_values(self, pts)
        self.grid_size = new_g
        self._set_grid(grid)
        requires_grad = self.spline_weight.requires_grad
        self.spline_weight = nn.Parameter(
            torch.zeros(self.out_features, self.in_features, new_g + k, dtype=self.spline_weight.dtype,
                        device=self.spline_weight.device), requires_grad=requires_grad)
        self.spline_weight.data.copy_(grid_fit.fit_coefficients(self, pts, target, dense=True))
        return self

    # ------------------------------------------------------------------ state_dict
    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)
        self._knots = None
