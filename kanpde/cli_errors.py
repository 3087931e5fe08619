"""How the ``kanpde`` command reports a run that did not complete: exit codes, one message,
and the place in the user's own code where it went wrong.

Exit codes (one table, also in the README's "Errors and exit codes"):

====  ===========================================================================================
0     completed (also: stopped by its time limit, target or plateau)
1     configuration error: a bad override or setting, an unknown problem or model, a model that
      does not fit the problem, a run folder that already holds a run -- nothing was trained
2     problem or model error while running: an exception in the problem's code, non-finite
      problem data (source, boundary values, exact solution), a checkpoint that cannot be read
3     diverged: the loss became NaN or infinite or blew up; the last good state is kept
4     a sweep (``-m``) in which some job failed or diverged (``sweep_status.csv``)
====  ===========================================================================================

Hydra's own errors (an unknown key or config group, a malformed override) exit with 1 too.
Set ``KANPDE_FULL_ERROR=1`` for the full Python traceback instead of the one-screen message.
"""
from __future__ import annotations

import linecache
import os
import sysconfig
import traceback
from pathlib import Path

__all__ = ["EXIT_OK", "EXIT_CONFIG", "EXIT_PROBLEM", "EXIT_DIVERGED", "EXIT_SWEEP", "describe", "full_errors"]

EXIT_OK, EXIT_CONFIG, EXIT_PROBLEM, EXIT_DIVERGED, EXIT_SWEEP = 0, 1, 2, 3, 4

_HYDRA_WRAPPERS = ("InstantiationException", "ConfigCompositionException", "HydraException")


def full_errors() -> bool:
    """Whether ``KANPDE_FULL_ERROR`` asks for full tracebacks."""
    return os.environ.get("KANPDE_FULL_ERROR", "0") not in ("", "0")


def _library_dirs() -> list[Path]:
    """Folders whose code is not the user's: Python's own, installed packages, and kanpde's
    engine (its built-in problems count as user code: they are written like a user's)."""
    dirs = {Path(p).resolve() for key in ("stdlib", "platstdlib", "purelib", "platlib")
            if (p := sysconfig.get_paths().get(key))}
    dirs.add(Path(__file__).resolve().parent)
    return sorted(dirs)


def _is_user_file(filename: str, libraries: list[Path]) -> bool:
    if filename.startswith("<"):
        return False
    path = Path(filename).resolve()
    kanpde_dir = Path(__file__).resolve().parent
    if (kanpde_dir / "problems") in path.parents:
        return True
    return not any(lib == path or lib in path.parents for lib in libraries)


def _chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes, outermost first."""
    out, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        out.append(exc)
        exc = exc.__cause__ or (exc.__context__ if not exc.__suppress_context__ else None)
    return out


def user_location(exc: BaseException) -> str | None:
    """``file, line N, in function: source`` of the last frame of user code in the exception's
    traceback (or its causes'), or ``None`` when the error arose in library code only."""
    libraries = _library_dirs()
    for link in reversed(_chain(exc)):  # the innermost cause first: where it started
        frames = [f for f in traceback.extract_tb(link.__traceback__) if _is_user_file(f.filename, libraries)]
        if frames:
            f = frames[-1]
            code = (f.line or linecache.getline(f.filename, f.lineno)).strip()
            return f"{f.filename}, line {f.lineno}, in {f.name}: {code}"
    return None


def describe(exc: BaseException) -> str:
    """One message for a failed run: the user's error first (Hydra's wrappers reduced to their
    first line and the exception they wrap), then where in the user's code it was raised."""
    chain = _chain(exc)
    outer, inner = chain[0], chain[-1]
    if type(outer).__name__ in _HYDRA_WRAPPERS and inner is not outer:
        first = str(outer).splitlines()[0].split(", set env var HYDRA_FULL_ERROR")[0].rstrip(":")
        text = f"{first}: {type(inner).__name__}: {inner}"
    elif type(outer).__name__ in ("MissingMandatoryValue", "InterpolationResolutionError"):
        text = f"a required setting has no value: {str(outer).splitlines()[0]}"
    elif isinstance(outer, (ValueError, TypeError, FileNotFoundError, PermissionError)) or \
            type(outer).__module__.startswith("kanpde"):
        text = str(outer)
    else:
        text = f"{type(outer).__name__}: {outer}"
    where = user_location(exc)
    if where:
        text += f"\n  raised in {where}"
    return text + "\n  (KANPDE_FULL_ERROR=1 shows the full traceback)" if where or inner is not outer else text
