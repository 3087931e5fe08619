"""Boundary, initial and data conditions of a PDE problem.

A condition says what the solution must satisfy on part of the domain, written as a residual
that vanishes when it holds::

    from kanpde import conditions as bc
    bc.Dirichlet("boundary", value=0.0)                    # u = 0
    bc.Neumann("right", value=lambda x: torch.cos(x[:, 1])) # du/dn = cos(y)
    bc.Robin("top", a=1.0, b=2.0, value=0.0)               # u + 2 du/dn = 0
    bc.Periodic("left", "right", axis=0)                   # u(0, y) = u(1, y), same for du/dx
    bc.Initial(value=u0, dt_value=v0)                      # u = u0, du/dt = v0 at t = t0
    bc.Data(x_obs, u_obs)                                  # u(x_i) = u_i

The training loop uses two methods (see ``docs/DESIGN.md``):

* ``batch = cond.sample(domain, n, method, seed)``: a dict of float64 CPU tensors, at least
  ``"x"`` ``(n, d)``; boundary conditions add ``"normal"`` ``(n, d)``; conditions with a target
  add ``"value"`` ``(n, 1)`` (the target evaluated once, in float64, at sampling time).
* ``cond.residual(batch, u_fn) -> (n, k)``: ``u_fn(x)`` evaluates the network (output transform
  included) at ``x`` and returns ``(n, m)``.  The loop moves every tensor of the batch with
  ``.to(dtype, device)`` first; a condition that needs derivatives makes its own
  ``requires_grad`` copy of ``x``.

``where`` selects the points: a boundary part name of the domain (``"boundary"`` for the whole
boundary, a face such as ``"left"``, ``"initial"`` for ``t = t0`` of a space-time domain; see
``domain.parts``), or a predicate ``f(x) -> bool mask`` over points of the whole boundary
(``x`` a float64 tensor ``(N, d)``, the mask ``(N,)``).

``hard=True`` (Dirichlet and Initial on a named part) asks for the condition to hold exactly,
by construction of the network's output ``u = lift(x) + distance(x) * N(x)``
(:mod:`kanpde.constraints`, Sukumar & Srivastava 2022); such a condition still samples and
reports its residual (round-off), and the loss leaves it out.

Targets (``value``, ``dt_value``, Robin's ``a`` and ``b``) are a number or a callable
``g(x) -> (N,)`` or ``(N, 1)`` of the float64 point tensor ``x`` ``(N, d)`` (space-time points
include the time column).

This module knows nothing of models or training.
"""
from __future__ import annotations

import math
import numbers
from typing import Any, Callable

import numpy as np
import torch

from kanpde import operators as op
from kanpde.sampling import METHODS as SAMPLING_METHODS

__all__ = [
    "Condition",
    "Dirichlet",
    "Neumann",
    "Robin",
    "Periodic",
    "Initial",
    "Data",
    "SAMPLING_METHODS",
    "on_face",
]

# Predicate sampling: draw this many candidates first, grow the draw at most this often, and
# never ask the geometry for more than this many candidates in one draw.
_PREDICATE_FIRST_FACTOR = 2
_PREDICATE_ROUNDS = 8
_PREDICATE_MAX_CANDIDATES = 2_000_000


