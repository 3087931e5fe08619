"""The candidate functions an edge of a KAN can be recognised as.

Each candidate is ``f`` in ``c * f(a * x + b) + d``: a torch function (for fine-tuning), a
numpy function (for fitting), the text of ``f(z)`` in sympy syntax (for the formula) and a
complexity (the fit prefers the simplest of equally good candidates, as the KAN paper does).
Functions with a restricted domain (``1/x``, ``sqrt``, ``log``) are made total the usual way
(``sqrt(|z|)``, ``log(|z|)``), which the fit then only uses where it is exact.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

__all__ = ["Candidate", "LIBRARY", "DEFAULT_LIBRARY", "library"]


@dataclass(frozen=True)
class Candidate:
    """One function of the library: ``name``, ``torch_fn``, ``numpy_fn``, ``sympy_text`` (with
    ``{z}`` for the argument) and ``complexity``."""

    name: str
    torch_fn: Callable
    numpy_fn: Callable
    sympy_text: str
    complexity: int

    def text(self, z: str) -> str:
        """``f(z)`` in sympy syntax."""
        return self.sympy_text.format(z=z)


_EPS = 1e-8


def _inv_t(z):
    return 1 / torch.where(z.abs() < _EPS, torch.full_like(z, _EPS), z)


def _inv_n(z):
    return 1 / np.where(np.abs(z) < _EPS, _EPS, z)


_ALL = [
    Candidate("0", lambda z: torch.zeros_like(z), lambda z: np.zeros_like(z), "0", 0),
    Candidate("x", lambda z: z, lambda z: z, "({z})", 1),
    Candidate("x^2", lambda z: z**2, lambda z: z**2, "({z})**2", 2),
    Candidate("x^3", lambda z: z**3, lambda z: z**3, "({z})**3", 3),
    Candidate("x^4", lambda z: z**4, lambda z: z**4, "({z})**4", 3),
    Candidate("1/x", _inv_t, _inv_n, "1/({z})", 2),
    Candidate("sqrt", lambda z: torch.sqrt(z.abs() + 1e-30), lambda z: np.sqrt(np.abs(z)), "sqrt(Abs({z}))", 2),
    Candidate("exp", torch.exp, np.exp, "exp({z})", 2),
    Candidate("log", lambda z: torch.log(z.abs() + _EPS), lambda z: np.log(np.abs(z) + _EPS), "log(Abs({z}))", 2),
    Candidate("sin", torch.sin, np.sin, "sin({z})", 2),
    Candidate("cos", torch.cos, np.cos, "cos({z})", 2),
    Candidate("tanh", torch.tanh, np.tanh, "tanh({z})", 3),
    Candidate("abs", torch.abs, np.abs, "Abs({z})", 3),
    Candidate("gaussian", lambda z: torch.exp(-z**2), lambda z: np.exp(-z**2), "exp(-({z})**2)", 3),
]

#: every candidate by name
LIBRARY: dict[str, Candidate] = {c.name: c for c in _ALL}
#: the names tried by default
DEFAULT_LIBRARY = tuple(LIBRARY)


def library(names=None) -> list[Candidate]:
    """The candidates named (default: all), as a list or a comma-separated string; a string with
    ``|`` gives one library per layer (``"x|cos,sin"``: linear first-layer edges).  An empty or
    unknown name is refused listing the allowed ones."""
    if names is None:
        names = DEFAULT_LIBRARY
    if isinstance(names, str) and "|" in names:  # one library per layer: "x|sin,cos"
        return [library(part) for part in names.split("|")]
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    names = list(names)
    if not names:
        raise ValueError(f"the symbolic library is empty; name at least one of {', '.join(DEFAULT_LIBRARY)}")
    unknown = [n for n in names if n not in LIBRARY]
    if unknown:
        raise ValueError(f"unknown symbolic function(s) {unknown}; the library has {', '.join(DEFAULT_LIBRARY)}")
    return [LIBRARY[n] for n in dict.fromkeys(names)]
