"""Network ansätze: B-spline KAN, Chebyshev-KAN and MLP.

All three share the constructor style ``Model(widths, ...)``, expose ``n_params`` and can
propagate input derivatives forward with ``forward_jet`` (see :mod:`kanpde.models.base`).
"""
from .base import Jet, Model, check_widths
from .kan import KAN, KANLayer
from .chebykan import ChebyKAN
from .mlp import MLP

__all__ = ["Jet", "Model", "check_widths", "KAN", "KANLayer", "ChebyKAN", "MLP"]
