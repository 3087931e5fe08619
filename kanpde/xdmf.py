"""XDMF files that let ParaView, VisIt and meshio open a run's evaluation field.

XDMF is a small XML file that describes *how* to look at arrays stored in HDF5; the numbers
themselves stay in ``results.h5``.  A run exports its evaluation field in two steps:

1. :func:`xdmf_datasets` derives the extra arrays the viewers need (one 1-D array per output
   component, the structured-grid layout, one block per time level) and the caller stores them
   next to ``x`` and ``u_pred`` in the ``/field`` group of ``results.h5``, all with flat names
   starting ``xdmf_``;
2. :func:`write_xdmf` writes the XML files next to ``results.h5`` (:func:`xdmf_documents`
   returns their text).

Files, for ``results.h5`` (each written only where it applies)::

    results.xdmf       the evaluation points as a point cloud (Polyvertex, XY or XYZ geometry
                       from /field/x), d = 2 or 3 columns (a space-time problem with 1-D space
                       shows the (x, t) plane).  meshio.read opens it.
    results_grid.xdmf  a 2DRectMesh / 3DRectMesh when the evaluation points are the nodes of
                       a tensor grid (rows in any order): surfaces, contours and slices in
                       ParaView.  meshio does not read structured meshes.
    results_time.xdmf  space-time problems: a Temporal collection with one Polyvertex grid of
                       spatial points per distinct time (play it in ParaView).  meshio reads
                       it with meshio.xdmf.TimeSeriesReader, which takes the points of the
                       first step for every step: right when every time level holds the same
                       spatial points (a space x time product).  Not written when the points
                       are scattered in time (under two points per time on average, e.g.
                       Sobol points in (x, t)), where each frame would show a single point.

Why three files and no HyperSlabs: meshio (5.3) reads only a Domain holding exactly one
Uniform grid, and only DataItems that reference a whole HDF5 dataset.  So each component of
``u_pred`` gets its own dataset, each time level gets its own datasets, and the point cloud,
the structured grid and the time series live in separate files.  ParaView and VisIt read all
three.  The point cloud references ``/field/x`` itself, so it costs only the per-component
copies; the grid and the time series each store one more copy of the values.

Every attribute is a node-centred scalar named ``<array>_<output>`` with ``<array>`` one of
``u_pred``, ``u_exact`` and ``error`` (``|u_pred - u_exact|``, only when the exact solution is
known), e.g. ``u_pred_u``, ``error_v``; its dataset has the same name with the prefix
``xdmf_`` (``xdmf_grid_``, ``xdmf_step<k>_`` in the other two files).

Nothing is exported (no datasets, no files) for fields with one input column, for fields with
four or more columns that are not 3-D space plus time, and for empty fields.
"""
from __future__ import annotations

import math
import os
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from pathlib import Path

import numpy as np

from kanpde.io import atomic_write

__all__ = ["write_xdmf", "xdmf_datasets", "xdmf_documents"]

_H5_GROUP = "/field"
# HDF5 dataset names and the "file:path" text of an XDMF DataItem cannot hold these.
_FORBIDDEN_IN_NAMES = "/: \t\n"
# (NumberType, Precision) that XDMF declares for each dtype we store.
_XDMF_TYPES = {
    "float32": ("Float", "4"),
    "float64": ("Float", "8"),
    "int32": ("Int", "4"),
    "int64": ("Int", "8"),
}


@dataclass
class _Export:
    """What the XDMF files of one field show, and the datasets they reference."""

    datasets: dict[str, np.ndarray] = dataclass_field(default_factory=dict)
    attributes: list[str] = dataclass_field(default_factory=list)  # "u_pred_u", "error_u" ...
    point_cloud: bool = False
    grid_axes: list[str] = dataclass_field(default_factory=list)  # input names, X first
    step_times: list[float] = dataclass_field(default_factory=list)
    step_prefixes: list[str] = dataclass_field(default_factory=list)


