"""The :class:`Problem` base class: a PDE written as a Python class.

A problem names its domain, its conditions and its residual; everything else (sampling,
networks, training, errors) is generic::

    import torch
    from kanpde import Problem, geometry, conditions, operators as op

    class Poisson(Problem):
        '''-Lap u = f on the unit square, u = 0 on the boundary.'''
        domain = geometry.Rectangle([0, 0], [1, 1])
        conditions = [conditions.Dirichlet("boundary", value=0.0)]
        params = {"k": 1.0}                      # settable: Poisson(k=2.0), or problem.k=2 in Hydra

        def residual(self, x, u):
            return -op.laplacian(u, x) - self.source(x)

        def source(self, x):
            k = self.k * torch.pi
            return 2 * k**2 * torch.sin(k * x[:, :1]) * torch.sin(k * x[:, 1:])

        def exact(self, x):
            k = self.k * torch.pi
            return torch.sin(k * x[:, :1]) * torch.sin(k * x[:, 1:])

Class attributes a problem may set:

- ``domain``: a geometry from :mod:`kanpde.geometry` (required).
- ``conditions``: a list of :class:`kanpde.conditions.Condition` (may be empty when an output
  transform imposes the boundary values).  Each instance works on its own deep copy.
- ``output_dim``: number of network outputs ``m`` (default 1).
- ``name``: label used in logs and results (default: the class name).
- ``derivative_order``: the highest derivative of ``u`` the residual takes (default 2; 1 for
  first-order equations, 0 for function fitting): the forward path prepares no more.
- ``output_names``: names of the ``m`` outputs (per-output errors ``rel_l2_<name>``).
- ``error_outputs``: indices of the outputs the error metrics measure (default: all).
- ``unknowns``: ``{name: initial guess | Unknown(...) | Field(...)}`` of an inverse problem's
  unknown coefficients, learned with the solution and used in ``residual`` as ``self.name``
  (a 0-d tensor) or ``self.name(x)`` (a field); see :mod:`kanpde.unknowns`.  A problem that
  knows their true values defines ``true_unknowns(self) -> {name: number or callable(x)}``.
- ``params``: ``{name: default}`` of settable parameters.  ``Problem(**overrides)`` replaces
  defaults (unknown names raise ``TypeError`` listing the settable ones); every parameter is
  then an attribute (``self.k``) and all of them are in ``self.params``.  A subclass's
  ``params`` extend its parents'.

Methods a problem defines: ``residual(x, u)`` (required), and optionally ``exact(x)``,
``exact_grad(x)``, ``output_transform(x, u)`` and ``setup()`` (runs after the parameters are
set, e.g. to build a domain whose size is a parameter).

This module knows nothing of models or training.
"""
from __future__ import annotations

import copy
import keyword
import numbers
from typing import Any

import torch

from kanpde.conditions import Condition

__all__ = ["Problem"]

# A residual term with k == N columns for N >= this many points is almost surely an
# accidental (N, 1) - (N,) broadcast, not N separate equations.
_BROADCAST_GUARD_MIN_N = 16


