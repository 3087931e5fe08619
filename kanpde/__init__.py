"""kanpde: physics-informed PDE solving with Kolmogorov-Arnold Networks.

Public entry points::

    from kanpde import Problem, geometry, conditions, operators, solve, load
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = {
    "geometry", "sampling", "conditions", "operators", "metrics", "models",
    "training", "io", "plotting", "problem", "runtime", "problems", "reference", "constraints",
    "unknowns", "datafiles", "loading", "xdmf",
}
_ATTRS = {
    "Problem": ("kanpde.problem", "Problem"),
    "solve": ("kanpde.training", "solve"),
    "Result": ("kanpde.training", "Result"),
    "load": ("kanpde.loading", "load"),
    "Run": ("kanpde.loading", "Run"),
    "KAN": ("kanpde.models", "KAN"),
    "ChebyKAN": ("kanpde.models", "ChebyKAN"),
    "MLP": ("kanpde.models", "MLP"),
}

__all__ = sorted(_SUBMODULES | set(_ATTRS) | {"__version__"})


def __getattr__(name: str):
    # Lazy imports keep `import kanpde` cheap and let kanpde.models be used on its own.
    if name in _SUBMODULES:
        return importlib.import_module(f"kanpde.{name}")
    if name in _ATTRS:
        module, attr = _ATTRS[name]
        return getattr(importlib.import_module(module), attr)
    raise AttributeError(f"module 'kanpde' has no attribute {name!r}")


def __dir__():
    return __all__
