"""Exact imposition of Dirichlet and initial conditions (hard constraints).

A condition built with ``hard=True`` (:class:`~kanpde.conditions.Dirichlet` on a named boundary
part, :class:`~kanpde.conditions.Initial`) is satisfied by construction when the network
``N(x)`` enters the solution as ::

    u(x) = lift(x) + distance(x) * N(x)

(Lagaris, Likas & Fotiadis 1998, "Artificial neural networks for solving ordinary and partial
differential equations", IEEE TNN 9(5); Sukumar & Srivastava 2022, "Exact imposition of boundary
conditions with distance functions in physics-informed deep neural networks", CMAME 389, below
"S&S").  Per output component ``c`` with hard conditions ``i = 1..K`` on parts ``P_i``:

- ``phi_i = d_i^mu_i``: ``d_i = domain.distance(x, P_i)`` the approximate distance function of
  the part (:meth:`kanpde.geometry.Geometry.distance`), ``mu_i = 1``, or ``mu_i = 2`` for an
  initial condition with ``dt_value`` (``d = t - t0``: the time multiplier ``(t - t0)^2`` makes
  ``u`` and ``du/dt`` at ``t0`` those of the lift).
- ``distance_c = 1 / sum_i 1 / phi_i`` (R-equivalence, S&S eq. (8)): zero on every ``P_i``,
  positive inside the domain.
- ``lift_c = sum_i w_i g_i`` with ``w_i = prod_{j != i} phi_j / sum_k prod_{j != k} phi_k``
  (transfinite interpolation, S&S sec. 5): ``w_i = 1`` on ``P_i``, so ``lift_c = g_i`` there.
  ``g_i`` is the condition's ``value`` (plus ``(t - t0) dt_value`` for a second-order initial
  condition), evaluated in the whole domain.

Components without hard conditions get ``lift = 0`` and ``distance = 1``.  Where two parts
meet the data should agree (the lift takes their mean there).

Use::

    lift, distance = hard_constraint(problem)          # None when no condition is hard
    model = ConstrainedOutput(net, lift, distance)      # kanpde.models; or constrain(net, problem)

The trainer drops hard conditions from the loss (their residual is round-off; it may log it).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import torch

from kanpde.conditions import Dirichlet, Initial, _eval_target
from kanpde.geometry import adf

__all__ = ["HardConstraint", "hard_conditions", "hard_constraint", "constrain", "with_hard_conditions"]


@dataclass(frozen=True)
class _Piece:
    """One hard condition: the boundary part, the output component, the data and the power of
    its distance function."""

    part: str
    component: int
    value: Any
    dt_value: Any
    power: int
    owner: str


def hard_conditions(problem) -> list:
    """The conditions of ``problem`` with ``hard=True``, in order."""
    return [c for c in getattr(problem, "conditions", None) or () if getattr(c, "hard", False)]


class HardConstraint:
    """``lift`` and ``distance`` of a set of hard conditions on a domain (see the module
    docstring for the formulas).

    Args:
        domain: a :class:`~kanpde.geometry.Geometry` (anything with ``distance(x, part)``).
        conditions: hard :class:`~kanpde.conditions.Dirichlet` / :class:`~kanpde.conditions.Initial`
            conditions on named parts of ``domain``.
        output_dim: number of network outputs ``m``.
    """

    def __init__(self, domain, conditions, output_dim: int = 1):
        if not callable(getattr(domain, "distance", None)):
            raise TypeError(f"hard conditions need a domain with distance functions "
                            f"(kanpde.geometry), got {domain!r}")
        if isinstance(output_dim, bool) or not isinstance(output_dim, int) or output_dim < 1:
            raise ValueError(f"output_dim must be an integer >= 1, got {output_dim!r}")
        self.domain, self.output_dim = domain, output_dim
        self.pieces: list[_Piece] = []
        seen: dict[tuple[str, int], str] = {}
        for cond in conditions:
            piece = self._piece(cond, domain, output_dim)
            key = (piece.part, piece.component)
            if key in seen:
                raise ValueError(f"{piece.owner} and {seen[key]} are both hard on part "
                                 f"{piece.part!r} for component {piece.component}; keep one")
            seen[key] = piece.owner
            self.pieces.append(piece)
        if not self.pieces:
            raise ValueError("HardConstraint needs at least one hard condition")

    @staticmethod
    def _piece(cond, domain, output_dim: int) -> _Piece:
        owner = getattr(cond, "_owner", repr(cond))
        if not isinstance(cond, (Dirichlet, Initial)):
            raise TypeError(f"{owner}: only Dirichlet and Initial conditions can be hard (imposed "
                            f"exactly), got a {type(cond).__name__}; set hard=False")
        if not isinstance(cond.where, str):
            raise ValueError(f"{owner}: a condition given by a predicate where(x) cannot be hard "
                             f"(exact imposition needs the distance function of a named boundary "
                             f"part); its parts are {', '.join(map(repr, domain.parts))}")
        cond.check_domain(domain)
        if cond.component >= output_dim:
            raise ValueError(f"{owner}: component={cond.component} is out of range for a problem "
                             f"with {output_dim} output(s)")
        dt_value = getattr(cond, "dt_value", None)
        return _Piece(cond.where, cond.component, cond.value, dt_value,
                      1 if dt_value is None else 2, owner)

    def __repr__(self) -> str:
        parts = ", ".join(f"{p.part}[c{p.component}]" + ("^2" if p.power == 2 else "")
                          for p in self.pieces)
        return f"HardConstraint({parts} on {self.domain!r})"

    def _check(self, x: torch.Tensor) -> None:
        if not isinstance(x, torch.Tensor) or not x.is_floating_point():
            raise TypeError(f"x must be a floating-point tensor of shape (N, {self.domain.dim}), "
                            f"got {type(x).__name__}")
        if x.dim() != 2 or x.shape[1] != self.domain.dim:
            raise ValueError(f"x must have shape (N, {self.domain.dim}), got {tuple(x.shape)}")

    def _phis(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``phi_i = d_i^mu_i`` ``(N,)`` of every piece, each part's ADF evaluated once."""
        d: dict[str, torch.Tensor] = {}
        out = []
        for p in self.pieces:
            if p.part not in d:
                d[p.part] = self.domain.distance(x, p.part)
            out.append(d[p.part] if p.power == 1 else d[p.part] ** p.power)
        return out

    def _by_component(self):
        for c in range(self.output_dim):
            yield c, [i for i, p in enumerate(self.pieces) if p.component == c]

    def distance(self, x: torch.Tensor) -> torch.Tensor:
        """``distance`` ``(N, m)`` at points ``x`` ``(N, d)`` (``x``'s dtype and device,
        differentiable in ``x``): zero on the parts of the component's hard conditions."""
        self._check(x)
        phis = self._phis(x)
        cols = [adf.join([phis[i] for i in idx]) if idx else torch.ones_like(x[:, 0])
                for _, idx in self._by_component()]
        return torch.stack(cols, dim=1)

    def lift(self, x: torch.Tensor) -> torch.Tensor:
        """``lift`` ``(N, m)`` at points ``x`` ``(N, d)``: the transfinite interpolation of the
        component's hard data, equal to each condition's data on its part."""
        self._check(x)
        phis = self._phis(x)
        cols = []
        for _, idx in self._by_component():
            if not idx:
                cols.append(torch.zeros_like(x[:, 0]))
                continue
            w = adf.transfinite_weights([phis[i] for i in idx])
            data = torch.cat([self._data(self.pieces[i], x) for i in idx], dim=1)
            cols.append((w * data).sum(dim=1))
        return torch.stack(cols, dim=1)

    def _data(self, p: _Piece, x: torch.Tensor) -> torch.Tensor:
        """``g_i`` ``(N, 1)``: the value, plus ``(t - t0) dt_value`` for ``mu_i = 2``."""
        g = _eval_target(p.value, x, p.owner, "value")
        if p.dt_value is not None:
            elapsed = self.domain.distance(x, "initial").unsqueeze(1)
            g = g + elapsed * _eval_target(p.dt_value, x, p.owner, "dt_value")
        return g


