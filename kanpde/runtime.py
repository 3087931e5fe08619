"""Process-wide runtime settings that make CPU training faster.

A physics-informed training step allocates and frees the same large temporaries (edge
evaluations, jets, gradients: megabytes each at tens of thousands of points) every step.  With
glibc's default settings a freed block of that size is given back to the operating system and
the next step's allocation of it page-faults its memory in again, zero-filled: for a KAN on
16k points that was thousands of page faults and a third of the step time.  :func:`tune_allocator`
tells glibc's ``malloc`` to keep such memory for reuse (the peak memory of a step stays mapped,
which a training process reaches every step anyway).  This is the usual advice for PyTorch on
CPUs (jemalloc or tcmalloc do the same); it is a no-op on other C libraries and platforms.

:func:`kanpde.solve` calls it once per process; set the environment variable
``KANPDE_TUNE_MALLOC=0`` to leave the allocator alone.  ``benchmarks/`` call it too, so they
measure the settings training runs with (every model in them alike).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

__all__ = ["tune_allocator"]

# mallopt parameters (glibc <malloc.h>)
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3

_MIB = 1 << 20
_state: dict[str, bool] = {}


def tune_allocator(force: bool = False) -> bool:
    """Keep freed memory in the process for reuse (glibc ``mallopt``), once per process.

    Sets blocks up to 32 MiB (glibc's maximum) to come from the heap rather than fresh
    ``mmap`` calls, and the heap to be trimmed only when 1 GiB at its top is free.  Returns
    ``True`` if the settings are in effect.  Skipped (``False``) off Linux, on C libraries other
    than glibc, and when the environment variable ``KANPDE_TUNE_MALLOC`` is ``0``, unless
    ``force``.
    """
    if "done" in _state:
        return _state["done"]
    ok = False
    if (force or os.environ.get("KANPDE_TUNE_MALLOC", "1") != "0") and sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
            mallopt = libc.mallopt
            mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
            mallopt.restype = ctypes.c_int
            ok = bool(mallopt(_M_MMAP_THRESHOLD, 32 * _MIB)) and bool(mallopt(_M_TRIM_THRESHOLD, 1024 * _MIB)) \
                and bool(mallopt(_M_TOP_PAD, 64 * _MIB))
        except (OSError, AttributeError):  # not glibc (musl has no mallopt), or no libc found
            ok = False
    _state["done"] = ok
    return ok
