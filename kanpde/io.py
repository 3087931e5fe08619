"""Files a run leaves on disk: ``results.h5``, checkpoints, and the atomic writes behind them.

Everything here writes *atomically*: data go to a temporary file in the destination folder,
which is flushed to disk (``fsync``) and then renamed over the destination with
:func:`os.replace`.  A crash or an exception mid-write leaves the previous file untouched and
no temporary file behind, so a report never reads half a ``results.h5``.

``results.h5`` layout (the contract between a run and the reports that read it)::

    /                   attributes: problem, model, n_params, wall_time_s, seed,
                        kanpde_version, config_yaml, ... (whatever the caller passes),
                        plus the format marker ``kanpde_results_format``
    /metrics            attributes: rel_l2, rel_h1, mse, linf, l2, h1 (floats)
    /history/<name>     equal-length 1-D datasets: step, time_s, loss, rel_l2, rel_h1,
                        loss_<term> ...
    /field/x            (N, d) evaluation points
    /field/u_pred       (N, m) network prediction at x
    /field/u_exact      (N, m) exact solution at x (absent when the problem has none)
    /field/unknown_<f>  (N, k) an inverse problem's learned field f at x (``_exact``: its truth)
    /field/xdmf_*       copies and reshapes of x and u for the XDMF files beside results.h5
                        (:mod:`kanpde.xdmf`)

An inverse problem adds the root attribute ``unknown_<name>`` (each scalar's final value) and
``history/unknown_<name>``.

This module imports neither :mod:`kanpde.training` nor :mod:`kanpde.models`.
"""
from __future__ import annotations

import contextlib
import numbers
import os
import random
import secrets
import tempfile
from dataclasses import dataclass, field as dataclass_field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import h5py
import numpy as np
import torch

__all__ = [
    "RESULTS_FORMAT",
    "ResultsFile",
    "ResultsFormatError",
    "CheckpointError",
    "FolderNotWritableError",
    "atomic_path",
    "atomic_write",
    "write_results",
    "read_results",
    "save_checkpoint",
    "load_checkpoint",
    "rng_state",
    "set_rng_state",
    "check_writable",
]

#: Version of the ``results.h5`` layout, stored in the root attribute ``kanpde_results_format``.
RESULTS_FORMAT = 1
_FORMAT_ATTR = "kanpde_results_format"
_RNG_KEYS = ("torch", "torch_cuda", "numpy", "python")


class ResultsFormatError(ValueError):
    """A file exists but is not a readable kanpde ``results.h5`` (the message says why)."""


class CheckpointError(RuntimeError):
    """A checkpoint file exists but cannot be loaded (the message names the file)."""


class FolderNotWritableError(OSError):
    """An output folder cannot be created or written (the message names the folder)."""


# --------------------------------------------------------------------------------------
# Atomic writes
# --------------------------------------------------------------------------------------

def _fsync_path(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _fsync_dir(folder: Path) -> None:
    # Makes the rename itself durable; directories cannot be opened this way on Windows.
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _create_temp(target: Path) -> Path:
    # Not tempfile.mkstemp: its files are mode 0600, and the committed file should get the
    # usual permissions (0666 minus the umask) so collaborators can read results.
    for _ in range(100):
        tmp = target.parent / f".{target.name}.{secrets.token_hex(4)}.tmp"
        try:
            fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(f"could not create a temporary file next to {str(target)!r}")


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Context manager yielding a temporary path next to ``path``; commits it on success.

    The parent folder of ``path`` is created if needed.  Write the complete file to the
    yielded path inside the ``with`` block.  On normal exit the temporary file is flushed to
    disk and renamed over ``path`` with :func:`os.replace` (atomic on POSIX and Windows); if
    the block raises, the temporary file is removed, ``path`` keeps its previous content and
    the exception propagates.  The temporary name is hidden (``.<name>.<random>.tmp``) and
    carries no ``.h5``/``.png`` suffix, so pass an explicit format to writers that guess it
    from the suffix.

    Example::

        with atomic_path("run/results.json") as tmp:
            tmp.write_text(text)
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(f"cannot write file {str(target)!r}: it is an existing directory")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = _create_temp(target)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(
                f"atomic write of {str(target)!r}: the temporary file {str(tmp)!r} was removed "
                "inside the with-block, nothing to commit")
        _fsync_path(tmp)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    _fsync_dir(target.parent)


def atomic_write(path: str | os.PathLike, writer: Callable[[Path], Any]) -> Path:
    """Call ``writer(tmp_path)`` to write a complete file, then atomically move it to ``path``.

    Same guarantees as :func:`atomic_path`: if ``writer`` raises, ``path`` is untouched and no
    temporary file remains.  Returns ``Path(path)``.
    """
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)


