"""Network ansätze: B-spline KAN, Chebyshev-KAN and MLP.

All three share the constructor style ``Model(widths, ...)``, expose ``n_params`` and can
propagate input derivatives forward with ``forward_jet`` (see :mod:`kanpde.models.base`).
The rest of kanpde knows models only through these public names and the protocols of
:mod:`kanpde.models.base` (``GridAdaptive``, ``prepare_kernels``).
"""
from __future__ import annotations

import importlib

from .base import (GridAdaptive, Jet, Model, UsesCompiledKernels, check_widths, prefers_autograd_for_partial_hessians,
                   prepare_kernels, wrapped_models)

_LAZY = {
    "KAN": "kan", "KANLayer": "kan",
    "ChebyKAN": "chebykan", "ChebyKANLayer": "chebykan",
    "MLP": "mlp",
    "ConstrainedOutput": "constrained",
    "FourierFeatures": "features", "PeriodicEmbedding": "features", "TrigonometricFeatures": "features",
    "with_features": "features", "feature_width": "features", "FEATURE_KINDS": "features",
}

__all__ = ["Jet", "Model", "GridAdaptive", "UsesCompiledKernels", "check_widths", "prefers_autograd_for_partial_hessians",
           "prepare_kernels", "wrapped_models", *_LAZY]


def __getattr__(name: str):
    # Each model lives in its own module, imported on first use.
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
