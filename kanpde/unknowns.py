"""Unknowns of an inverse problem: PDE coefficients learned together with the solution.

A problem declares them in its class attribute ``unknowns`` and uses them in ``residual`` as
attributes, like its parameters::

    from kanpde.unknowns import Unknown, Field

    class InversePoisson(Problem):
        unknowns = {"kappa": 1.0}                              # a scalar, initial guess 1.0
        # unknowns = {"kappa": Unknown(1.0, positive=True)}    # kept > 0
        # unknowns = {"f": Field(widths=[2, 8, 1])}            # a field: its own small KAN

        def residual(self, x, u):
            return -self.kappa * op.laplacian(u, x) - self.f(x)

A scalar is a 0-d tensor (``self.kappa``) that carries the gradient of the loss to its
parameter; a field is a network (``self.f(x)`` gives ``(N, k)``).  The trainer optimises them
with the model's parameters in every stage (an ``lr`` of their own applies to one-step
optimizers such as Adam; L-BFGS takes one step for all), saves them in the checkpoint and
records them in ``results.h5``.  A problem that knows the truth (a test case) says so with
``true_unknowns(self) -> {name: value or callable}``, and the run reports the recovery error.

This module imports :mod:`kanpde.models` only to build a field's network.
"""
from __future__ import annotations

import keyword
import math
import numbers
from typing import Any, Mapping

import torch
from torch import nn

__all__ = ["Unknown", "Field", "UnknownParameters", "FIELD_MODELS"]

#: the networks a :class:`Field` can be
FIELD_MODELS = ("kan", "mlp", "chebykan")


def _real(value: Any, owner: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)):
        raise ValueError(f"{owner}: {what} must be a finite number, got {value!r}")
    return float(value)


def _learning_rate(lr: Any, owner: str) -> float | None:
    if lr is None:
        return None
    lr = _real(lr, owner, "lr")
    if lr <= 0:
        raise ValueError(f"{owner}: lr must be positive (or None: the stage's learning rate), got {lr!r}")
    return lr


class Unknown:
    """A scalar unknown with an initial guess.

    ``positive=True`` keeps it above zero (it is ``exp`` of the trained number); ``bounds=(lo,
    hi)`` keeps it strictly inside the interval (``lo + (hi - lo) * sigmoid``); otherwise it is
    the trained number itself.  ``lr``: its own learning rate in one-step optimizer stages
    (Adam), ``None`` for the stage's.
    """

    def __init__(self, initial: float, *, bounds: tuple[float, float] | None = None, positive: bool = False,
                 lr: float | None = None):
        owner = "Unknown"
        self.initial = _real(initial, owner, "initial")
        self.positive = bool(positive)
        self.lr = _learning_rate(lr, owner)
        if bounds is not None:
            if not isinstance(bounds, (tuple, list)) or len(bounds) != 2:
                raise ValueError(f"{owner}: bounds must be a pair (lo, hi), got {bounds!r}")
            lo, hi = (_real(b, owner, "bounds") for b in bounds)
            if not lo < hi:
                raise ValueError(f"{owner}: bounds must have lo < hi, got {bounds!r}")
            if not lo < self.initial < hi:
                raise ValueError(f"{owner}: the initial guess {self.initial!r} must lie strictly inside "
                                 f"bounds {bounds!r}")
            bounds = (lo, hi)
        if self.positive and self.initial <= 0:
            raise ValueError(f"{owner}: a positive unknown needs a positive initial guess, got {self.initial!r}")
        self.bounds = bounds

    def raw_initial(self) -> float:
        """The trained number that gives the initial guess."""
        if self.bounds is not None:
            lo, hi = self.bounds
            s = (self.initial - lo) / (hi - lo)
            return math.log(s / (1 - s))
        return math.log(self.initial) if self.positive else self.initial

    def value(self, raw: torch.Tensor) -> torch.Tensor:
        """The unknown's value from its trained number (differentiable)."""
        if self.bounds is not None:
            lo, hi = self.bounds
            return lo + (hi - lo) * torch.sigmoid(raw)
        return torch.exp(raw) if self.positive else raw

    def __repr__(self) -> str:
        extra = "".join([f", bounds={self.bounds}" if self.bounds else "",
                         ", positive=True" if self.positive else "", f", lr={self.lr}" if self.lr else ""])
        return f"Unknown({self.initial!r}{extra})"


