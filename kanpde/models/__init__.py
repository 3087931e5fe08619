"""Network ansätze: B-spline KAN, Chebyshev-KAN and MLP.

All three share the constructor style ``Model(widths, ...)``, expose ``n_params`` and can
propagate input derivatives forward with ``forward_jet`` (see :mod:`kanpde.models.base`).
"""
from __future__ import annotations

import importlib

from .base import Jet, Model, check_widths

_LAZY = {
    "KAN": "kan", "KANLayer": "kan",
    "ChebyKAN": "chebykan", "ChebyKANLayer": "chebykan",
    "MLP": "mlp",
}

__all__ = ["Jet", "Model", "check_widths", *_LAZY]


def __getattr__(name: str):
    # Each model lives in its own module, imported on first use.
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
