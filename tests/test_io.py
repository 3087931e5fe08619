"""Tests for kanpde.io: results.h5 round trip, atomic writes, checkpoints, RNG state, folders."""
from __future__ import annotations

import os
import random
import subprocess
import sys

import h5py
import numpy as np
import pytest
import torch

from kanpde.io import (
    CheckpointError,
    FolderNotWritableError,
    ResultsFile,
    ResultsFormatError,
    atomic_path,
    atomic_write,
    check_writable,
    load_checkpoint,
    read_results,
    rng_state,
    save_checkpoint,
    set_rng_state,
    write_results,
)

CONFIG_YAML = "problem:\n  name: poisson\nmodel:\n  widths: [2, 10, 1]\nnote: \u00e9t\u00e9 \u2207\u00b2u = f\n"


def _results_kwargs(n_hist=5, n_pts=12, m=1, exact=True):
    rng = np.random.default_rng(0)
    x = rng.uniform(-1.0, 1.0, (n_pts, 2))
    u_pred = rng.normal(size=(n_pts, m))
    field = {"x": x, "u_pred": u_pred}
    if exact:
        field["u_exact"] = u_pred + 1e-3 * rng.normal(size=(n_pts, m))
    rel = np.full(n_hist, np.nan)
    rel[::2] = np.linspace(1.0, 0.1, len(rel[::2]))
    return dict(
        attrs={
            "problem": "poisson", "model": "kan", "n_params": 123, "wall_time_s": 4.25,
            "seed": 7, "kanpde_version": "0.1.0", "config_yaml": CONFIG_YAML,
            "status": "completed", "device": "cpu", "dtype": "float64",
            "converged": True, "empty": "", "widths": np.array([2, 10, 1]),
            "numpy_scalar": np.float32(0.5),
        },
        metrics={"rel_l2": 1.5e-3, "rel_h1": np.float64(2.5e-2), "mse": 3e-7,
                 "linf": 1e-3, "l2": float("nan"), "h1": torch.tensor(0.125)},
        history={
            "step": np.arange(n_hist),
            "time_s": np.linspace(0.0, 1.0, n_hist),
            "loss": np.geomspace(1.0, 1e-4, n_hist),
            "rel_l2": rel, "rel_h1": rel * 2,
            "loss_residual": np.geomspace(0.5, 1e-5, n_hist),
            "loss_boundary": torch.linspace(0.1, 0.0, n_hist),
        },
        field=field,
    )


def test_results_round_trip_exact(tmp_path):
    kw = _results_kwargs()
    path = write_results(tmp_path / "run" / "results.h5", **kw)
    assert path == tmp_path / "run" / "results.h5"
    res = read_results(path)
    assert isinstance(res, ResultsFile) and res.path == path

    assert set(res.attrs) == set(kw["attrs"])
    for key, value in kw["attrs"].items():
        np.testing.assert_array_equal(res.attrs[key], value, err_msg=key)
    assert res.attrs["config_yaml"] == CONFIG_YAML and isinstance(res.attrs["config_yaml"], str)
    assert res.attrs["n_params"] == 123 and isinstance(res.attrs["n_params"], int)
    assert res.attrs["converged"] is True

    assert list(res.metrics) == list(kw["metrics"])
    for key, value in kw["metrics"].items():
        assert isinstance(res.metrics[key], float)
        np.testing.assert_equal(res.metrics[key], float(value), err_msg=key)

    assert list(res.history) == list(kw["history"])  # insertion order kept
    for key, value in kw["history"].items():
        expected = value.numpy() if isinstance(value, torch.Tensor) else value
        np.testing.assert_array_equal(res.history[key], expected, err_msg=key)
        assert res.history[key].dtype == expected.dtype, key

    assert list(res.field) == ["x", "u_pred", "u_exact"]
    for key, value in kw["field"].items():
        np.testing.assert_array_equal(res.field[key], value, err_msg=key)


def test_none_values_are_skipped_and_exact_is_optional(tmp_path):
    kw = _results_kwargs(exact=False)
    kw["attrs"]["seed"] = None
    kw["metrics"]["rel_h1"] = None
    kw["field"]["u_exact"] = None
    res = read_results(write_results(tmp_path / "r.h5", **kw))
    assert "seed" not in res.attrs and "rel_h1" not in res.metrics
    assert set(res.field) == {"x", "u_pred"}