# --------------------------------------------------------------------------------------
# results.h5
# --------------------------------------------------------------------------------------

@dataclass
class ResultsFile:
    """The content of one ``results.h5``, as plain Python and numpy objects.

    - ``attrs``: root attributes (``problem``, ``model``, ``n_params``, ``seed`` ...); strings
      as ``str``, scalars as Python ``int``/``float``/``bool``, arrays as ``np.ndarray``.
    - ``metrics``: name -> ``float`` (``rel_l2``, ``rel_h1``, ``mse``, ``linf``, ``l2``, ``h1``).
    - ``history``: name -> 1-D ``np.ndarray``, all of equal length.
    - ``field``: ``x`` (N, d), ``u_pred`` (N, m) and, when known, ``u_exact`` (N, m); empty when
      the run wrote no field.
    - ``path``: the file it was read from.
    """

    attrs: dict[str, Any]
    metrics: dict[str, float]
    history: dict[str, np.ndarray]
    field: dict[str, np.ndarray] = dataclass_field(default_factory=dict)
    path: Path | None = None


def _as_array(value: Any, what: str) -> np.ndarray:
    """numpy view of an array-like (torch tensors are detached and moved to the CPU)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value)
    except Exception as exc:  # pragma: no cover - exotic array-likes
        raise TypeError(f"{what} must be array-like, got {type(value).__name__}") from exc
    if arr.dtype == object or arr.dtype.kind not in "biuf":
        raise TypeError(f"{what} must hold numbers (bool, int or float), got dtype {arr.dtype}")
    return arr


def _attr_value(key: str, value: Any) -> Any:
    """Convert one root attribute to something h5py stores and reads back unchanged."""
    if isinstance(value, (str, bool, np.bool_)):
        return value
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, (list, tuple, np.ndarray)) or hasattr(value, "detach"):
        return _as_array(value, f"attribute {key!r}")
    raise TypeError(
        f"attribute {key!r} must be a str, bool, int, float or numeric array, "
        f"got {type(value).__name__}: {value!r}")


def _from_h5_attr(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _check_history(history: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, values in history.items():
        arr = _as_array(values, f"history dataset {name!r}")
        if arr.ndim != 1:
            raise ValueError(f"history dataset {name!r} must be 1-D, got shape {arr.shape}")
        arrays[str(name)] = arr
    if arrays:
        ref = "step" if "step" in arrays else next(iter(arrays))
        n_ref = len(arrays[ref])
        for name, arr in arrays.items():
            if len(arr) != n_ref:
                raise ValueError(
                    f"history dataset {name!r} has length {len(arr)} but {ref!r} has length "
                    f"{n_ref}; all history datasets must have the same length")
    return arrays


def _check_field(field: Mapping[str, Any]) -> dict[str, np.ndarray]:
    arrays = {str(k): _as_array(v, f"field dataset {k!r}") for k, v in field.items() if v is not None}
    for required in ("x", "u_pred"):
        if required not in arrays:
            raise ValueError(f"field needs a {required!r} dataset, got keys {sorted(arrays)}")
    x, u_pred = arrays["x"], arrays["u_pred"]
    if x.ndim != 2:
        raise ValueError(f"field dataset 'x' must have shape (N, d), got {x.shape}")
    if u_pred.ndim != 2 or u_pred.shape[0] != x.shape[0]:
        raise ValueError(
            f"field dataset 'u_pred' must have shape (N, m) with N = {x.shape[0]} (rows of x), "
            f"got {u_pred.shape}")
    if "u_exact" in arrays and arrays["u_exact"].shape != u_pred.shape:
        raise ValueError(
            f"field dataset 'u_exact' must have the shape of 'u_pred' {u_pred.shape}, "
            f"got {arrays['u_exact'].shape}")
    return arrays


def write_results(
    path: str | os.PathLike,
    *,
    attrs: Mapping[str, Any],
    metrics: Mapping[str, Any],
    history: Mapping[str, Any],
    field: Mapping[str, Any] | None,
) -> Path:
    """Write a run's ``results.h5`` atomically (layout in the module docstring); return its path.

    Arguments:

    - ``attrs``: root attributes.  ``str`` (and ``Path``, stored as ``str``), ``bool``,
      ``int``, ``float`` and numeric arrays are stored as HDF5 attributes; entries whose value is
      ``None`` are **skipped**, so :func:`read_results` returns them as absent keys.  The name
      ``kanpde_results_format`` is reserved.
    - ``metrics``: name -> real number, stored as float attributes of ``/metrics``; ``None``
      entries are skipped, NaN is kept (a metric that could not be computed).
    - ``history``: name -> 1-D array-like of numbers (numpy arrays, lists, CPU or GPU tensors),
      all of the same length (``ValueError`` naming the offending dataset and both lengths
      otherwise).  Dtypes are kept (an integer ``step`` stays integer).
    - ``field``: ``x`` (N, d), ``u_pred`` (N, m), optional ``u_exact`` (N, m) (omit it or pass
      ``None`` when the problem has no exact solution) and any further numeric arrays; or
      ``None`` for a run that produced no field (e.g. one that failed before evaluation).

    All inputs are validated before anything touches the disk.
    """
    root_attrs = {}
    for key, value in attrs.items():
        if key == _FORMAT_ATTR:
            raise ValueError(f"attribute name {_FORMAT_ATTR!r} is reserved for the file format marker")
        if value is not None:
            root_attrs[str(key)] = _attr_value(str(key), value)
    metric_values = {}
    for key, value in metrics.items():
        if value is None:
            continue
        if hasattr(value, "item") and not isinstance(value, (str, bytes)):
            try:
                value = value.item()  # numpy / torch scalars
            except (ValueError, RuntimeError):
                raise TypeError(f"metric {key!r} must be a scalar, got an array of shape "
                                f"{tuple(getattr(value, 'shape', ()))}") from None
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"metric {key!r} must be a real number, got {type(value).__name__}: {value!r}")
        metric_values[str(key)] = float(value)
    history_arrays = _check_history(history)
    field_arrays = _check_field(field) if field is not None else None

    def _write(tmp: Path) -> None:
        with h5py.File(tmp, "w", track_order=True) as h5:
            h5.attrs[_FORMAT_ATTR] = RESULTS_FORMAT
            for key, value in root_attrs.items():
                h5.attrs[key] = value
            group = h5.create_group("metrics", track_order=True)
            for key, value in metric_values.items():
                group.attrs[key] = value
            group = h5.create_group("history", track_order=True)
            for key, arr in history_arrays.items():
                group.create_dataset(key, data=arr)
            if field_arrays is not None:
                group = h5.create_group("field", track_order=True)
                for key, arr in field_arrays.items():
                    group.create_dataset(key, data=arr)

    return atomic_write(path, _write)


def read_results(path: str | os.PathLike) -> ResultsFile:
    """Read a ``results.h5`` written by :func:`write_results` into a :class:`ResultsFile`.

    Raises ``FileNotFoundError`` if ``path`` does not exist and :class:`ResultsFormatError`
    (a ``ValueError``) if it is not an HDF5 file or lacks the kanpde format marker or a
    required group; the message names the path and what is missing.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"results file {str(p)!r} does not exist")
    if p.is_dir():
        raise ResultsFormatError(f"results file {str(p)!r} is a directory, expected an HDF5 file")
    try:
        h5 = h5py.File(p, "r")
    except OSError as exc:
        raise ResultsFormatError(f"{str(p)!r} is not a readable HDF5 file: {exc}") from exc
    with h5:
        if _FORMAT_ATTR not in h5.attrs:
            raise ResultsFormatError(
                f"{str(p)!r} is not a kanpde results file: root attribute {_FORMAT_ATTR!r} is missing")
        version = int(h5.attrs[_FORMAT_ATTR])
        if version > RESULTS_FORMAT:
            raise ResultsFormatError(
                f"{str(p)!r} uses results format {version}, newer than this kanpde "
                f"(format {RESULTS_FORMAT}); upgrade kanpde to read it")
        for group in ("metrics", "history"):
            if not isinstance(h5.get(group), h5py.Group):
                raise ResultsFormatError(f"{str(p)!r} is not a complete kanpde results file: group {group!r} is missing")
        attrs = {k: _from_h5_attr(v) for k, v in h5.attrs.items() if k != _FORMAT_ATTR}
        metrics = {k: float(v) for k, v in h5["metrics"].attrs.items()}
        history = {k: np.asarray(ds[()]) for k, ds in h5["history"].items()}
        field = {}
        if isinstance(h5.get("field"), h5py.Group):
            field = {k: np.asarray(ds[()]) for k, ds in h5["field"].items()}
    return ResultsFile(attrs=attrs, metrics=metrics, history=history, field=field, path=p)