def on_face(function: Callable[[torch.Tensor], torch.Tensor], axis: int, at: float,
            component: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """Boundary data from a function of the whole domain, restricted to the face ``x_axis = at``.

    ``on_face(problem.exact, axis=0, at=1.0)`` is ``g(x) = exact(x with column 0 set to 1.0)``:
    a function of the face's own coordinates only, as boundary data come in practice, so a
    hard constraint built from it (:mod:`kanpde.constraints`) lifts the data and not a function
    that already is the solution in the interior.  ``component`` picks one output column of a
    vector-valued ``function`` (the result is then ``(N, 1)``).
    """
    if not callable(function):
        raise TypeError(f"on_face: function must be callable, got {type(function).__name__}")
    axis = _check_int(axis, "on_face", "axis", 0)
    if not (isinstance(at, numbers.Real) and math.isfinite(float(at))):
        raise ValueError(f"on_face: at must be a finite number, got {at!r}")
    component = _check_int(component, "on_face", "component", 0, allow_none=True)
    at = float(at)

    def data(x: torch.Tensor) -> torch.Tensor:
        if not 0 <= axis < x.shape[1]:
            raise ValueError(f"on_face: axis {axis} is not a column of points with {x.shape[1]} columns")
        x = x.clone()
        x[:, axis] = at
        values = function(x)
        return values if component is None else values[:, component:component + 1]

    return data


# ----------------------------------------------------------------------------- helpers

def _check_target(spec: Any, owner: str, arg: str) -> Any:
    """Validate a number-or-callable target at construction time; return it (floats as float)."""
    if callable(spec):
        return spec
    if isinstance(spec, bool) or not isinstance(spec, numbers.Real):
        raise TypeError(f"{owner}: {arg} must be a number or a callable g(x) -> (N,) or (N, 1), "
                        f"got {spec!r} of type {type(spec).__name__}")
    spec = float(spec)
    if not math.isfinite(spec):
        raise ValueError(f"{owner}: {arg} must be finite, got {spec!r}")
    return spec


def _eval_target(spec: Any, x: torch.Tensor, owner: str, arg: str) -> torch.Tensor:
    """Evaluate a target at ``x`` ``(N, d)`` as a ``(N, 1)`` tensor of ``x``'s dtype/device."""
    n = x.shape[0]
    if not callable(spec):
        return torch.full((n, 1), float(spec), dtype=x.dtype, device=x.device)
    out = spec(x)
    if not isinstance(out, torch.Tensor):
        if isinstance(out, np.ndarray):
            out = torch.as_tensor(out)
        else:
            raise TypeError(f"{owner}: {arg}(x) must return a tensor of shape ({n},) or ({n}, 1) "
                            f"for x of shape {tuple(x.shape)}, got {type(out).__name__}")
    if tuple(out.shape) not in ((n,), (n, 1)):
        raise ValueError(f"{owner}: {arg}(x) must return shape ({n},) or ({n}, 1) for x of shape "
                         f"{tuple(x.shape)}, got {tuple(out.shape)}")
    return out.reshape(n, 1).to(dtype=x.dtype, device=x.device)


def _check_int(value: Any, owner: str, arg: str, minimum: int, allow_none: bool = False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        what = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise ValueError(f"{owner}: {arg} must be {what}, got {value!r}")
    return int(value)


def _domain_label(domain: Any) -> str:
    return repr(domain)


def _check_part(domain: Any, part: str, owner: str, arg: str = "where") -> None:
    parts = tuple(getattr(domain, "parts", ()))
    if part not in parts:
        raise ValueError(f"{owner}: {arg}={part!r} is not a boundary part of the domain "
                         f"{_domain_label(domain)}; its parts are {', '.join(map(repr, parts))}")


def _on_part(domain: Any, x: torch.Tensor, part: str) -> torch.Tensor:
    """Boolean mask ``(N,)`` of the points of ``x`` lying on boundary part ``part``."""
    for method in ("on_part", "part_mask"):
        fn = getattr(domain, method, None)
        if fn is not None:
            return torch.as_tensor(fn(x, part)).reshape(-1).bool()
    return torch.as_tensor(domain.on_boundary(x)).reshape(-1).bool()


def _rng(seed: Any) -> np.random.Generator:
    """A numpy Generator from ``None``, an integer seed or a Generator (used as is)."""
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def _subset(n_total: int, n: int, rng: np.random.Generator) -> torch.Tensor:
    """``n`` distinct indices out of ``range(n_total)`` in increasing order."""
    return torch.from_numpy(np.sort(rng.choice(n_total, size=n, replace=False)))


def _grad_ready(x: torch.Tensor) -> torch.Tensor:
    """``x`` itself if it already requires grad, else a requires-grad view of it (keeping a
    space-time tag set by :func:`kanpde.operators.with_time_axis`)."""
    if x.requires_grad:
        return x
    out = x.detach().requires_grad_(True)
    axis = op.time_axis_of(x)
    return out if axis is None else op.with_time_axis(out, axis)


# ----------------------------------------------------------------------------- base class

class Condition:
    """Base class of all conditions.

    Arguments common to every condition:

    - ``where``: a boundary part name of the domain (``"boundary"``, ``"left"``, ``"initial"``,
      ...) or a predicate ``f(x) -> bool mask`` selecting points of the whole boundary.
    - ``component``: index of the network output the condition constrains (default 0).
    - ``weight``: factor of this condition's mean squared residual in the loss (default 1.0).
    - ``name``: key of the condition in losses and logs; default ``"<kind>_<where>"`` (plus
      ``"_c<component>"`` for a component other than 0), e.g. ``"dirichlet_left"``.
    - ``n_points``: number of points to sample for this condition, overriding the training
      loop's default for boundary conditions (``None``: use the loop's default).

    Subclasses implement :meth:`sample` and :meth:`residual` and set ``kind``.
    """

    kind: str = "condition"
    #: ``True`` when the condition is imposed exactly by the network's output (see
    #: :mod:`kanpde.constraints`); only :class:`Dirichlet` and :class:`Initial` can be hard.
    hard: bool = False

    def __init__(self, where: str | Callable | None, component: int = 0, weight: float = 1.0,
                 name: str | None = None, n_points: int | None = None):
        label = type(self).__name__
        if where is not None and not isinstance(where, str) and not callable(where):
            raise TypeError(f"{label} condition: where must be a boundary part name such as "
                            f"'boundary' or 'left', or a predicate f(x) -> bool mask, got {where!r}")
        if isinstance(where, str) and not where:
            raise ValueError(f"{label} condition: where must be a non-empty part name, got ''")
        self.where = where
        self.component = _check_int(component, f"{label} condition", "component", 0)
        if isinstance(weight, bool) or not isinstance(weight, numbers.Real) \
                or not math.isfinite(weight) or weight < 0:
            raise ValueError(f"{label} condition: weight must be a finite number >= 0, got {weight!r}")
        self.weight = float(weight)
        if name is not None and (not isinstance(name, str) or not name):
            raise ValueError(f"{label} condition: name must be a non-empty string or None, got {name!r}")
        self.name = name if name is not None else self._default_name()
        self.n_points = _check_int(n_points, f"{label} condition {self.name!r}", "n_points", 1,
                                   allow_none=True)

    # -- naming and messages

    def _where_label(self) -> str:
        if isinstance(self.where, str):
            return self.where
        fn_name = getattr(self.where, "__name__", "")
        return fn_name if fn_name.isidentifier() else "predicate"

    def _default_name(self) -> str:
        parts = [self.kind]
        if self.where is not None:
            parts.append(self._where_label())
        if self.component:
            parts.append(f"c{self.component}")
        return "_".join(parts)

    @property
    def _owner(self) -> str:
        return f"{type(self).__name__} condition {self.name!r}"

    def __repr__(self) -> str:
        where = self.where if isinstance(self.where, str) or self.where is None \
            else f"<predicate {self._where_label()}>"
        extra = "".join(f", {k}={v!r}" for k, v in self._repr_fields().items())
        return (f"{type(self).__name__}(where={where!r}{extra}, component={self.component}, "
                f"weight={self.weight}, name={self.name!r})")

    def _repr_fields(self) -> dict:
        return {}

    # -- protocol

    #: ``True`` when, while :attr:`needs_derivatives` is false, :meth:`residual` evaluates the
    #: network once, at exactly ``batch["x"]``.  A performance hint only: the trainer then
    #: evaluates those points in the same pass as the collocation points (any other call of
    #: ``u_fn`` is still answered by a network call of its own).
    values_at_x: bool = False

    @property
    def needs_derivatives(self) -> bool:
        """Whether :meth:`residual` differentiates the network output with respect to ``x``."""
        return False

    def check_domain(self, domain: Any) -> None:
        """Raise a clear error if this condition cannot be applied on ``domain`` (e.g. an
        unknown part name).  Called by :class:`kanpde.problem.Problem` at construction."""
        if isinstance(self.where, str):
            _check_part(domain, self.where, self._owner)

    def sample(self, domain: Any, n: int | None = None, method: str = "uniform",
               seed: int | None = None) -> dict[str, torch.Tensor]:
        """Draw ``n`` points for this condition from ``domain``; return a batch dict of float64
        CPU tensors.  ``n=None`` uses ``n_points``."""
        raise NotImplementedError

    def residual(self, batch: dict[str, torch.Tensor],
                 u_fn: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Residual ``(N, k)`` of the condition on ``batch`` (zero where it holds)."""
        raise NotImplementedError

    # -- shared machinery

    def _resolve_n(self, n: int | None) -> int:
        if n is None:
            n = self.n_points
        if n is None:
            raise ValueError(f"{self._owner}: sample() needs a number of points n (got None and the "
                             f"condition has no n_points)")
        return _check_int(n, self._owner, "n", 1)

    def _check_method(self, method: str) -> None:
        if method not in SAMPLING_METHODS:
            raise ValueError(f"{self._owner}: method must be one of {SAMPLING_METHODS}, got {method!r}")

    def _sample_where(self, domain: Any, n: int, method: str, seed: int | None):
        """``(x, normals)`` float64 ``(n, d)`` on the part or predicate set ``where``."""
        self._check_method(method)
        if isinstance(self.where, str):
            _check_part(domain, self.where, self._owner)
            x, normals = domain.sample_boundary(n, method=method, seed=seed, part=self.where)
            return x.to(torch.float64), normals.to(torch.float64)
        return self._sample_predicate(domain, n, method, seed)

    def _sample_predicate(self, domain: Any, n: int, method: str, seed: int | None):
        # Draw boundary candidates, keep those the predicate accepts; if too few, draw again
        # (a fresh, larger set, so deterministic methods like "grid" give no duplicates).
        n_draw = _PREDICATE_FIRST_FACTOR * n
        found = 0
        rng = _rng(seed)
        for _ in range(_PREDICATE_ROUNDS):
            draw_seed = int(rng.integers(2**62))
            x, normals = domain.sample_boundary(n_draw, method=method, seed=draw_seed, part="boundary")
            raw = torch.as_tensor(self.where(x))
            mask = raw.reshape(-1)
            if mask.shape[0] != x.shape[0] or mask.dtype != torch.bool:
                raise ValueError(f"{self._owner}: the predicate where(x) must return a bool mask of "
                                 f"shape ({x.shape[0]},) for x of shape {tuple(x.shape)}, got dtype "
                                 f"{raw.dtype} and shape {tuple(raw.shape)}")
            found = int(mask.sum())
            if found >= n:
                keep = torch.nonzero(mask).reshape(-1)[_subset(found, n, rng)]
                return x[keep].to(torch.float64), normals[keep].to(torch.float64)
            grow = 4.0 if found == 0 else max(2.0, 1.5 * n / found)
            n_next = int(math.ceil(n_draw * grow))
            if n_next > _PREDICATE_MAX_CANDIDATES:
                break
            n_draw = n_next
        raise ValueError(f"{self._owner}: the predicate where(x) selected only {found} of {n_draw} "
                         f"boundary points of {_domain_label(domain)} after several draws, but "
                         f"{n} are needed; check that it is true on part of the boundary "
                         f"(use a tolerance such as abs(x[:, 0] - 1) < 1e-9, not x[:, 0] == 1)")

    def _outputs(self, u: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """Check the network output ``u`` at ``x`` and return it as ``(N, m)``."""
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"{self._owner}: u_fn(x) must return a tensor, got {type(u).__name__}")
        if u.dim() == 1:
            u = u.unsqueeze(1)
        if u.dim() != 2 or u.shape[0] != x.shape[0]:
            raise ValueError(f"{self._owner}: u_fn(x) must return shape ({x.shape[0]}, m) for x of "
                             f"shape {tuple(x.shape)}, got {tuple(u.shape)}")
        if self.component >= u.shape[1]:
            raise ValueError(f"{self._owner}: component={self.component} is out of range for a "
                             f"network with {u.shape[1]} output(s); allowed 0..{u.shape[1] - 1}")
        return u

    def _set_hard(self, hard: Any) -> None:
        """Validate and store the ``hard`` flag (Dirichlet, Initial)."""
        if not isinstance(hard, (bool, np.bool_)):
            raise TypeError(f"{self._owner}: hard must be True or False, got {hard!r}")
        if hard and not isinstance(self.where, str):
            raise ValueError(f"{self._owner}: a condition given by a predicate where(x) cannot be "
                             f"hard (exact imposition needs the distance function of a named "
                             f"boundary part); use a part name of the domain, or hard=False")
        self.hard = bool(hard)

    def _target(self, batch: dict, key: str, spec: Any, x: torch.Tensor, arg: str) -> torch.Tensor:
        value = batch.get(key)
        if value is None:
            return _eval_target(spec, x.detach(), self._owner, arg)
        return value.to(dtype=x.dtype, device=x.device).reshape(x.shape[0], 1)


class Dirichlet(Condition):
    """Prescribed value: residual ``u_c(x) - g(x)``, shape ``(N, 1)``.

    ``value`` (``g``) is a number or a callable ``g(x) -> (N,)`` or ``(N, 1)``.

    ``hard=True``: impose the condition exactly through the network's output (a named part
    only, not a predicate; see :mod:`kanpde.constraints`).  A callable ``value`` is then also
    evaluated inside the domain (transfinite interpolation of the boundary data), so it must
    be defined there and written in torch operations, differentiable in ``x``.
    """

    kind = "dirichlet"
    values_at_x = True

    def __init__(self, where: str | Callable, value: float | Callable = 0.0, component: int = 0,
                 weight: float = 1.0, name: str | None = None, n_points: int | None = None,
                 hard: bool = False):
        super().__init__(where, component, weight, name, n_points)
        self.value = _check_target(value, self._owner, "value")
        self._set_hard(hard)

    def _repr_fields(self) -> dict:
        return {"value": self.value, **({"hard": True} if self.hard else {})}

    def sample(self, domain, n=None, method="uniform", seed=None):
        """Batch ``{"x", "normal", "value"}`` with ``n`` points on ``where``."""
        x, normals = self._sample_where(domain, self._resolve_n(n), method, seed)
        return {"x": x, "normal": normals, "value": _eval_target(self.value, x, self._owner, "value")}

    def residual(self, batch, u_fn):
        x = batch["x"]
        u = self._outputs(u_fn(x), x)
        c = self.component
        return u[:, c:c + 1] - self._target(batch, "value", self.value, x, "value")


class Neumann(Condition):
    """Prescribed normal derivative: residual ``du_c/dn(x) - g(x)``, shape ``(N, 1)``, with the
    outward unit normals of the batch (``batch["normal"]``)."""

    kind = "neumann"

    def __init__(self, where: str | Callable, value: float | Callable = 0.0, component: int = 0,
                 weight: float = 1.0, name: str | None = None, n_points: int | None = None):
        super().__init__(where, component, weight, name, n_points)
        self.value = _check_target(value, self._owner, "value")

    def _repr_fields(self) -> dict:
        return {"value": self.value}

    @property
    def needs_derivatives(self) -> bool:
        return True

    def sample(self, domain, n=None, method="uniform", seed=None):
        """Batch ``{"x", "normal", "value"}`` with ``n`` points on ``where``."""
        x, normals = self._sample_where(domain, self._resolve_n(n), method, seed)
        return {"x": x, "normal": normals, "value": _eval_target(self.value, x, self._owner, "value")}

    def residual(self, batch, u_fn):
        x = _grad_ready(batch["x"])
        u = self._outputs(u_fn(x), x)
        dudn = op.normal_derivative(u, x, batch["normal"], component=self.component)
        return dudn - self._target(batch, "value", self.value, x, "value")


class Robin(Condition):
    """Mixed condition: residual ``a(x) u_c + b(x) du_c/dn - g(x)``, shape ``(N, 1)``.

    ``a``, ``b`` and ``value`` (``g``) are numbers or callables of ``x``.
    """

    kind = "robin"
    values_at_x = True

    def __init__(self, where: str | Callable, a: float | Callable = 1.0, b: float | Callable = 1.0,
                 value: float | Callable = 0.0, component: int = 0, weight: float = 1.0,
                 name: str | None = None, n_points: int | None = None):
        super().__init__(where, component, weight, name, n_points)
        self.a = _check_target(a, self._owner, "a")
        self.b = _check_target(b, self._owner, "b")
        self.value = _check_target(value, self._owner, "value")

    def _repr_fields(self) -> dict:
        return {"a": self.a, "b": self.b, "value": self.value}

    @property
    def needs_derivatives(self) -> bool:
        return callable(self.b) or self.b != 0.0

    def sample(self, domain, n=None, method="uniform", seed=None):
        """Batch ``{"x", "normal", "a", "b", "value"}`` with ``n`` points on ``where``."""
        x, normals = self._sample_where(domain, self._resolve_n(n), method, seed)
        return {"x": x, "normal": normals,
                "a": _eval_target(self.a, x, self._owner, "a"),
                "b": _eval_target(self.b, x, self._owner, "b"),
                "value": _eval_target(self.value, x, self._owner, "value")}

    def residual(self, batch, u_fn):
        x = batch["x"]
        if self.needs_derivatives:
            x = _grad_ready(x)
        u = self._outputs(u_fn(x), x)
        c = self.component
        out = self._target(batch, "a", self.a, x, "a") * u[:, c:c + 1]
        if self.needs_derivatives:
            dudn = op.normal_derivative(u, x, batch["normal"], component=c)
            out = out + self._target(batch, "b", self.b, x, "b") * dudn
        return out - self._target(batch, "value", self.value, x, "value")


class Periodic(Condition):
    """Periodicity between two opposite faces of a box-shaped domain.

    Points ``x_a`` are sampled on ``part_a`` (a face ``x[axis] = lo`` or ``x[axis] = hi`` of the
    domain's bounding box) and paired with ``x_b``, the same point moved to the opposite face
    along ``axis``, which must lie on ``part_b``.  Residual, shape ``(N, 1)`` or ``(N, 2)``::

        [u_c(x_a) - u_c(x_b),  du_c/dx_axis(x_a) - du_c/dx_axis(x_b)]   # second column if derivative

    The batch holds ``"x"`` (points on ``part_a``) and ``"x_pair"`` (their partners on ``part_b``).
    """

    kind = "periodic"

    def __init__(self, part_a: str, part_b: str, axis: int, derivative: bool = True,
                 component: int = 0, weight: float = 1.0, name: str | None = None,
                 n_points: int | None = None):
        for arg, part in (("part_a", part_a), ("part_b", part_b)):
            if not isinstance(part, str) or not part:
                raise TypeError(f"Periodic condition: {arg} must be a boundary part name such as "
                                f"'left', got {part!r}")
        if part_a == part_b:
            raise ValueError(f"Periodic condition: part_a and part_b must be two different faces, "
                             f"got {part_a!r} twice")
        self.part_b = part_b
        self.axis = _check_int(axis, "Periodic condition", "axis", 0)
        self.derivative = bool(derivative)
        super().__init__(part_a, component, weight, name, n_points)

    @property
    def part_a(self) -> str:
        return self.where

    def _default_name(self) -> str:
        name = f"periodic_{self.part_a}_{self.part_b}"
        return name + (f"_c{self.component}" if self.component else "")

    def _repr_fields(self) -> dict:
        return {"part_b": self.part_b, "axis": self.axis, "derivative": self.derivative}

    def __repr__(self) -> str:
        return (f"Periodic(part_a={self.part_a!r}, part_b={self.part_b!r}, axis={self.axis}, "
                f"derivative={self.derivative}, component={self.component}, weight={self.weight}, "
                f"name={self.name!r})")

    @property
    def needs_derivatives(self) -> bool:
        return self.derivative

    def check_domain(self, domain):
        _check_part(domain, self.part_a, self._owner, "part_a")
        _check_part(domain, self.part_b, self._owner, "part_b")
        if self.axis >= domain.dim:
            raise ValueError(f"{self._owner}: axis={self.axis} is out of range for a "
                             f"{domain.dim}-dimensional domain; allowed 0..{domain.dim - 1}")

    def sample(self, domain, n=None, method="uniform", seed=None):
        """Batch ``{"x", "x_pair"}``: ``n`` points on ``part_a`` and their translates on ``part_b``."""
        self.check_domain(domain)
        x_a, _ = self._sample_where(domain, self._resolve_n(n), method, seed)
        lo, hi = (np.asarray(b, dtype=np.float64) for b in domain.bbox)
        lo_k, hi_k = float(lo[self.axis]), float(hi[self.axis])
        tol = 1e-9 * (1.0 + abs(hi_k - lo_k))
        coord = x_a[:, self.axis]
        if bool(torch.all(torch.abs(coord - lo_k) <= tol)):
            target = hi_k
        elif bool(torch.all(torch.abs(coord - hi_k) <= tol)):
            target = lo_k
        else:
            raise ValueError(f"{self._owner}: the points of part_a={self.part_a!r} do not lie on a face "
                             f"x[{self.axis}] = {lo_k} or x[{self.axis}] = {hi_k} of the bounding box, "
                             f"so they have no translate along axis={self.axis}; pick the faces "
                             f"perpendicular to that axis")
        x_b = x_a.clone()
        x_b[:, self.axis] = target
        on_b = _on_part(domain, x_b, self.part_b)
        if not bool(on_b.all()):
            raise ValueError(f"{self._owner}: moving the points of part_a={self.part_a!r} to "
                             f"x[{self.axis}] = {target} does not land on part_b={self.part_b!r} "
                             f"({int((~on_b).sum())} of {x_b.shape[0]} points miss it); part_b must "
                             f"be the face opposite part_a along axis {self.axis}")
        return {"x": x_a, "x_pair": x_b}

    def residual(self, batch, u_fn):
        x_a, x_b = batch["x"], batch["x_pair"]
        n = x_a.shape[0]
        # One network call on both point sets.
        x = torch.cat([x_a.detach(), x_b.detach()], dim=0)
        if self.derivative:
            x.requires_grad_(True)
        u = self._outputs(u_fn(x), x)
        c = self.component
        cols = [u[:n, c:c + 1] - u[n:, c:c + 1]]
        if self.derivative:
            du = op.partial(u, x, self.axis, component=c)
            cols.append(du[:n] - du[n:])
        return torch.cat(cols, dim=1)


class Initial(Condition):
    """Initial condition on the ``"initial"`` part (``t = t0``) of a space-time domain.

    Residual ``u_c(x) - u0(x)`` (shape ``(N, 1)``) and, when ``dt_value`` (``v0``) is given for
    equations of second order in time, a second column ``du_c/dt(x) - v0(x)`` (shape ``(N, 2)``).
    ``value`` and ``dt_value`` are numbers or callables of the full space-time point ``x``
    (time in the last column, as everywhere in kanpde).

    ``hard=True``: impose the condition exactly through the network's output (see
    :mod:`kanpde.constraints`): the output's time multiplier is ``t - t0`` (Lagaris et al.
    1998), or ``(t - t0)^2`` with ``dt_value``, whose data then enter as
    ``value + (t - t0) dt_value``.  Callable targets are evaluated inside the domain too, so
    they must be written in torch operations, differentiable in ``x``.
    """

    kind = "initial"
    values_at_x = True

    def __init__(self, value: float | Callable = 0.0, dt_value: float | Callable | None = None,
                 component: int = 0, weight: float = 1.0, name: str | None = None,
                 n_points: int | None = None, hard: bool = False):
        super().__init__("initial", component, weight, name, n_points)
        self.value = _check_target(value, self._owner, "value")
        self.dt_value = None if dt_value is None else _check_target(dt_value, self._owner, "dt_value")
        self._set_hard(hard)

    def _default_name(self) -> str:
        return "initial" + (f"_c{self.component}" if self.component else "")

    def _repr_fields(self) -> dict:
        return {"value": self.value, "dt_value": self.dt_value}

    def __repr__(self) -> str:
        hard = ", hard=True" if self.hard else ""
        return (f"Initial(value={self.value!r}, dt_value={self.dt_value!r}, component={self.component}, "
                f"weight={self.weight}, name={self.name!r}{hard})")

    @property
    def needs_derivatives(self) -> bool:
        return self.dt_value is not None

    def check_domain(self, domain):
        time_axis = getattr(domain, "time_axis", None)
        if time_axis is None:
            raise ValueError(f"{self._owner}: an initial condition needs a space-time domain "
                             f"(geometry * TimeDomain(t0, t1)), got {_domain_label(domain)} without "
                             f"a time axis; its parts are {', '.join(map(repr, domain.parts))}")
        if time_axis != domain.dim - 1:
            raise ValueError(f"{self._owner}: time must be the last input column, got time_axis="
                             f"{time_axis} for a {domain.dim}-dimensional domain")
        _check_part(domain, "initial", self._owner)

    def sample(self, domain, n=None, method="uniform", seed=None):
        """Batch ``{"x", "value"}`` (plus ``"dt_value"``) with ``n`` points at ``t = t0``."""
        self.check_domain(domain)
        x, _ = self._sample_where(domain, self._resolve_n(n), method, seed)
        batch = {"x": x, "value": _eval_target(self.value, x, self._owner, "value")}
        if self.dt_value is not None:
            batch["dt_value"] = _eval_target(self.dt_value, x, self._owner, "dt_value")
        return batch

    def residual(self, batch, u_fn):
        x = batch["x"]
        if self.needs_derivatives:
            x = _grad_ready(x)
        u = self._outputs(u_fn(x), x)
        c = self.component
        out = u[:, c:c + 1] - self._target(batch, "value", self.value, x, "value")
        if self.dt_value is None:
            return out
        # time is the last column (kanpde convention, checked in check_domain)
        du_dt = op.dt(u, x, component=c, time_axis=x.shape[1] - 1)
        return torch.cat([out, du_dt - self._target(batch, "dt_value", self.dt_value, x, "dt_value")],
                         dim=1)


class Data(Condition):
    """Pointwise observations: residual ``u_c(x_i) - values_i``, shape ``(N, 1)``.

    ``x`` is array-like ``(N, d)`` and ``values`` ``(N,)`` or ``(N, 1)``; both are stored as
    float64 tensors.  :meth:`sample` returns all ``N`` observations when ``n`` is ``None`` or
    ``n >= N`` (``n_points`` defaults to ``N``, so a loop that passes ``cond.n_points`` uses all
    of them); for ``n < N`` it returns a random subset of ``n`` distinct observations that is
    reproducible for a given ``seed``.  ``method`` is ignored (the points are given).
    """

    kind = "data"
    values_at_x = True

    def __init__(self, x: Any, values: Any, component: int = 0, weight: float = 1.0,
                 name: str | None = None, n_points: int | None = None):
        super().__init__(None, component, weight, name, n_points)
        x = torch.as_tensor(np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x,
                                       dtype=np.float64))
        values = torch.as_tensor(np.asarray(values.detach().cpu() if isinstance(values, torch.Tensor)
                                            else values, dtype=np.float64))
        if x.dim() != 2 or x.shape[0] == 0:
            raise ValueError(f"{self._owner}: x must have shape (N, d) with N >= 1, got {tuple(x.shape)}")
        n = x.shape[0]
        if tuple(values.shape) not in ((n,), (n, 1)):
            raise ValueError(f"{self._owner}: values must have shape ({n},) or ({n}, 1) to match x of "
                             f"shape {tuple(x.shape)}, got {tuple(values.shape)}")
        if not (torch.isfinite(x).all() and torch.isfinite(values).all()):
            raise ValueError(f"{self._owner}: x and values must be finite (no NaN or inf)")
        self.x = x
        self.values = values.reshape(n, 1)
        if self.n_points is None:
            self.n_points = n

    @classmethod
    def from_file(cls, path, x: Any = "x", values: Any = "u", **kwargs) -> "Data":
        """Observations read from a file (``.h5``/``.hdf5``, ``.npz`` or ``.csv``, see
        :mod:`kanpde.datafiles`): the points are array ``x`` (a CSV names its columns, e.g.
        ``x=["x", "y"]``), the observed values array ``values``; further keywords as for
        :class:`Data` (``component``, ``weight``, ``name``, ``n_points``).  A missing array, a
        wrong shape or NaN values are refused naming the file and the array."""
        from kanpde.datafiles import read_array

        points = read_array(path, x)
        observed = read_array(path, values, columns=1, rows=points.shape[0])
        data = cls(points, observed, **kwargs)
        data.source = str(path)
        return data

    def _repr_fields(self) -> dict:
        return {"n_observations": self.x.shape[0]}

    def __repr__(self) -> str:
        return (f"Data(<{self.x.shape[0]} points in {self.x.shape[1]}-D>, component={self.component}, "
                f"weight={self.weight}, name={self.name!r})")

    def check_domain(self, domain):
        if self.x.shape[1] != domain.dim:
            raise ValueError(f"{self._owner}: the observation points have {self.x.shape[1]} "
                             f"coordinates but the domain {_domain_label(domain)} is "
                             f"{domain.dim}-dimensional")

    def sample(self, domain, n=None, method="uniform", seed=None):
        """Batch ``{"x", "value"}``: all observations, or a seeded subset of ``n`` of them."""
        self.check_domain(domain)
        total = self.x.shape[0]
        n = total if n is None else _check_int(n, self._owner, "n", 1)
        if n >= total:
            return {"x": self.x.clone(), "value": self.values.clone()}
        idx = _subset(total, n, _rng(seed))
        return {"x": self.x[idx], "value": self.values[idx]}

    def residual(self, batch, u_fn):
        x = batch["x"]
        u = self._outputs(u_fn(x), x)
        c = self.component
        return u[:, c:c + 1] - batch["value"].to(dtype=u.dtype, device=u.device).reshape(-1, 1)
