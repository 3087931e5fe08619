"""Tests for kanpde.xdmf: the XDMF files reference exactly the datasets stored in results.h5,
structured grids keep the axis order, time series have one grid per time, and meshio reads
what it can read."""
from __future__ import annotations

import xml.etree.ElementTree as ET

import h5py
import numpy as np
import pytest

from kanpde.io import write_results
from kanpde.xdmf import write_xdmf, xdmf_datasets, xdmf_documents

_XDMF_TYPES = {"float64": ("Float", "8"), "float32": ("Float", "4"), "int64": ("Int", "8")}


def _cell_centres(n, lo, hi):
    return lo + (np.arange(n) + 0.5) * (hi - lo) / n


def _grid2d():
    """12 x 9 cell centres on [0, 1] x [0, 2], rows in C order (y fastest), with u_exact."""
    xs, ys = _cell_centres(12, 0.0, 1.0), _cell_centres(9, 0.0, 2.0)
    gx, gy = np.meshgrid(xs, ys, indexing="ij")
    x = np.column_stack([gx.ravel(), gy.ravel()])
    u = np.sin(np.pi * x[:, :1]) * np.cos(x[:, 1:])
    return {"x": x, "u_pred": u + 1e-3 * x[:, :1] * x[:, 1:], "u_exact": u}


def _disk(n=200):
    """Random points in the unit disk, two outputs (u, v), no exact solution."""
    rng = np.random.default_rng(0)
    r, phi = np.sqrt(rng.uniform(size=n)), rng.uniform(0, 2 * np.pi, n)
    x = np.column_stack([r * np.cos(phi), r * np.sin(phi)])
    return {"x": x, "u_pred": np.column_stack([x[:, 0] ** 2, x[:, 0] * x[:, 1]])}


def _grid3d():
    """4 x 5 x 3 cell centres, rows shuffled (any row order is a grid), outputs u and p."""
    axes = [_cell_centres(4, 0, 1), _cell_centres(5, -1, 1), _cell_centres(3, 0, 3)]
    x = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    x = x[np.random.default_rng(1).permutation(len(x))]
    u = x[:, 0] + 10 * x[:, 1] + 100 * x[:, 2]
    return {"x": x, "u_pred": np.column_stack([u, -u]), "u_exact": np.column_stack([u, -u]) + 0.5}


def _space_time(n_x=16, n_t=5):
    """1-D space x 5 time levels, space-major with time fastest, as kanpde evaluates them."""
    xs, ts = _cell_centres(n_x, 0.0, 1.0), np.linspace(0.0, 1.0, n_t)
    x = np.column_stack([np.repeat(xs, n_t), np.tile(ts, n_x)])
    u = np.sin(np.pi * x[:, :1]) * np.exp(-x[:, 1:])
    return {"x": x, "u_pred": u + 1e-2 * x[:, 1:], "u_exact": u}


def _export(tmp_path, field, **names):
    """results.h5 with the XDMF datasets, then write_xdmf; returns the paths and /field."""
    full = {**field, **xdmf_datasets(field, **names)}
    write_results(tmp_path / "results.h5", attrs={}, metrics={}, history={"step": [0]}, field=full)
    paths = write_xdmf(tmp_path, "results.h5", full, **names)
    with h5py.File(tmp_path / "results.h5", "r") as h5:
        stored = {k: ds[()] for k, ds in h5["field"].items()}
    for path in paths:
        _check_references(path, stored)
    return paths, stored


def _check_references(path, stored):
    """Every HDF DataItem names an existing /field dataset with its shape and type, and every
    Polyvertex has one element per point of its geometry."""
    root = ET.parse(path).getroot()
    assert root.tag == "Xdmf" and root.get("Version") == "3.0"
    for item in root.iter("DataItem"):
        assert item.get("Format") == "HDF"
        h5_name, h5_path = item.text.strip().split(":")
        assert h5_name == "results.h5" and h5_path.startswith("/field/")
        name = h5_path[len("/field/"):]
        assert name in stored, f"{path.name} references missing dataset {name}"
        assert item.get("Dimensions") == " ".join(map(str, stored[name].shape)), name
        assert (item.get("NumberType"), item.get("Precision")) == _XDMF_TYPES[stored[name].dtype.name]
    for grid in root.iter("Grid"):
        topology = grid.find("Topology")
        if topology is None or topology.get("TopologyType") != "Polyvertex":
            continue
        n = int(topology.get("NumberOfElements"))
        points = _dataset(grid.find("Geometry/DataItem"), stored)
        assert points.shape[0] == n
        assert grid.find("Geometry").get("GeometryType") == ("XY" if points.shape[1] == 2 else "XYZ")
        np.testing.assert_array_equal(_dataset(topology.find("DataItem"), stored).ravel(), np.arange(n))
        for attribute in grid.findall("Attribute"):
            assert attribute.get("Center") == "Node" and attribute.get("AttributeType") == "Scalar"
            assert _dataset(attribute.find("DataItem"), stored).shape == (n,)