class Field:
    """An unknown function of the inputs (a source term, a conductivity), given by its own
    network: ``model`` one of :data:`FIELD_MODELS` with layer ``widths`` (first = the problem's
    input dimension, last = the number of components), further keyword ``settings`` for the
    network (e.g. ``grid_size=5`` for a KAN).  Its initial weights come from ``seed`` (not from
    the global random state, so declaring a field does not change the solution network's
    initialisation).  ``lr``: its own learning rate in one-step optimizer stages."""

    def __init__(self, widths, model: str = "kan", *, lr: float | None = None, seed: int = 0, **settings):
        owner = "Field"
        if not isinstance(widths, (list, tuple)) or len(widths) < 2 or any(
                isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1 for w in widths):
            raise ValueError(f"{owner}: widths must be a list of at least two positive integers "
                             f"(inputs, hidden..., outputs), e.g. [2, 8, 1]; got {widths!r}")
        if model not in FIELD_MODELS:
            raise ValueError(f"{owner}: model must be one of {FIELD_MODELS}, got {model!r}")
        self.widths = [int(w) for w in widths]
        self.model = model
        self.lr = _learning_rate(lr, owner)
        self.seed = int(seed)
        self.settings = dict(settings)

    def build(self) -> nn.Module:
        """A new network for this field (the same weights for the same seed)."""
        from . import models

        klass = {"kan": models.KAN, "mlp": models.MLP, "chebykan": models.ChebyKAN}[self.model]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            return klass(list(self.widths), **self.settings).double()

    def __repr__(self) -> str:
        extra = "".join(f", {k}={v!r}" for k, v in self.settings.items())
        return f"Field({self.widths}, model={self.model!r}{extra}{f', lr={self.lr}' if self.lr else ''})"


def as_spec(name: str, spec: Any, owner: str) -> Unknown | Field:
    """A declared unknown as :class:`Unknown` or :class:`Field` (a number is an initial guess)."""
    if isinstance(spec, (Unknown, Field)):
        return spec
    if isinstance(spec, numbers.Real) and not isinstance(spec, bool):
        return Unknown(spec)
    raise TypeError(f"{owner}: unknown {name!r} must be a number (the initial guess), an Unknown(...) or a "
                    f"Field(...), got {spec!r}")


def check_names(unknowns: Mapping, params: Mapping, owner: str, taken) -> None:
    """Refuse unknown names that are not identifiers or that clash with a parameter or an
    attribute of the problem class (``taken(name)``)."""
    for name in unknowns:
        if not isinstance(name, str) or not name.isidentifier() or keyword.iskeyword(name) or name.startswith("_"):
            raise ValueError(f"{owner}: unknown names must be Python identifiers not starting with '_', "
                             f"got {name!r}")
        if name in params:
            raise ValueError(f"{owner}: unknown {name!r} has the same name as a parameter (params = "
                             f"{dict(params)!r}); a name is either a set parameter or a learned unknown")
        if taken(name):
            raise ValueError(f"{owner}: unknown {name!r} clashes with an attribute or method of the class; "
                             f"rename it")


class UnknownParameters(nn.Module):
    """The trainable numbers of a problem's unknowns: one parameter per scalar, one network per
    field.  :meth:`value` gives what the residual sees."""

    def __init__(self, specs: Mapping[str, Unknown | Field]):
        super().__init__()
        self.specs = dict(specs)
        self.scalars = nn.ParameterDict({
            name: nn.Parameter(torch.tensor(spec.raw_initial(), dtype=torch.float64))
            for name, spec in self.specs.items() if isinstance(spec, Unknown)})
        self.fields = nn.ModuleDict({name: spec.build() for name, spec in self.specs.items()
                                     if isinstance(spec, Field)})

    def value(self, name: str):
        """``name``'s value: a 0-d tensor (scalar) or the field's network."""
        if name in self.fields:
            return self.fields[name]
        return self.specs[name].value(self.scalars[name])

    def scalar_values(self) -> dict[str, float]:
        """The scalars' current values."""
        with torch.no_grad():
            return {name: float(self.value(name)) for name in self.scalars}

    def parameter_groups(self) -> list[tuple[float | None, list[nn.Parameter]]]:
        """``(lr or None, parameters)`` per unknown, in declaration order."""
        groups = []
        for name, spec in self.specs.items():
            params = [self.scalars[name]] if name in self.scalars else list(self.fields[name].parameters())
            groups.append((spec.lr, params))
        return groups

    def describe(self) -> dict[str, str]:
        """``{name: repr(spec)}`` (for run signatures and logs)."""
        return {name: repr(spec) for name, spec in self.specs.items()}