def test_no_field_and_empty_history(tmp_path):
    res = read_results(write_results(tmp_path / "r.h5", attrs={"status": "failed"}, metrics={},
                                     history={}, field=None))
    assert res.attrs == {"status": "failed"} and res.metrics == {}
    assert res.history == {} and res.field == {}


def test_unequal_history_lengths_name_the_dataset(tmp_path):
    kw = _results_kwargs(n_hist=5)
    kw["history"]["loss_boundary"] = np.zeros(3)
    with pytest.raises(ValueError, match=r"'loss_boundary' has length 3 but 'step' has length 5"):
        write_results(tmp_path / "r.h5", **kw)
    assert list(tmp_path.iterdir()) == []  # validated before touching the disk


def test_history_must_be_one_dimensional(tmp_path):
    kw = _results_kwargs()
    kw["history"]["loss"] = np.zeros((5, 2))
    with pytest.raises(ValueError, match=r"'loss' must be 1-D, got shape \(5, 2\)"):
        write_results(tmp_path / "r.h5", **kw)


@pytest.mark.parametrize("bad, message", [
    ({"x": np.zeros(4), "u_pred": np.zeros((4, 1))}, r"'x' must have shape \(N, d\)"),
    ({"x": np.zeros((4, 2)), "u_pred": np.zeros((3, 1))}, r"'u_pred' must have shape \(N, m\) with N = 4"),
    ({"x": np.zeros((4, 2)), "u_pred": np.zeros((4, 1)), "u_exact": np.zeros((4, 2))}, r"'u_exact'"),
    ({"x": np.zeros((4, 2))}, r"needs a 'u_pred'"),
])
def test_bad_field_shapes(tmp_path, bad, message):
    kw = _results_kwargs()
    kw["field"] = bad
    with pytest.raises(ValueError, match=message):
        write_results(tmp_path / "r.h5", **kw)


def test_bad_attribute_and_metric_types(tmp_path):
    kw = _results_kwargs()
    kw["attrs"]["optimizer"] = {"lr": 1e-3}
    with pytest.raises(TypeError, match="attribute 'optimizer'"):
        write_results(tmp_path / "r.h5", **kw)
    kw = _results_kwargs()
    kw["metrics"]["rel_l2"] = "small"
    with pytest.raises(TypeError, match="metric 'rel_l2'"):
        write_results(tmp_path / "r.h5", **kw)
    kw = _results_kwargs()
    kw["attrs"]["kanpde_results_format"] = 2
    with pytest.raises(ValueError, match="reserved"):
        write_results(tmp_path / "r.h5", **kw)


def test_read_results_errors_name_path_and_what_is_missing(tmp_path):
    missing = tmp_path / "nope.h5"
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_results(missing)

    not_hdf5 = tmp_path / "text.h5"
    not_hdf5.write_text("hello")
    with pytest.raises(ResultsFormatError, match="text.h5.*not a readable HDF5"):
        read_results(not_hdf5)

    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5.create_group("metrics")
    with pytest.raises(ResultsFormatError, match="foreign.h5.*kanpde_results_format"):
        read_results(foreign)

    partial = tmp_path / "partial.h5"
    with h5py.File(partial, "w") as h5:
        h5.attrs["kanpde_results_format"] = 1
        h5.create_group("metrics")
    with pytest.raises(ResultsFormatError, match="partial.h5.*'history' is missing"):
        read_results(partial)
    assert issubclass(ResultsFormatError, ValueError)


def test_atomic_write_failure_keeps_previous_content(tmp_path):
    target = tmp_path / "results.h5"
    write_results(target, **_results_kwargs())
    before = target.read_bytes()

    def broken_writer(tmp):
        with h5py.File(tmp, "w") as h5:
            h5.create_dataset("half", data=np.zeros(10))
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        atomic_write(target, broken_writer)
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.h5"]
    read_results(target)  # still a valid results file


