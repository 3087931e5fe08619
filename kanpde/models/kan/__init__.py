"""B-spline Kolmogorov–Arnold networks (KAN paper, Liu et al. 2024, arXiv 2404.19756).

Where things are:

- :mod:`.network`: :class:`KAN`, the stack of layers (grid updates, grid extension, the
  paper's regulariser, activation curves for plots);
- :mod:`.layer`: :class:`KANLayer`, one layer (parameters, forward pass, forward jets);
- :mod:`.bspline`: knots, the B-splines' polynomial pieces, locating inputs on the grid;
- :mod:`.grid`: knot updates, grid extension and the least-squares refits behind them;
- :mod:`.jets`: forward propagation of value, gradient and Hessian diagonal (one autograd node
  per layer);
- :mod:`.nested`: the custom autograd family that nested autograd runs through a layer;
- :mod:`.planar`, :mod:`.rows`: edge splines on planes of points, and wide layers' row
  products;
- :mod:`.dispatch`: the one place that chooses torch nodes or compiled kernels
  (:func:`force_backend` overrides it, :func:`kernel_calls` counts what ran);
- :mod:`.compiled`: builds and loads the C++ kernels of ``csrc/``.
"""
from .bspline import interval_polynomials, uniform_knots
from .compiled import kernel_status, load_kernels
from .dispatch import force_backend, kernel_calls
from .layer import BASE_ACTIVATIONS, KANLayer
from .network import KAN

__all__ = ["KAN", "KANLayer", "BASE_ACTIVATIONS", "interval_polynomials", "uniform_knots", "force_backend",
           "kernel_calls", "load_kernels", "kernel_status"]