class Problem:
    """Base class of PDE problems; subclass it (see the module docstring for an example).

    Shapes: points ``x`` ``(N, d)`` with ``d = input_dim`` (space-time points put time in the
    last column); network output ``u`` ``(N, m)`` with ``m = output_dim``.
    """

    #: the geometry (kanpde.geometry); required
    domain: Any = None
    #: list of Condition objects; each instance gets its own deep copy
    conditions: list = []
    #: number of network outputs m
    output_dim: int = 1
    #: label in logs and results; default is the class name
    name: str | None = None
    #: settable parameters {name: default}
    params: dict = {}
    #: unknown coefficients learned with the solution {name: guess | Unknown | Field}
    unknowns: dict = {}
    #: highest derivative order of u in residual(): 2, 1 or 0 (the forward path prepares no more)
    derivative_order: int = 2
    #: names of the outputs, e.g. ("u", "v", "p") (default "u" or "u0", "u1", ...)
    output_names: tuple | None = None
    #: the outputs the error metrics measure (default all), e.g. (0, 1) for the velocities of a
    #: flow whose pressure is fixed only up to a constant
    error_outputs: tuple | None = None
    #: hard-constraint transform ``output_transform(self, x, u) -> u``; ``None`` means none.
    #: Define it as a method, e.g. ``return x[:, :1] * (1 - x[:, :1]) * u`` for u = 0 at x = 0, 1.
    output_transform = None

    # ------------------------------------------------------------------ construction

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _check_unknowns_declaration(cls)
        own = cls.__dict__.get("params")
        if own is None:
            return
        if not isinstance(own, dict):
            raise TypeError(f"Problem {cls.__name__}: params must be a dict {{name: default}}, "
                            f"got {type(own).__name__}")
        reserved = {n for n in dir(Problem) if not n.startswith("_")}
        for key in own:
            if not isinstance(key, str) or not key.isidentifier() or keyword.iskeyword(key):
                raise ValueError(f"Problem {cls.__name__}: parameter names must be Python "
                                 f"identifiers, got {key!r} in params")
            if key in reserved or key.startswith("_") or hasattr(cls, key):
                raise ValueError(f"Problem {cls.__name__}: parameter {key!r} in params clashes with an "
                                 f"attribute or method of the class (parameters become attributes); "
                                 f"rename it. Names reserved by Problem: {sorted(reserved)}")

    @classmethod
    def declared_params(cls) -> dict:
        """The settable parameters and their defaults, parents' first (a fresh dict)."""
        merged: dict = {}
        for klass in reversed(cls.__mro__):
            own = klass.__dict__.get("params")
            if own:
                merged.update(own)
        return copy.deepcopy(merged)

    def __init__(self, **overrides: Any):
        cls = type(self)
        self.name = cls.__dict__.get("name") or cls.__name__
        declared = cls.declared_params()
        unknown = sorted(set(overrides) - set(declared))
        if unknown:
            allowed = ", ".join(f"{k}={v!r}" for k, v in declared.items()) or "none"
            raise TypeError(f"Problem {self.name!r}: unknown parameter(s) {', '.join(map(repr, unknown))}; "
                            f"settable parameters (with defaults): {allowed}. Declare new ones in the "
                            f"class attribute params = {{...}}")
        values = dict(declared)
        for key, value in overrides.items():
            default = declared[key]
            # config files write 2 for 2.0; keep float parameters float
            if isinstance(default, float) and isinstance(value, numbers.Integral) \
                    and not isinstance(value, bool):
                value = float(value)
            values[key] = value
        self.params = values
        for key, value in values.items():
            setattr(self, key, value)
        self._unknowns = _build_unknowns(cls, values, self.name)
        self.conditions = copy.deepcopy(list(cls.conditions)) \
            if isinstance(cls.conditions, (list, tuple)) else cls.conditions
        self.setup()
        self.validate()

    def setup(self) -> None:
        """Hook run after the parameters are set and before validation; override it to build
        parameter-dependent attributes (``self.domain = geometry.Interval(0, self.length)``)."""

    def validate(self) -> None:
        """Check the problem definition; raise ``TypeError``/``ValueError`` naming the problem."""
        label = f"Problem {self.name!r}"
        if type(self).residual is Problem.residual:
            raise TypeError(f"{label} must define residual(self, x, u) returning the PDE residual")
        domain = self.domain
        needed = ("dim", "parts", "sample_interior", "sample_boundary")
        if domain is None or not all(hasattr(domain, a) for a in needed):
            raise TypeError(f"{label}: domain must be a kanpde geometry such as "
                            f"geometry.Rectangle([0, 0], [1, 1]), got {domain!r}")
        m = self.output_dim
        if isinstance(m, bool) or not isinstance(m, numbers.Integral) or m < 1:
            raise ValueError(f"{label}: output_dim must be a positive integer, got {m!r}")
        order = self.derivative_order
        if isinstance(order, bool) or order not in (0, 1, 2):
            raise ValueError(f"{label}: derivative_order must be 0, 1 or 2, got {order!r}")
        names = self.output_names
        if names is not None and (not isinstance(names, (tuple, list)) or len(names) != m
                                  or not all(isinstance(n, str) and n.isidentifier() for n in names)):
            raise ValueError(f"{label}: output_names must be {m} identifiers (one per output), got {names!r}")
        picked = self.error_outputs
        if picked is not None and (not isinstance(picked, (tuple, list)) or not picked
                                   or any(isinstance(c, bool) or not isinstance(c, numbers.Integral)
                                          or c not in range(m) for c in picked)):
            raise ValueError(f"{label}: error_outputs must be a non-empty tuple of output indices in "
                             f"0..{m - 1}, got {picked!r}")
        if not isinstance(self.conditions, list):
            raise TypeError(f"{label}: conditions must be a list of kanpde.conditions objects "
                            f"(Dirichlet, Neumann, ...), got {type(self.conditions).__name__}")
        seen: dict[str, int] = {}
        for i, cond in enumerate(self.conditions):
            if not isinstance(cond, Condition):
                raise TypeError(f"{label}: conditions[{i}] must be a kanpde.conditions.Condition "
                                f"(Dirichlet, Neumann, Robin, Periodic, Initial, Data), got {cond!r}")
            cond.check_domain(domain)
            if cond.component >= m:
                raise ValueError(f"{label}: condition {cond.name!r} constrains component "
                                 f"{cond.component} but output_dim is {m}; allowed 0..{m - 1}")
            if cond.name in seen:
                raise ValueError(f"{label}: conditions[{seen[cond.name]}] and conditions[{i}] are both "
                                 f"named {cond.name!r}; give one of them another name=...")
            seen[cond.name] = i

    def __getattr__(self, name: str):
        # only reached when normal lookup fails: an unknown's current value
        unknowns = self.__dict__.get("_unknowns")
        if unknowns is not None and name in unknowns.specs:
            return unknowns.value(name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # ------------------------------------------------------------------ unknowns

    @property
    def unknown_parameters(self):
        """The trainable numbers of :attr:`unknowns` (a ``torch.nn.Module``), or ``None`` when
        the problem has none."""
        return self.__dict__.get("_unknowns")

    @property
    def has_unknowns(self) -> bool:
        """Whether the problem declares unknowns (an inverse problem)."""
        return self.unknown_parameters is not None

    def true_unknowns(self) -> dict:
        """The true values of the unknowns where the problem knows them (test cases):
        ``{name: number}`` for scalars, ``{name: callable(x) -> (N, k)}`` for fields.  Default:
        none."""
        return {}

    # ------------------------------------------------------------------ geometry facts

    @property
    def input_dim(self) -> int:
        """Number of input columns ``d`` (space plus time)."""
        return int(self.domain.dim)

    @property
    def time_axis(self) -> int | None:
        """Column of time in the input (the last one) for space-time problems, else ``None``."""
        return getattr(self.domain, "time_axis", None)

    @property
    def component_names(self) -> tuple[str, ...]:
        """The outputs' names: :attr:`output_names`, else ``("u",)`` or ``("u0", "u1", ...)``."""
        if self.output_names is not None:
            return tuple(self.output_names)
        return ("u",) if self.output_dim == 1 else tuple(f"u{i}" for i in range(self.output_dim))

    @property
    def input_names(self) -> tuple[str, ...]:
        """Names of the input columns: ``x``, ``y``, ``z`` (``x0``, ``x1``, ... beyond three
        spatial dimensions), then ``t`` for space-time problems."""
        n = self.spatial_dim
        names = ("x", "y", "z")[:n] if n <= 3 else tuple(f"x{i}" for i in range(n))
        return names + ("t",) if self.time_axis is not None else names

    @property
    def spatial_dim(self) -> int:
        """Number of spatial input columns."""
        return self.input_dim - (self.time_axis is not None)

    # ------------------------------------------------------------------ the PDE

    def residual(self, x: torch.Tensor, u: torch.Tensor):
        """PDE residual at interior points ``x`` ``(N, d)`` for the network output ``u``
        ``(N, m)``; zero for the solution.

        Return a tensor ``(N,)`` or ``(N, k)``, a tuple/list of them (one per equation) or a
        dict ``{name: tensor}``.  Use :mod:`kanpde.operators` for derivatives.
        """
        raise NotImplementedError(f"Problem {self.name!r} must define residual(self, x, u)")

    def periods(self) -> dict[int, float]:
        """``{axis: period}`` of the problem's :class:`~kanpde.conditions.Periodic` conditions
        (the domain's extent along each periodic axis), e.g. for an exactly periodic input
        embedding (``kanpde.models.PeriodicEmbedding``)."""
        from kanpde.conditions import Periodic

        lo, hi = self.domain.bbox
        return {c.axis: float(hi[c.axis] - lo[c.axis]) for c in self.conditions if isinstance(c, Periodic)}

    def residual_terms(self, x: torch.Tensor, u: torch.Tensor) -> dict[str, torch.Tensor]:
        """:meth:`residual` as named ``(N, k)`` terms.

        A single tensor becomes ``{"residual": r}``, a tuple/list ``{"residual_0": r0, ...}``, a
        dict keeps its keys; ``(N,)`` terms become ``(N, 1)``.  Raises ``ValueError`` naming the
        problem, the term and the shapes when a term is not ``(N,)`` or ``(N, k)``.  A term of
        shape ``(N, N)`` (N >= 16) is rejected as the usual ``(N, 1) - (N,)`` broadcasting slip.
        """
        out = self.residual(x, u)
        label = f"Problem {self.name!r}"
        if isinstance(out, torch.Tensor):
            terms = {"residual": out}
        elif isinstance(out, dict):
            bad = [k for k in out if not isinstance(k, str) or not k]
            if bad:
                raise TypeError(f"{label}: residual() returned a dict with key(s) {bad!r}; "
                                f"keys must be non-empty strings")
            terms = dict(out)
        elif isinstance(out, (tuple, list)):
            terms = {f"residual_{i}": t for i, t in enumerate(out)}
        else:
            raise TypeError(f"{label}: residual() must return a tensor, a tuple/list of tensors or a "
                            f"dict of tensors, got {type(out).__name__}")
        if not terms:
            raise ValueError(f"{label}: residual() returned no terms (an empty {type(out).__name__})")
        n = x.shape[0]
        result = {}
        for key, term in terms.items():
            if not isinstance(term, torch.Tensor):
                raise TypeError(f"{label}: residual term {key!r} must be a tensor of shape ({n},) or "
                                f"({n}, k), got {type(term).__name__}")
            shape = tuple(term.shape)
            if term.dim() not in (1, 2) or shape[0] != n or (term.dim() == 2 and shape[1] < 1):
                raise ValueError(f"{label}: residual term {key!r} has shape {shape}; expected ({n},) "
                                 f"or ({n}, k) for x of shape {tuple(x.shape)}")
            if term.dim() == 2 and shape[1] == n and n >= _BROADCAST_GUARD_MIN_N:
                raise ValueError(f"{label}: residual term {key!r} has shape {shape}; expected ({n}, 1). "
                                 f"A (N, N) result usually comes from subtracting an (N,) tensor from "
                                 f"an (N, 1) one: slice columns as x[:, :1], not x[:, 0]")
            result[key] = term.reshape(n, 1) if term.dim() == 1 else term
        return result

    def exact(self, x: torch.Tensor) -> torch.Tensor:
        """Exact solution at ``x`` ``(N, d)``: ``(N,)`` or ``(N, m)``.  Optional; define it to
        get error metrics.  Write it with torch operations so :meth:`exact_grad` can
        differentiate it."""
        raise NotImplementedError(f"Problem {self.name!r} defines no exact solution")

    @property
    def has_exact(self) -> bool:
        """Whether the problem defines :meth:`exact`."""
        return type(self).exact is not Problem.exact

    @property
    def has_output_transform(self) -> bool:
        """Whether the problem defines a hard-constraint :attr:`output_transform`."""
        return self.output_transform is not None

    def exact_values(self, x: torch.Tensor) -> torch.Tensor:
        """:meth:`exact` at ``x`` checked and shaped ``(N, m)``."""
        u = self.exact(x)
        n, m = x.shape[0], self.output_dim
        if not isinstance(u, torch.Tensor):
            raise TypeError(f"Problem {self.name!r}: exact(x) must return a tensor, got {type(u).__name__}")
        if u.dim() == 1 and m == 1:
            u = u.reshape(n, 1) if u.shape[0] == n else u
        if tuple(u.shape) != (n, m):
            allowed = f"({n},) or ({n}, 1)" if m == 1 else f"({n}, {m})"
            raise ValueError(f"Problem {self.name!r}: exact(x) returned shape {tuple(u.shape)} for x "
                             f"of shape {tuple(x.shape)}; expected {allowed} (output_dim={m})")
        return u

    def exact_grad(self, x: torch.Tensor) -> torch.Tensor:
        """Gradient of the exact solution with respect to all input columns (time included).

        Returns ``(N, d)`` when ``output_dim == 1``, else ``(N, m, d)`` (the layout of
        :func:`kanpde.operators.grad`).  The default differentiates :meth:`exact` with autograd;
        override it if ``exact`` is not written with differentiable torch operations.
        Overrides may return ``(N, d)`` or ``(N, 1, d)`` for scalar problems.
        """
        if not self.has_exact:
            raise NotImplementedError(f"Problem {self.name!r} defines no exact solution")
        xg = x.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            u = self.exact_values(xg)
            if not u.requires_grad:
                raise ValueError(f"Problem {self.name!r}: exact(x) is not differentiable with autograd "
                                 f"(its output is not a torch function of x); write it with torch "
                                 f"operations or override exact_grad(self, x)")
            rows = []
            m = u.shape[1]
            for c in range(m):
                (g,) = torch.autograd.grad(u[:, c].sum(), xg, retain_graph=c < m - 1,
                                           allow_unused=True)
                rows.append(torch.zeros_like(xg) if g is None else g)
        grad = torch.stack(rows, dim=1).detach()
        return grad[:, 0, :] if m == 1 else grad

    # ------------------------------------------------------------------ description

    def describe(self) -> dict:
        """A plain summary (for logs and result files)."""
        return {
            "name": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": dict(self.params),
            "input_dim": self.input_dim,
            "spatial_dim": self.spatial_dim,
            "time_axis": self.time_axis,
            "output_dim": self.output_dim,
            "output_names": list(self.component_names),
            "domain": repr(self.domain),
            "conditions": [repr(c) for c in self.conditions],
            "has_exact": self.has_exact,
            "has_output_transform": self.has_output_transform,
            "unknowns": self._unknowns.describe() if self.has_unknowns else {},
        }

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"{type(self).__name__}({args})"


def _check_unknowns_declaration(cls) -> None:
    own = cls.__dict__.get("unknowns")
    if own is None:
        return
    from kanpde import unknowns

    label = f"Problem {cls.__name__}"
    if not isinstance(own, dict):
        raise TypeError(f"{label}: unknowns must be a dict {{name: initial guess | Unknown(...) | Field(...)}}, "
                        f"got {type(own).__name__}")
    params = cls.declared_params()
    reserved = {n for n in dir(Problem) if not n.startswith("_")}
    unknowns.check_names(own, params, label,
                         lambda name: name in reserved or any(name in k.__dict__ for k in cls.__mro__
                                                               if k is not object))
    for name, spec in own.items():
        unknowns.as_spec(name, spec, label)


def _build_unknowns(cls, params: dict, label: str):
    """The problem's :class:`~kanpde.unknowns.UnknownParameters`, or ``None`` without unknowns."""
    declared: dict = {}
    for klass in reversed(cls.__mro__):
        declared.update(klass.__dict__.get("unknowns") or {})
    if not declared:
        return None
    from kanpde import unknowns

    unknowns.check_names(declared, params, f"Problem {label!r}", lambda name: False)
    return unknowns.UnknownParameters({k: unknowns.as_spec(k, v, f"Problem {label!r}") for k, v in declared.items()})