def _polyvertex_name(n: int) -> str:
    # Connectivity depends only on the number of points, so time levels of equal size share it.
    return f"xdmf_polyvertex_{n}"


def _check_names(names: Sequence[str], what: str, count: int, columns_of: str) -> list[str]:
    if isinstance(names, str):
        raise TypeError(f"{what} must be a sequence of names, got the string {names!r}")
    names = list(names)
    if len(names) != count:
        raise ValueError(f"{what} {names} has {len(names)} names but {columns_of} has {count} columns")
    for name in names:
        if not isinstance(name, str) or not name or any(c in name for c in _FORBIDDEN_IN_NAMES):
            raise ValueError(
                f"{what} entry {name!r} cannot name an HDF5 dataset: use a non-empty string "
                f"without '/', ':' or whitespace")
    if len(set(names)) != len(names):
        raise ValueError(f"{what} {names} repeats a name")
    return names


def _tensor_grid(x: np.ndarray) -> tuple[list[np.ndarray], np.ndarray] | None:
    """``(axes, position)`` when the rows of ``x`` (N, d) are the nodes of a tensor grid, else None.

    ``axes[k]`` holds the sorted distinct values of column ``k``; ``position[i]`` is where row
    ``i`` sits in the grid flattened with column 0 varying fastest, the order of XDMF's
    RectMesh.  The rows may come in any order; every node must appear exactly once and every
    axis must have at least two values (a flat grid is better shown as a point cloud).
    """
    n, d = x.shape
    axes, position, stride = [], np.zeros(n, dtype=np.int64), 1
    for k in range(d):
        values, index = np.unique(x[:, k], return_inverse=True)
        axes.append(values)
        position += index.reshape(-1) * stride
        stride *= len(values)
    counts = [len(a) for a in axes]
    if min(counts) < 2 or math.prod(counts) != n:
        return None
    if len(np.unique(position)) != n:  # one node twice, so another one missing
        return None
    return axes, position