def test_atomic_path_commits_with_normal_permissions(tmp_path):
    target = tmp_path / "sub" / "out.txt"
    target.parent.mkdir()
    target.write_text("old")
    with atomic_path(target) as tmp:
        assert tmp.parent == target.parent and tmp != target
        tmp.write_text("new")
        assert target.read_text() == "old"  # nothing visible before the commit
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]
    umask = os.umask(0)
    os.umask(umask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~umask

    with pytest.raises(KeyError):
        with atomic_path(target) as tmp:
            tmp.write_text("newer")
            raise KeyError("boom")
    assert target.read_text() == "new"
    assert sorted(p.name for p in target.parent.iterdir()) == ["out.txt"]

    with pytest.raises(IsADirectoryError, match="sub"):
        with atomic_path(tmp_path / "sub"):
            pass


def test_checkpoint_round_trip_restores_rng_bit_identically(tmp_path):
    torch.manual_seed(1)
    np.random.seed(2)
    random.seed(3)
    model = torch.nn.Linear(3, 2)
    state = {"model": model.state_dict(), "step": 17, "history": {"loss": [1.0, 0.5]},
             "rng": rng_state()}
    path = save_checkpoint(tmp_path / "ckpt" / "last.pt", state)
    assert path.exists() and sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]

    def draw():
        return torch.rand(4), np.random.rand(4), [random.random() for _ in range(4)]

    first = draw()
    second = draw()
    assert not torch.equal(first[0], second[0])  # the generators did advance

    loaded = load_checkpoint(path)
    assert loaded["step"] == 17 and loaded["history"] == {"loss": [1.0, 0.5]}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded["model"][key], value)
    set_rng_state(loaded["rng"])
    again = draw()
    assert torch.equal(again[0], first[0])
    np.testing.assert_array_equal(again[1], first[1])
    assert again[2] == first[2]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_rng_restored_after_loading_onto_the_gpu(tmp_path):
    torch.cuda.manual_seed_all(5)
    path = save_checkpoint(tmp_path / "last.pt", {"rng": rng_state()})
    first = torch.rand(4, device="cuda")
    # map_location="cuda" moves the saved RNG tensors onto the GPU; restoring must still work
    set_rng_state(load_checkpoint(path, map_location="cuda")["rng"])
    assert torch.equal(torch.rand(4, device="cuda"), first)


def test_set_rng_state_rejects_unknown_keys():
    with pytest.raises(ValueError, match="'numpyy'"):
        set_rng_state({"numpyy": None})
    with pytest.raises(TypeError):
        set_rng_state([1, 2])


def test_checkpoint_errors_name_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.pt"):
        load_checkpoint(tmp_path / "missing.pt")

    garbage = tmp_path / "garbage.pt"
    garbage.write_bytes(b"\x00not a checkpoint" * 10)
    with pytest.raises(CheckpointError, match="garbage.pt") as info:
        load_checkpoint(garbage)
    assert info.value.__cause__ is not None

    good = save_checkpoint(tmp_path / "good.pt", {"w": torch.arange(1000.0)})
    truncated = tmp_path / "truncated.pt"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(CheckpointError, match="truncated.pt"):
        load_checkpoint(truncated)

    listing = tmp_path / "list.pt"
    torch.save([1, 2], listing)
    with pytest.raises(CheckpointError, match="list.pt.*expected a dict"):
        load_checkpoint(listing)


def test_failed_checkpoint_save_keeps_previous(tmp_path):
    path = save_checkpoint(tmp_path / "last.pt", {"step": 1})
    with pytest.raises(Exception):
        save_checkpoint(path, {"step": 2, "bad": lambda: None})  # lambdas cannot be pickled
    assert load_checkpoint(path) == {"step": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]


def test_check_writable_creates_and_probes(tmp_path):
    folder = tmp_path / "a" / "b"
    assert check_writable(folder) == folder
    assert folder.is_dir() and list(folder.iterdir()) == []  # probe removed


def test_check_writable_below_a_file_raises(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("i am a file")
    with pytest.raises(FolderNotWritableError, match="blocker/sub"):
        check_writable(blocker / "sub")
    with pytest.raises(FolderNotWritableError, match="not a directory"):
        check_writable(blocker)
    assert issubclass(FolderNotWritableError, OSError)


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root ignores directory permissions")
def test_check_writable_read_only_folder_raises(tmp_path):
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        with pytest.raises(FolderNotWritableError, match="ro"):
            check_writable(folder)
    finally:
        folder.chmod(0o700)


def test_io_and_plotting_do_not_import_training_or_models():
    code = ("import sys, kanpde.io, kanpde.plotting; "
            "bad = [m for m in sys.modules if m.startswith(('kanpde.training', 'kanpde.models'))]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True,
                   cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