def hard_constraint(problem) -> tuple[Callable, Callable] | None:
    """``(lift, distance)`` for the hard conditions of ``problem``, or ``None`` if it has none.

    ``lift(x)`` and ``distance(x)`` map points ``(N, d)`` to ``(N, m)`` (``m`` =
    ``problem.output_dim``); ``u = lift(x) + distance(x) * N(x)`` satisfies every hard condition
    exactly (to round-off) for any ``N``.  Raises ``ValueError``/``TypeError`` for a hard
    condition on a predicate or of another kind, two hard conditions on the same part and
    component, or a problem that also has an ``output_transform``.
    """
    conds = hard_conditions(problem)
    if not conds:
        return None
    if getattr(problem, "output_transform", None) is not None:
        raise ValueError(f"problem {getattr(problem, 'name', problem)!r} has both an output_transform "
                         f"and hard conditions ({', '.join(c.name for c in conds)}); impose the "
                         f"boundary values one way only")
    hc = HardConstraint(problem.domain, conds, int(getattr(problem, "output_dim", 1)))
    return hc.lift, hc.distance


def constrain(model, problem):
    """``model`` wrapped in :class:`~kanpde.models.ConstrainedOutput` for the hard conditions of
    ``problem``, or ``model`` itself when it has none."""
    pair = hard_constraint(problem)
    if pair is None:
        return model
    from kanpde.models import ConstrainedOutput
    return ConstrainedOutput(model, *pair)


def with_hard_conditions(problem):
    """A copy of ``problem`` (sharing everything else) whose Dirichlet conditions on named parts
    and Initial conditions are all hard (``methods.hard_constraints=true``).  Dirichlet
    conditions given by a predicate ``where`` cannot be imposed exactly and stay in the loss."""
    import copy

    from kanpde.conditions import Dirichlet, Initial

    out = copy.copy(problem)
    conditions = []
    for cond in problem.conditions:
        if isinstance(cond, Initial) or (isinstance(cond, Dirichlet) and isinstance(cond.where, str)):
            cond = copy.copy(cond)
            cond.hard = True
        conditions.append(cond)
    out.conditions = conditions
    return out