# --------------------------------------------------------------------------------------
# Checkpoints and random-number-generator state
# --------------------------------------------------------------------------------------

def save_checkpoint(path: str | os.PathLike, state: Mapping[str, Any]) -> Path:
    """Save ``state`` (model/optimizer ``state_dict``s, step, :func:`rng_state` ...) atomically
    with :func:`torch.save`; return the path.  A crash mid-save leaves the previous checkpoint
    intact."""
    if not isinstance(state, Mapping):
        raise TypeError(f"checkpoint state must be a dict, got {type(state).__name__}")
    state = dict(state)
    return atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_checkpoint(path: str | os.PathLike, map_location: Any = "cpu") -> dict:
    """Load a checkpoint written by :func:`save_checkpoint`.

    Tensors are mapped to ``map_location`` (default CPU).  Our checkpoints hold numpy and
    Python RNG states, which are not plain tensors, so the file is loaded with
    ``weights_only=False`` (passed explicitly: torch >= 2.6 defaults to ``True``).  That
    unpickles arbitrary objects: only load checkpoints you (or your runs) wrote.

    Raises ``FileNotFoundError`` naming the path if it is missing and :class:`CheckpointError`
    naming the path (chained to torch's exception) if it is corrupt or not a dict.
    """
    p = Path(path)
    if not p.exists():
        raise FileNotFoundError(f"checkpoint {str(p)!r} does not exist")
    if p.is_dir():
        raise CheckpointError(f"checkpoint {str(p)!r} is a directory, expected a file")
    try:
        state = torch.load(p, map_location=map_location, weights_only=False)
    except Exception as exc:
        raise CheckpointError(
            f"cannot load checkpoint {str(p)!r} (corrupt, truncated or not a torch file): "
            f"{type(exc).__name__}: {exc}") from exc
    if not isinstance(state, dict):
        raise CheckpointError(f"checkpoint {str(p)!r} holds a {type(state).__name__}, expected a dict")
    return state