def _dataset(item, stored):
    return stored[item.text.strip().split(":/field/")[1]]


def _attributes(grid, stored):
    return {a.get("Name"): _dataset(a.find("DataItem"), stored) for a in grid.findall("Attribute")}


def _check_grid_values(path, field, output_names):
    """The structured grid holds u_pred at the right nodes: look a few rows up by coordinates."""
    stored_grid = ET.parse(path).getroot().find("Domain/Grid")
    with h5py.File(path.parent / "results.h5", "r") as h5:
        stored = {k: ds[()] for k, ds in h5["field"].items()}
    d = field["x"].shape[1]
    assert stored_grid.find("Topology").get("TopologyType") == f"{d}DRectMesh"
    assert stored_grid.find("Geometry").get("GeometryType") == "VXVYVZ"[:2 * d]
    axes = [_dataset(item, stored) for item in stored_grid.findall("Geometry/DataItem")]
    shape = tuple(len(a) for a in reversed(axes))
    assert stored_grid.find("Topology").get("Dimensions") == " ".join(map(str, shape))
    values = _attributes(stored_grid, stored)
    for row in (0, 1, 7, len(field["x"]) // 2, len(field["x"]) - 1):
        point = field["x"][row]
        index = tuple(reversed([int(np.flatnonzero(axis == c)[0]) for axis, c in zip(axes, point)]))
        for j, out in enumerate(output_names):
            assert values[f"u_pred_{out}"].shape == shape
            assert values[f"u_pred_{out}"][index] == field["u_pred"][row, j]


def test_grid2d_point_cloud_and_rect_mesh(tmp_path):
    field = _grid2d()
    paths, stored = _export(tmp_path, field, input_names=("x", "y"), output_names=("u",))
    assert [p.name for p in paths] == ["results.xdmf", "results_grid.xdmf"]

    cloud = ET.parse(paths[0]).getroot().find("Domain/Grid")
    assert cloud.find("Topology").get("NumberOfElements") == "108"
    assert cloud.find("Geometry/DataItem").text.strip() == "results.h5:/field/x"
    attributes = _attributes(cloud, stored)
    assert sorted(attributes) == ["error_u", "u_exact_u", "u_pred_u"]
    np.testing.assert_array_equal(attributes["u_pred_u"], field["u_pred"][:, 0])
    np.testing.assert_array_equal(attributes["error_u"], np.abs(field["u_pred"] - field["u_exact"])[:, 0])

    grid = ET.parse(paths[1]).getroot().find("Domain/Grid")
    assert grid.find("Topology").get("Dimensions") == "9 12"  # "ny nx": x varies fastest
    assert [i.text.strip() for i in grid.findall("Geometry/DataItem")] == [
        "results.h5:/field/xdmf_grid_axis_x", "results.h5:/field/xdmf_grid_axis_y"]
    np.testing.assert_array_equal(stored["xdmf_grid_axis_x"], _cell_centres(12, 0.0, 1.0))
    _check_grid_values(paths[1], field, ("u",))
    assert not (tmp_path / "results_time.xdmf").exists()


def test_grid3d_in_any_row_order(tmp_path):
    field = _grid3d()
    paths, stored = _export(tmp_path, field, input_names=("x", "y", "z"), output_names=("u", "p"))
    assert [p.name for p in paths] == ["results.xdmf", "results_grid.xdmf"]
    assert ET.parse(paths[0]).getroot().find("Domain/Grid/Geometry").get("GeometryType") == "XYZ"
    assert stored["xdmf_grid_u_pred_p"].shape == (3, 5, 4)
    _check_grid_values(paths[1], field, ("u", "p"))


def test_scattered_points_give_only_a_point_cloud(tmp_path):
    field = _disk()
    paths, stored = _export(tmp_path, field, input_names=("x", "y"), output_names=("u", "v"))
    assert [p.name for p in paths] == ["results.xdmf"]
    cloud = ET.parse(paths[0]).getroot().find("Domain/Grid")
    assert sorted(_attributes(cloud, stored)) == ["u_pred_u", "u_pred_v"]  # no exact, no error
    assert not any(k.startswith("xdmf_grid") for k in stored)


def test_space_time_series(tmp_path):
    field = _space_time()
    ts = np.linspace(0.0, 1.0, 5)
    paths, stored = _export(tmp_path, field, input_names=("x", "t"), output_names=("u",), time_axis=-1)
    assert [p.name for p in paths] == ["results.xdmf", "results_grid.xdmf", "results_time.xdmf"]
    _check_grid_values(paths[1], field, ("u",))  # the (x, t) plane is a tensor grid

    series = ET.parse(paths[2]).getroot().find("Domain/Grid")
    assert (series.get("GridType"), series.get("CollectionType")) == ("Collection", "Temporal")
    steps = series.findall("Grid")
    assert [float(g.find("Time").get("Value")) for g in steps] == ts.tolist()
    counts = [int(g.find("Topology").get("NumberOfElements")) for g in steps]
    assert counts == [16] * 5 and sum(counts) == len(field["x"])
    for t, step in zip(ts, steps):
        at_t = field["x"][:, 1] == t
        points = _dataset(step.find("Geometry/DataItem"), stored)
        np.testing.assert_array_equal(points[:, 0], field["x"][at_t, 0])
        np.testing.assert_array_equal(points[:, 1], 0.0)  # 1-D space on the X axis
        attributes = _attributes(step, stored)
        np.testing.assert_array_equal(attributes["u_pred_u"], field["u_pred"][at_t, 0])
        np.testing.assert_array_equal(attributes["u_exact_u"], field["u_exact"][at_t, 0])


def test_space_time_3d_space_gives_only_the_series(tmp_path):
    xs = np.stack(np.meshgrid(*[_cell_centres(3, 0, 1)] * 3, indexing="ij"), -1).reshape(-1, 3)
    ts = np.array([0.0, 0.5])
    x = np.column_stack([np.repeat(xs, 2, axis=0), np.tile(ts, len(xs))])
    field = {"x": x, "u_pred": x.sum(axis=1, keepdims=True)}
    paths, _ = _export(tmp_path, field, input_names=("x", "y", "z", "t"), output_names=("u",),
                       time_axis=3)
    assert [p.name for p in paths] == ["results_time.xdmf"]
    steps = ET.parse(paths[0]).getroot().findall("Domain/Grid/Grid")
    assert [g.find("Geometry").get("GeometryType") for g in steps] == ["XYZ", "XYZ"]


def test_points_scattered_in_time_give_no_series(tmp_path):
    field = {"x": np.random.default_rng(2).uniform(size=(64, 2)), "u_pred": np.zeros((64, 1))}
    paths, stored = _export(tmp_path, field, input_names=("x", "t"), output_names=("u",), time_axis=1)
    assert [p.name for p in paths] == ["results.xdmf"]
    assert not any(k.startswith("xdmf_step") for k in stored)


@pytest.mark.parametrize("d, time_axis", [(1, None), (1, 0), (10, None)])
def test_nothing_to_export(tmp_path, d, time_axis):
    field = {"x": np.random.default_rng(3).uniform(size=(50, d)), "u_pred": np.zeros((50, 1))}
    names = {"input_names": [f"x{k}" for k in range(d)], "output_names": ("u",), "time_axis": time_axis}
    assert xdmf_datasets(field, **names) == {}
    assert xdmf_documents("results.h5", field, **names) == {}
    assert write_xdmf(tmp_path, "results.h5", field, **names) == []
    assert list(tmp_path.iterdir()) == []


def test_explicit_path_names_the_files(tmp_path):
    field = _grid2d()
    names = {"input_names": ("x", "y"), "output_names": ("u",)}
    full = {**field, **xdmf_datasets(field, **names)}
    paths = write_xdmf(tmp_path / "view.xdmf", "results.h5", full, **names)
    assert [p.name for p in paths] == ["view.xdmf", "view_grid.xdmf"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["view.xdmf", "view_grid.xdmf"]  # no temp files


def test_bad_arguments_are_named(tmp_path):
    field = _grid2d()
    names = {"input_names": ("x", "y"), "output_names": ("u",)}
    with pytest.raises(ValueError, match="xdmf_polyvertex_108"):
        xdmf_documents("results.h5", field, **names)  # the XDMF datasets were not stored
    with pytest.raises(ValueError, match="'u/v'"):
        xdmf_datasets(field, input_names=("x", "y"), output_names=("u/v",))
    with pytest.raises(ValueError, match=r"\['x'\] has 1 names"):
        xdmf_datasets(field, input_names=("x",), output_names=("u",))
    with pytest.raises(ValueError, match="time_axis .* got 2"):
        xdmf_datasets(field, **names, time_axis=2)
    with pytest.raises(ValueError, match="'a:b.h5'"):
        xdmf_documents("a:b.h5", {**field, **xdmf_datasets(field, **names)}, **names)


def test_meshio_reads_the_point_cloud(tmp_path):
    meshio = pytest.importorskip("meshio")
    for field, names in [
        (_grid2d(), {"input_names": ("x", "y"), "output_names": ("u",)}),
        (_disk(), {"input_names": ("x", "y"), "output_names": ("u", "v")}),
        (_grid3d(), {"input_names": ("x", "y", "z"), "output_names": ("u", "p")}),
    ]:
        folder = tmp_path / str(len(field["x"]))
        folder.mkdir()
        paths, _ = _export(folder, field, **names)
        mesh = meshio.read(paths[0])
        np.testing.assert_array_equal(mesh.points, field["x"])
        assert mesh.cells[0].type == "vertex" and len(mesh.cells[0].data) == len(field["x"])
        for j, out in enumerate(names["output_names"]):
            np.testing.assert_array_equal(mesh.point_data[f"u_pred_{out}"], field["u_pred"][:, j])


def test_meshio_reads_the_time_series(tmp_path):
    meshio = pytest.importorskip("meshio")
    field = _space_time()
    paths, _ = _export(tmp_path, field, input_names=("x", "t"), output_names=("u",), time_axis=1)
    with meshio.xdmf.TimeSeriesReader(paths[2]) as reader:
        points, cells = reader.read_points_cells()
        assert points.shape == (16, 2) and len(cells[0].data) == 16
        for k, t in enumerate(np.linspace(0.0, 1.0, 5)):
            time, point_data, _ = reader.read_data(k)
            at_t = field["x"][:, 1] == t
            assert time == t
            np.testing.assert_array_equal(points[:, 0], field["x"][at_t, 0])
            np.testing.assert_array_equal(point_data["u_pred_u"], field["u_pred"][at_t, 0])


def test_a_space_time_run_writes_its_xdmf_files_pointing_into_results_h5(tmp_path):
    # a real run (heat equation, x-t tensor grid): point cloud, structured grid and time series,
    # every reference resolved in the run's own results.h5
    import torch

    from kanpde import solve
    from kanpde.models import KAN
    from kanpde.problems.heat import Heat1D

    torch.manual_seed(0)
    solve(Heat1D(), KAN([2, 3, 1]), optim={"stages": [{"optimizer": "lbfgs", "steps": 3}]},
          sampler={"n_interior": 100}, eval={"n_points": 400}, progress=False, plots=False, output_dir=tmp_path)
    with h5py.File(tmp_path / "results.h5", "r") as h5:
        stored = {k: ds[()] for k, ds in h5["field"].items()}
    names = sorted(p.name for p in tmp_path.glob("*.xdmf"))
    assert names == ["results.xdmf", "results_grid.xdmf", "results_time.xdmf"]
    for name in names:
        _check_references(tmp_path / name, stored)
    times = [float(t.get("Value")) for t in ET.parse(tmp_path / "results_time.xdmf").getroot().iter("Time")]
    assert times == sorted(set(np.round(stored["x"][:, 1], 12).tolist()))