def _time_levels(t: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """Distinct times and, per time, the rows at that time (in their original order).

    None when the points are scattered in time (fewer than two points per time level on
    average, e.g. Sobol points in (x, t)): one ParaView frame per point shows nothing.
    """
    times, level, counts = np.unique(t, return_inverse=True, return_counts=True)
    if 2 * len(times) > len(t):
        return None
    rows = np.argsort(level.reshape(-1), kind="stable")
    return times, np.split(rows, np.cumsum(counts)[:-1])


def _plan(
    field: Mapping[str, np.ndarray],
    input_names: Sequence[str],
    output_names: Sequence[str],
    time_axis: int | None,
) -> _Export:
    """Decide what to export for ``field`` and compute the datasets it needs."""
    for required in ("x", "u_pred"):
        if required not in field:
            raise ValueError(f"field needs a {required!r} dataset, got keys {sorted(field)}")
    x, u_pred = np.asarray(field["x"]), np.asarray(field["u_pred"])
    if x.ndim != 2:
        raise ValueError(f"field 'x' must have shape (N, d), got {x.shape}")
    n, d = x.shape
    if u_pred.ndim != 2 or u_pred.shape[0] != n or u_pred.shape[1] == 0:
        raise ValueError(
            f"field 'u_pred' must have shape (N, m) with N = {n} (rows of x) and m >= 1, "
            f"got {u_pred.shape}")
    u_exact = field.get("u_exact")
    if u_exact is not None:
        u_exact = np.asarray(u_exact)
        if u_exact.shape != u_pred.shape:
            raise ValueError(
                f"field 'u_exact' must have the shape of 'u_pred' {u_pred.shape}, got {u_exact.shape}")
    input_names = _check_names(input_names, "input_names", d, "field 'x'")
    output_names = _check_names(output_names, "output_names", u_pred.shape[1], "field 'u_pred'")
    if time_axis is not None:
        is_index = isinstance(time_axis, (int, np.integer)) and not isinstance(time_axis, bool)
        if not is_index or not -d <= time_axis < d:
            raise ValueError(
                f"time_axis must be None or a column index of x in [{-d}, {d}), got {time_axis!r}")
        time_axis = int(time_axis) % d

    export = _Export()
    space_axes = [k for k in range(d) if k != time_axis]
    export.point_cloud = n > 0 and d in (2, 3)
    grid = _tensor_grid(x) if export.point_cloud else None
    levels = None
    if n > 0 and time_axis is not None and 1 <= len(space_axes) <= 3:
        levels = _time_levels(x[:, time_axis])
    if not export.point_cloud and levels is None:
        return export

    columns: dict[str, np.ndarray] = {}  # attribute name -> (N,) values
    for j, out in enumerate(output_names):
        columns[f"u_pred_{out}"] = u_pred[:, j]
    if u_exact is not None:
        for j, out in enumerate(output_names):
            columns[f"u_exact_{out}"] = u_exact[:, j]
        for j, out in enumerate(output_names):
            columns[f"error_{out}"] = np.abs(u_pred[:, j] - u_exact[:, j])
    export.attributes = list(columns)
    datasets = export.datasets

    if export.point_cloud:
        datasets[_polyvertex_name(n)] = np.arange(n, dtype=np.int64).reshape(n, 1)
        for name, values in columns.items():
            datasets[f"xdmf_{name}"] = np.ascontiguousarray(values)

    if grid is not None:
        axes, position = grid
        export.grid_axes = input_names
        shape = tuple(len(a) for a in reversed(axes))  # "nz ny nx": X varies fastest
        for name, axis in zip(input_names, axes):
            datasets[f"xdmf_grid_axis_{name}"] = axis
        for name, values in columns.items():
            flat = np.empty(n, dtype=values.dtype)
            flat[position] = values
            datasets[f"xdmf_grid_{name}"] = flat.reshape(shape)

    if levels is not None:
        times, rows_per_level = levels
        width = len(str(len(times) - 1))
        for k, (t, rows) in enumerate(zip(times, rows_per_level)):
            prefix = f"xdmf_step{k:0{width}d}_"
            points = x[np.ix_(rows, space_axes)]
            if points.shape[1] == 1:  # XDMF has no 1-D geometry: put 1-D space on the X axis
                points = np.hstack([points, np.zeros_like(points)])
            export.step_times.append(float(t))
            export.step_prefixes.append(prefix)
            datasets[f"{prefix}points"] = points
            datasets.setdefault(_polyvertex_name(len(rows)),
                                np.arange(len(rows), dtype=np.int64).reshape(-1, 1))
            for name, values in columns.items():
                datasets[f"{prefix}{name}"] = values[rows]
    return export


def xdmf_datasets(
    field: Mapping[str, np.ndarray],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    time_axis: int | None = None,
) -> dict[str, np.ndarray]:
    """The extra ``/field`` datasets the XDMF files reference; store them in ``results.h5``.

    ``field`` holds ``x`` (N, d), ``u_pred`` (N, m) and optionally ``u_exact`` (N, m) (other
    keys are ignored); ``input_names`` names the d columns of ``x``, ``output_names`` the m
    columns of ``u_pred``; ``time_axis`` is the column of ``x`` holding time (``-1`` or
    ``d - 1`` in kanpde's space-time problems) or None for steady problems.

    Returns flat name -> array (empty when there is nothing to export, see the module
    docstring):

    - point cloud (d = 2 or 3): ``xdmf_polyvertex_<N>`` (N, 1) int64 connectivity 0..N-1 and
      ``xdmf_<array>_<output>`` (N,) for ``<array>`` in ``u_pred``, ``u_exact``, ``error``;
    - tensor grid: ``xdmf_grid_axis_<input>`` (n_k,) sorted coordinates per axis and
      ``xdmf_grid_<array>_<output>`` of shape (.., n_y, n_x), the first column of ``x``
      varying fastest as XDMF's RectMesh expects;
    - space-time: per distinct time t_k (ascending) ``xdmf_step<k>_points`` (n_k, max(2, d-1))
      spatial coordinates (1-D space padded with a zero y column), ``xdmf_step<k>_<array>_
      <output>`` (n_k,), and ``xdmf_polyvertex_<n_k>``.
    """
    return _plan(field, input_names, output_names, time_axis).datasets


def _data_item(parent: ET.Element, h5_name: str, name: str, array: np.ndarray) -> None:
    try:
        number_type, precision = _XDMF_TYPES[array.dtype.name]
    except KeyError:
        raise TypeError(
            f"dataset {name!r} has dtype {array.dtype}, which the XDMF export does not declare; "
            f"use one of {sorted(_XDMF_TYPES)}") from None
    item = ET.SubElement(
        parent, "DataItem", Dimensions=" ".join(str(s) for s in array.shape),
        NumberType=number_type, Precision=precision, Format="HDF")
    item.text = f"{h5_name}:{_H5_GROUP}/{name}"


def _polyvertex_grid(
    parent: ET.Element, grid_name: str, h5_name: str, datasets: Mapping[str, np.ndarray],
    points: str, attributes: Mapping[str, str], time: float | None = None,
) -> None:
    """A Uniform grid of unconnected points ``datasets[points]`` with scalar node attributes
    (attribute name -> dataset name)."""
    n, width = datasets[points].shape
    grid = ET.SubElement(parent, "Grid", Name=grid_name, GridType="Uniform")
    if time is not None:
        ET.SubElement(grid, "Time", Value=repr(time))
    topology = ET.SubElement(grid, "Topology", TopologyType="Polyvertex",
                             NumberOfElements=str(n), NodesPerElement="1")
    _data_item(topology, h5_name, _polyvertex_name(n), datasets[_polyvertex_name(n)])
    geometry = ET.SubElement(grid, "Geometry", GeometryType="XY" if width == 2 else "XYZ")
    _data_item(geometry, h5_name, points, datasets[points])
    _attributes(grid, h5_name, datasets, attributes)


def _attributes(grid: ET.Element, h5_name: str, datasets: Mapping[str, np.ndarray],
                attributes: Mapping[str, str]) -> None:
    for attribute, dataset in attributes.items():
        element = ET.SubElement(grid, "Attribute", Name=attribute, AttributeType="Scalar", Center="Node")
        _data_item(element, h5_name, dataset, datasets[dataset])


def _document(domain_children: ET.Element) -> str:
    root = ET.Element("Xdmf", Version="3.0")
    root.append(domain_children)
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def xdmf_documents(
    h5_name: str,
    field: Mapping[str, np.ndarray],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    time_axis: int | None = None,
) -> dict[str, str]:
    """XDMF 3.0 texts for the field stored in ``h5_name`` (keys ``"points"``, ``"grid"``, ``"time"``).

    ``h5_name`` is the HDF5 file as seen from the folder of the XDMF files (normally
    ``"results.h5"``); DataItems read ``{h5_name}:/field/<dataset>``.  ``field`` is what that
    file's ``/field`` group holds: ``x``, ``u_pred``, optional ``u_exact`` **and** the
    datasets of :func:`xdmf_datasets` (called with the same names and ``time_axis``); a
    missing or differently shaped one raises ``ValueError`` naming it, since the XDMF would
    otherwise point at nothing.  Keys present: ``"points"`` (point cloud), ``"grid"``
    (tensor grid) and ``"time"`` (space-time series) where each applies; an empty dict when
    there is nothing to export.
    """
    if not isinstance(h5_name, str) or not h5_name or ":" in h5_name:
        raise ValueError(f"h5_name must be a file name without ':' (XDMF reads 'file:path'), got {h5_name!r}")
    export = _plan(field, input_names, output_names, time_axis)
    datasets = {"x": np.asarray(field["x"])}
    for name, expected in export.datasets.items():
        if name not in field:
            raise ValueError(
                f"field has no dataset {name!r}, which the XDMF references; store "
                f"xdmf_datasets(...) in results.h5 /field before writing the XDMF")
        stored = np.asarray(field[name])
        if stored.shape != expected.shape:
            raise ValueError(
                f"field dataset {name!r} has shape {stored.shape} but this field needs "
                f"{expected.shape}; was it made with other input names or time_axis?")
        datasets[name] = stored

    documents = {}
    if export.point_cloud:
        domain = ET.Element("Domain")
        _polyvertex_grid(domain, "points", h5_name, datasets, "x",
                         {a: f"xdmf_{a}" for a in export.attributes})
        documents["points"] = _document(domain)

    if export.grid_axes:
        axes = export.grid_axes
        shape = datasets[f"xdmf_grid_{export.attributes[0]}"].shape
        domain = ET.Element("Domain")
        grid = ET.SubElement(domain, "Grid", Name="grid", GridType="Uniform")
        ET.SubElement(grid, "Topology", TopologyType=f"{len(axes)}DRectMesh",
                      Dimensions=" ".join(str(s) for s in shape))
        geometry = ET.SubElement(grid, "Geometry", GeometryType={2: "VXVY", 3: "VXVYVZ"}[len(axes)])
        for name in axes:
            _data_item(geometry, h5_name, f"xdmf_grid_axis_{name}", datasets[f"xdmf_grid_axis_{name}"])
        _attributes(grid, h5_name, datasets, {a: f"xdmf_grid_{a}" for a in export.attributes})
        documents["grid"] = _document(domain)

    if export.step_times:
        domain = ET.Element("Domain")
        series = ET.SubElement(domain, "Grid", Name="time_series", GridType="Collection",
                               CollectionType="Temporal")
        for t, prefix in zip(export.step_times, export.step_prefixes):
            _polyvertex_grid(series, f"t={t!r}", h5_name, datasets, f"{prefix}points",
                             {a: f"{prefix}{a}" for a in export.attributes}, time=t)
        documents["time"] = _document(domain)
    return documents


def write_xdmf(
    folder_or_path: str | os.PathLike,
    h5_name: str,
    field: Mapping[str, np.ndarray],
    *,
    input_names: Sequence[str],
    output_names: Sequence[str],
    time_axis: int | None = None,
) -> list[Path]:
    """Write the XDMF files of :func:`xdmf_documents` atomically; return the paths written.

    ``folder_or_path`` is either the run folder, giving ``<stem>.xdmf``, ``<stem>_grid.xdmf``
    and ``<stem>_time.xdmf`` with ``<stem>`` the stem of ``h5_name`` (``results.xdmf`` ...),
    or a path ending in ``.xdmf`` for the point cloud, the other two named after its stem.
    ``h5_name`` must be the HDF5 file relative to that folder.  Only the files that apply are
    written ([] when there is nothing to export); a file from an earlier export that no longer
    applies is left as it is.
    """
    target = Path(folder_or_path)
    if target.suffix.lower() != ".xdmf":
        target = target / (Path(h5_name).stem + ".xdmf")
    documents = xdmf_documents(h5_name, field, input_names=input_names,
                               output_names=output_names, time_axis=time_axis)
    paths = {
        "points": target,
        "grid": target.with_name(f"{target.stem}_grid.xdmf"),
        "time": target.with_name(f"{target.stem}_time.xdmf"),
    }
    written = []
    for key, text in documents.items():
        def write(tmp: Path, text: str = text) -> None:
            tmp.write_text(text, encoding="utf-8")
        written.append(atomic_write(paths[key], write))
    return written