def rng_state() -> dict[str, Any]:
    """Snapshot of every global random generator a run may draw from.

    Keys: ``"torch"`` (CPU generator, a ``uint8`` tensor), ``"torch_cuda"`` (list with one
    state per CUDA device, only when CUDA is available), ``"numpy"`` (the legacy global
    ``np.random`` state) and ``"python"`` (:func:`random.getstate`).  Store it in a checkpoint
    and pass it to :func:`set_rng_state` on resume to continue bit-identically.  Explicit
    ``np.random.Generator`` / ``torch.Generator`` objects are not global and are not captured.
    """
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["torch_cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: Mapping[str, Any]) -> None:
    """Restore generators from a :func:`rng_state` snapshot (inverse of :func:`rng_state`).

    Keys that are absent are left alone.  CUDA states are restored for the devices present
    (the first ``min(saved, available)`` devices) and ignored when CUDA is unavailable, e.g.
    when a GPU run is resumed on a CPU, where they would be unused anyway.  Unknown keys raise
    ``ValueError`` naming them (a typo would otherwise silently break reproducibility).
    """
    if not isinstance(state, Mapping):
        raise TypeError(f"RNG state must be a dict from rng_state(), got {type(state).__name__}")
    unknown = sorted(set(state) - set(_RNG_KEYS))
    if unknown:
        raise ValueError(f"unknown RNG state keys {unknown}; expected some of {list(_RNG_KEYS)}")
    if "torch" in state:
        torch.set_rng_state(torch.as_tensor(state["torch"], dtype=torch.uint8).cpu())
    if "torch_cuda" in state and torch.cuda.is_available():
        saved = list(state["torch_cuda"])
        for device in range(min(len(saved), torch.cuda.device_count())):
            torch.cuda.set_rng_state(torch.as_tensor(saved[device], dtype=torch.uint8).cpu(), device)
    if "numpy" in state:
        np.random.set_state(state["numpy"])
    if "python" in state:
        py_state = state["python"]
        # pickling keeps tuples, but a round trip through another format may yield lists
        if isinstance(py_state, list):
            py_state = (py_state[0], tuple(py_state[1]), *py_state[2:])
        random.setstate(py_state)


# --------------------------------------------------------------------------------------
# Output folders
# --------------------------------------------------------------------------------------

def check_writable(folder: str | os.PathLike) -> Path:
    """Make sure ``folder`` exists (creating it and its parents) and accepts new files.

    Writes and removes a small probe file, so permission problems, read-only file systems
    and paths through an existing *file* are caught before training starts rather than when
    the results are saved.  Returns the folder as a ``Path``; raises
    :class:`FolderNotWritableError` (an ``OSError``) naming the folder and the cause.
    """
    p = Path(folder)
    if p.exists() and not p.is_dir():
        raise FolderNotWritableError(f"output folder {str(p)!r} exists but is not a directory")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise FolderNotWritableError(
            f"output folder {str(p)!r} cannot be created: {type(exc).__name__}: {exc}") from exc
    try:
        fd, probe = tempfile.mkstemp(dir=p, prefix=".kanpde-write-probe.", suffix=".tmp")
        try:
            os.write(fd, b"kanpde")
        finally:
            os.close(fd)
            os.unlink(probe)
    except OSError as exc:
        raise FolderNotWritableError(
            f"output folder {str(p)!r} is not writable: {type(exc).__name__}: {exc}") from exc
    return p
