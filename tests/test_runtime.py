"""The process-level allocator tuning that kanpde.solve applies."""
from __future__ import annotations

import subprocess
import sys

import pytest

CODE = ("import kanpde.runtime as r; a = r.tune_allocator(); b = r.tune_allocator(); "
        "print(a, b)")


def run(env_value=None, code=CODE):
    """What ``code`` prints in a fresh process, with ``KANPDE_TUNE_MALLOC`` set to ``env_value``
    (unset: ``None``), split into words."""
    import os
    env = dict(os.environ)
    env.pop("KANPDE_TUNE_MALLOC", None)
    if env_value is not None:
        env["KANPDE_TUNE_MALLOC"] = env_value
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    return out.stdout.split()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_tunes_once_per_process_on_linux():
    first, second = run()
    # glibc on Linux: in effect, and a second call reports the same without redoing it
    assert first == second
    assert first in ("True", "False")  # False only on a non-glibc C library (e.g. musl)


def test_environment_variable_disables_it():
    assert run("0") == ["False", "False"]


FRESH_MAPPING = """
import ctypes, ctypes.util
import kanpde.runtime as r
tuned = r.tune_allocator()
libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
libc.malloc.restype, libc.malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
block = libc.malloc(16 << 20)  # a training step's temporary of 16 MiB
# glibc keeps the chunk size before the block; its bit 2 marks a chunk mapped by its own mmap call
print(tuned, bool(ctypes.c_size_t.from_address(block - 8).value & 2))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_tuned_allocator_serves_multi_megabyte_blocks_from_the_heap():
    # glibc's defaults give a fresh process's 16 MiB block its own mmap, which free() hands back to
    # the system, so the next step faults its pages in again; tuned, it comes from the heap and
    # stays in the process for reuse
    tuned, mapped = run(code=FRESH_MAPPING)
    if tuned == "False":
        pytest.skip("not glibc: mallopt has no effect here")
    assert mapped == "False"
    assert run("0", FRESH_MAPPING) == ["False", "True"]
