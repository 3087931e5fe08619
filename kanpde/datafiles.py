"""Arrays from the files users bring: observations, points to predict at.

Three formats, chosen by the file's suffix:

- ``.h5`` / ``.hdf5``: datasets by name (``"x"``, ``"obs/u"``);
- ``.npz``: arrays by key;
- ``.csv``: a header row of column names, then one row per point; an array is one column
  (``"u"``) or several stacked side by side (``["x", "y"]``).

Every array is read as float64; a missing name, a wrong shape or a non-finite value is refused
with a message naming the file, the array and what was expected.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

__all__ = ["DataFileError", "SUFFIXES", "read_array", "read_points"]

#: suffixes this module reads
SUFFIXES = (".h5", ".hdf5", ".npz", ".csv")


class DataFileError(ValueError):
    """A data file is missing, unreadable, or holds arrays of the wrong name, shape or values."""


def _suffix(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise DataFileError(f"{str(path)!r}: unsupported file type {suffix or '(none)'!r}; use one of {SUFFIXES}")
    return suffix


def _csv_columns(path: Path) -> dict[str, np.ndarray]:
    import csv

    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    rows = [r for r in rows if r and not r[0].lstrip().startswith("#")]
    if not rows:
        raise DataFileError(f"{str(path)!r}: the CSV file is empty; it needs a header row of column names")
    header = [h.strip() for h in rows[0]]
    try:
        values = np.array([[float(v) for v in r] for r in rows[1:]], dtype=np.float64).reshape(-1, len(header))
    except ValueError as exc:
        raise DataFileError(f"{str(path)!r}: every row after the header must hold {len(header)} numbers "
                            f"(columns {header}): {exc}") from None
    return {name: values[:, i] for i, name in enumerate(header)}


def _read(path: Path, name: str | Sequence[str]) -> np.ndarray:
    suffix = _suffix(path)
    names = [name] if isinstance(name, str) else list(name)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise DataFileError(f"{str(path)!r}: an array name must be a non-empty string or a list of them, got {name!r}")
    if suffix == ".csv":
        columns = _csv_columns(path)
        missing = [n for n in names if n not in columns]
        if missing:
            raise DataFileError(f"{str(path)!r}: no column {missing[0]!r}; the columns are {list(columns)}")
        return np.stack([columns[n] for n in names], axis=1)
    if len(names) != 1:
        raise DataFileError(f"{str(path)!r}: several names {names} stack columns of a CSV file only; name one "
                            f"array of the {suffix} file")
    if suffix == ".npz":
        with np.load(path, allow_pickle=False) as data:
            if names[0] not in data.files:
                raise DataFileError(f"{str(path)!r}: no array {names[0]!r}; the arrays are {data.files}")
            arr = data[names[0]]
    else:
        import h5py

        with h5py.File(path, "r") as h5:
            found = h5.get(names[0])
            if not isinstance(found, h5py.Dataset):
                listing = []
                h5.visititems(lambda n, obj: listing.append(n) if isinstance(obj, h5py.Dataset) else None)
                raise DataFileError(f"{str(path)!r}: no dataset {names[0]!r}; the datasets are {listing}")
            arr = found[()]
    if not (isinstance(arr, np.ndarray) and arr.dtype.kind in "biuf"):
        raise DataFileError(f"{str(path)!r}: array {names[0]!r} does not hold numbers")
    return np.asarray(arr, dtype=np.float64)


def read_array(path: str | os.PathLike, name: str | Sequence[str], *, columns: int | None = None,
               rows: int | None = None) -> np.ndarray:
    """Array ``name`` of file ``path`` as float64 ``(N, k)`` (a 1-D array becomes ``(N, 1)``).

    ``columns`` and ``rows``, where given, are the required ``k`` and ``N``.  Raises
    :class:`DataFileError` (a ``ValueError``) naming the file and the array for a missing file
    or name, a wrong shape, or NaN/infinite values (with the first bad row)."""
    path = Path(path).expanduser()
    _suffix(path)
    if not path.is_file():
        raise DataFileError(f"{str(path)!r}: no such file")
    try:
        arr = _read(path, name)
    except DataFileError:
        raise
    except (OSError, ValueError) as exc:
        raise DataFileError(f"{str(path)!r}: cannot be read as a {path.suffix} file: {exc}") from None
    label = f"{str(path)!r}: array {name!r}"
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise DataFileError(f"{label} has shape {arr.shape}; expected (N, k) with N >= 1")
    if columns is not None and arr.shape[1] != columns:
        raise DataFileError(f"{label} has shape {arr.shape}; expected ({arr.shape[0]}, {columns})"
                            + (" or (N,)" if columns == 1 else ""))
    if rows is not None and arr.shape[0] != rows:
        raise DataFileError(f"{label} has {arr.shape[0]} rows; expected {rows} (one per point)")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        raise DataFileError(f"{label} has NaN or infinite values in {int(bad.sum())} of its {arr.shape[0]} rows, "
                            f"first at row {int(np.flatnonzero(bad)[0])}")
    return arr


def read_points(path: str | os.PathLike, dim: int, name: str | Sequence[str] | None = None,
                input_names: Sequence[str] = ()) -> np.ndarray:
    """Points ``(N, dim)`` from a file: array ``name``; by default ``"x"`` of an HDF5/npz file,
    and for a CSV the columns named like the inputs (``input_names``, e.g. x, y, t) or else all
    of its columns."""
    path = Path(path).expanduser()
    if name is None:
        name = "x"
        if path.suffix.lower() == ".csv" and path.is_file():
            header = list(_csv_columns(path))
            name = list(input_names) if input_names and set(input_names) <= set(header) else header
    return read_array(path, name, columns=dim)
