"""Optional compiled CPU kernels (C++, built on first use with ``torch.utils.cpp_extension``).

``csrc/kan_jet.cpp`` and ``csrc/kan_sums.cpp`` hold these kernels, each the compiled form of a
pure-torch node of :mod:`kanpde.models.kan` that it replaces on CPU (where, is decided in
:mod:`~kanpde.models.kan.dispatch`):

- ``forward``/``backward``: the second-order jet of a *wide* layer (:class:`~kanpde.models.kan.jets.RowJet`),
  a row product per channel (value, gradient and Hessian-diagonal channels), done in one pass
  per point instead of a CSR product plus elementwise passes over ``(N, channels, in, k + 2)``
  temporaries;
- ``edge_forward``/``edge_backward``: the second-order jet of an *edge-by-edge* (narrow) layer
  (:class:`~kanpde.models.kan.jets.EdgeJet`), with a tile of points as the SIMD lanes, so no
  ``(out, in, N)`` planes are formed;
- ``planar_adjoint``: the table adjoint of narrow layers' edge splines in nested autograd
  (:func:`~kanpde.models.kan.planar.table_adjoint`);
- ``row_spmm``, ``row_sddmm``, ``row_spmmt``: the three row-sparse products of wide layers'
  nested autograd (:func:`~kanpde.models.kan.rows.spmm` and its partners), vectorised over the
  output columns, instead of a CSR product and chunked gathers with ``bmm``, where the sums
  kernels do not serve;
- ``sums_forward``, ``sums_backward``, ``sums_adjoint`` (``csrc/kan_sums.cpp``): the three
  contractions of the edge-sums family (:class:`~kanpde.models.kan.nested.SumsForward`,
  ``SumsBackward``, ``SumsAdjoint``) that nested autograd through every layer runs, formed point by point from
  the located inputs with no ``(out, in, N)`` planes.

All run with torch's intra-op threads and repeat their results for a thread count.
`load_kernels` compiles them once (about a minute; cached in torch's extension directory,
``TORCH_EXTENSIONS_DIR``, one build per CPU type, torch installation and kernel source, see
:func:`_build_name`) and returns the module, or ``None`` when it cannot be built (no C++
compiler or ``ninja``), or when the environment variable ``KANPDE_NATIVE`` is ``0``.  Without
it every path still works: the layers fall back to the pure-torch nodes, with the same numbers
up to round-off.
"""
from __future__ import annotations

import hashlib
import os
import pathlib
import platform
import sys
import warnings

__all__ = ["load_kernels", "kernel_status"]

#: compiled as one translation unit, in this order (kan_sums.cpp uses kan_jet.cpp's helpers)
_SOURCES = [pathlib.Path(__file__).with_name("csrc") / name for name in ("kan_jet.cpp", "kan_sums.cpp")]
_state: dict = {}


def _build_name() -> str:
    """Extension name per CPU type, torch installation and kernel source: the kernels are compiled for the host
    CPU (``-march=native``), so a home directory shared by different machines (a cluster) must
    not hand one machine's build to another; and a build is tied to the torch it was compiled
    against, so two environments on one machine (a virtual environment and the system's) keep
    a build each instead of rebuilding on every switch."""
    import torch

    # the source's hash too: a new kanpde version builds (and announces) its own
    ident = (f"{platform.machine()} torch {torch.__version__} {pathlib.Path(torch.__file__).resolve().parent} "
             f"{hashlib.sha1(b''.join(src.read_bytes() for src in _SOURCES)).hexdigest()} ")
    try:
        with open("/proc/cpuinfo") as f:
            lines = [ln for ln in f if ln.startswith(("model name", "flags"))]
        ident += "".join(sorted(set(lines)))
    except OSError:
        ident += platform.processor()
    return "kanpde_kan_jet_" + hashlib.sha1(ident.encode()).hexdigest()[:10]


def kernel_status() -> str:
    """``"loaded"``, ``"disabled"`` (``KANPDE_NATIVE=0``), ``"not tried"`` or why the build
    failed."""
    if os.environ.get("KANPDE_NATIVE", "1") == "0":
        return "disabled"
    if "module" not in _state:
        return "not tried"
    return "loaded" if _state["module"] is not None else f"unavailable: {_state.get('error', '?')}"


def load_kernels():
    """The compiled kernels (one extension module with every kernel of the module docstring),
    or ``None``.  The first call of a process may compile them."""
    if os.environ.get("KANPDE_NATIVE", "1") == "0":
        return None
    if "module" in _state:
        return _state["module"]
    _state["module"] = None
    try:
        from torch.utils import cpp_extension

        name = _build_name()
        try:
            built = any(pathlib.Path(cpp_extension._get_build_directory(name, False)).glob("*.so"))
        except Exception:  # private helper: only decides whether to announce the build
            built = True
        if not built:
            print("kanpde: compiling the CPU jet kernels (first use on this machine, about a minute; "
                  "KANPDE_NATIVE=0 skips it)", file=sys.stderr, flush=True)
        flags = ["-O3", "-march=native", "-fopenmp-simd"] if sys.platform.startswith("linux") else ["-O3"]
        _state["module"] = cpp_extension.load_inline(
            name, cpp_sources=[src.read_text() for src in _SOURCES],
            functions=["forward", "backward", "edge_forward", "edge_backward", "planar_adjoint", "row_spmm",
                       "row_sddmm", "row_spmmt", "sums_forward", "sums_backward", "sums_adjoint"],
            extra_cflags=flags, verbose=False)
    except Exception as exc:  # no compiler, no ninja, unsupported platform, ...
        _state["error"] = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1] if str(exc).strip() else ''}"
        warnings.warn(f"kanpde: the compiled CPU kernels are unavailable ({_state['error']}); KAN layers "
                      f"use the slower pure-torch nodes. Set KANPDE_NATIVE=0 to skip the attempt.",
                      RuntimeWarning, stacklevel=2)
    return _state["module"]
