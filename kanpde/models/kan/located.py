"""A batch of layer inputs located on the grid, and what every pass through them reuses."""
from __future__ import annotations

import torch

from ..activations import ACTIVATIONS
from . import dispatch
from .graph import tensor_key
from .rows import RowPattern

__all__ = ["LocatedInputs"]


class LocatedInputs:
    """Where a batch of layer inputs lies on the grid (made by
    :func:`~kanpde.models.kan.bspline.locate_points` or
    :func:`~kanpde.models.kan.bspline.locate_planes`).

    Two layouts: *point-major* (``block``, ``u`` shaped ``(N, in)``, for the row products) and
    *input-major* (``(in, N)``: one plane of points per input, for edge-by-edge work);
    ``inputs_major`` says which, and ``n_points``/``n_inputs`` are the sizes either way.

    - ``block``: block ``p * G + j`` of every input value (``j`` its knot interval);
    - ``u``: the local coordinate in the interval (no graph), flattened to ``(N * in, 1)``;
    - ``du_dh``: ``du/dh``, one per input on a uniform grid (``(in,)`` point-major, ``(in, 1)``
      input-major), else one per value (the block's shape);
    - ``inputs``: the inputs as ``(in, N)`` planes (input-major only), ``base`` the layer's base
      activation.

    It caches what the (nested) backward passes through the same evaluation reuse: powers of
    ``u``, the gathered table planes, edge evaluations, backward sums, the base activation's
    derivatives and the row patterns.
    """

    def __init__(self, block: torch.Tensor, u: torch.Tensor, du_dh: torch.Tensor, k: int, n_blocks: int,
                 base: str, inputs_major: bool, inputs: torch.Tensor | None = None):
        self.block, self.du_dh = block, du_dh.detach()
        self.inputs_major = inputs_major
        if inputs_major:
            self.n_inputs, self.n_points = block.shape
        else:
            self.n_points, self.n_inputs = block.shape
        self.k, self.k1 = k, k + 1
        self.n_blocks = n_blocks
        self.u = u.detach().reshape(-1, 1)  # (N * in, 1)
        self.base = base
        self.inputs = inputs
        #: edge evaluations by table and order (see nested.edge_planes)
        self.edge_evaluations: dict = {}
        #: backward sums done on this evaluation (see nested.once)
        self.backward_sums: dict = {}
        self._powers: list[torch.Tensor | None] = [None, self.u]  # u^0 made on demand
        self._du_dh_flat: torch.Tensor | None = None
        self._gathered: list[tuple] = []
        self._base: list[torch.Tensor] = []
        self._patterns: dict[int, RowPattern] = {}  # row patterns by rows per block
        self._kernel_args: tuple | None = None

    def base_planes(self, r: int) -> torch.Tensor:
        """``b^(r)(inputs)``, ``(in, N)``, of the layer's base activation (cached; input-major)."""
        if len(self._base) <= r:
            # value-only passes need b, first-order training b', Laplacians up to the third
            self._base = ACTIVATIONS[self.base].derivatives(self.inputs, r if r <= 1 else max(r, 3))
        return self._base[r]

    def kernel_args(self) -> tuple:
        """``(u, du/dh, block, inputs, aux, kind)`` for the compiled sums kernels (input-major):
        ``kind`` the base activation's code (0: none the kernels know), ``aux`` ``sigma(inputs)``
        (silu) or ``tanh(inputs)`` (tanh); cached."""
        if self._kernel_args is None:
            kind = dispatch.BASE_KINDS.get(self.base, 0)
            aux = (torch.sigmoid(self.inputs) if kind == 1 else torch.tanh(self.inputs) if kind == 2
                   else self.u.new_empty(0))
            shape = self.block.shape
            self._kernel_args = (self.u.view(shape), self.du_dh.expand(shape), self.block, self.inputs, aux, kind)
        return self._kernel_args

    def power(self, m: int) -> torch.Tensor:
        """``u^m``, ``(N * in, 1)``."""
        if m == 0:
            if self._powers[0] is None:
                self._powers[0] = torch.ones_like(self.u)
            return self._powers[0]
        while len(self._powers) <= m:
            self._powers.append(self._powers[-1] * self.u)
        return self._powers[m]

    def du_dh_power(self, r: int) -> torch.Tensor:
        """``(du/dh)^r`` per edge input, ``(N * in, 1)``."""
        if self._du_dh_flat is None:
            self._du_dh_flat = self.du_dh.expand(self.block.shape).reshape(-1, 1)
        return self._du_dh_flat if r == 1 else self._du_dh_flat.pow(r)

    def planes(self, table: torch.Tensor) -> torch.Tensor:
        """Table rows of every edge input, plane by plane: ``(k + 1, O, in * N)`` with
        ``[m, :, p * N + n]`` = row ``block[p, n] * (k + 1) + m`` (input-major).  The last few
        tables are cached: nested backward passes evaluate the same table (and its adjoints) at
        several derivative orders."""
        key = tensor_key(table)
        for entry in self._gathered:
            if entry[0] == key:
                return entry[2]
        o, e_n = table.shape[1], self.block.numel()
        tt = table.reshape(self.n_blocks, self.k1, o).permute(1, 2, 0).reshape(self.k1 * o, self.n_blocks)
        out = tt.gather(1, self.block.view(1, e_n).expand(self.k1 * o, e_n)).view(self.k1, o, e_n)
        self._gathered = [(key, table, out)] + self._gathered[:2]  # holds `table`: its id stays unique
        return out

    def row_pattern(self, width: int) -> RowPattern:
        """The row pattern of the layer table (``k + 1`` rows per block; point-major)."""
        return self.block_pattern(self.k1, width)

    def block_pattern(self, per_block: int, width: int) -> RowPattern:
        """Row pattern for tables with ``per_block`` rows per block (cached)."""
        if per_block not in self._patterns:
            self._patterns[per_block] = RowPattern(self.block, per_block, self.n_blocks, width)
        return self._patterns[per_block]
