"""Sweeps on Hydra's launcher plugins (joblib, submitit_local) read back by kanpde-compare: the
report's rows and aggregates against the runs' own results.h5 files, its figures' data, the
runs it could not use, and a second report identical to the first."""
from __future__ import annotations

import csv
import json
import statistics
import struct
from pathlib import Path

import pytest

from kanpde.compare import main as compare_main
from kanpde.threads import usable_cores
from tests.test_cli import FAST, lbfgs, read, run_cli

pytest.importorskip("hydra_plugins.hydra_joblib_launcher", reason="needs the sweep extra: pip install -e '.[sweep]'")
pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the sweep extra: pip install -e '.[sweep]'")

# 4 jobs: two families x two seeds, a few seconds each
SWEEP = ["problem=poisson1d", "model=kan,mlp", "seed=0,1", lbfgs(60), "model.hidden=[6]", *FAST]
LAUNCHERS = {
    # launcher overrides, the threads each job must get
    "joblib": (["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"], max(1, usable_cores() // 2)),
    "submitit_local": (["hydra/launcher=submitit_local", "hydra.launcher.cpus_per_task=1",
                        "hydra.launcher.timeout_min=10"], 1),
}


def png_size(path: Path) -> tuple[int, int]:
    """Width and height from a PNG's IHDR chunk."""
    head = path.read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", head[16:24])


@pytest.fixture(scope="module", params=sorted(LAUNCHERS))
def sweep(request, tmp_path_factory):
    launcher, threads = LAUNCHERS[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    run_cli(["-m", *SWEEP, *launcher, f"hydra.sweep.dir={folder}"], timeout=600)
    return folder, threads


def test_each_job_ran_with_its_share_of_the_cores(sweep):
    folder, threads = sweep
    files = sorted(folder.rglob("results.h5"))
    assert len(files) == 4
    for path in files:
        attrs, _, _, _ = read(path)
        assert attrs["threads"] == threads, path
        assert attrs["status"] == "completed"


def test_compare_rows_and_aggregates_match_the_runs(sweep):
    folder, _ = sweep
    assert compare_main([str(folder)]) == 0
    runs = {}
    for path in folder.rglob("results.h5"):
        attrs, metrics, history, _ = read(path)
        family = "KAN" if "KAN" in attrs["model"] else "MLP(tanh)"
        runs.setdefault(family, []).append((attrs, metrics, history))
    with open(folder / "comparison.csv") as f:
        rows = {row["family"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ["KAN", "MLP(tanh)"]
    for family, mine in runs.items():
        row = rows[family]
        assert row["problem"] == "poisson1d" and row["recipe"] == "lbfgs"
        assert int(row["seeds"]) == 2 and int(row["params"]) == int(mine[0][0]["n_params"])
        for metric in ("rel_l2", "rel_h1"):
            values = [float(m[metric]) for _, m, _ in mine]
            assert float(row[f"{metric}_median"]) == pytest.approx(statistics.median(values), rel=1e-12)
            assert float(row[f"{metric}_min"]) == min(values) and float(row[f"{metric}_max"]) == max(values)
        walls = [float(a["wall_time_s"]) for a, _, _ in mine]
        assert float(row["wall_s_median"]) == pytest.approx(statistics.median(walls), rel=1e-12)
        # time to 1e-2: the first evaluation at or below it, per seed, then the median
        reach = []
        for _, _, h in mine:
            hit = [t for t, e in zip(h["time_s"], h["rel_l2"]) if e <= 1e-2]
            reach.append(hit[0] if hit else float("inf"))
        assert float(row["time_to_1e-02_s"]) == pytest.approx(statistics.median(reach), rel=1e-12)
    best = min(rows.values(), key=lambda r: float(r["rel_l2_median"]))
    assert best["best"] == "True" and sum(r["best"] == "True" for r in rows.values()) == 1
    assert "**best**" in (folder / "comparison.md").read_text()


def test_compare_figures_have_the_expected_axes(sweep):
    folder, _ = sweep
    assert compare_main([str(folder)]) == 0
    with open(folder / "comparison.csv") as f:
        params = {row["family"]: float(row["params"]) for row in csv.DictReader(f)}
    for name, xlabel in (("scaling_params", "parameters"), ("scaling_time", "wall time (s)"),
                         ("curves", "training time (s)")):
        png = folder / f"{name}.png"
        width, height = png_size(png)
        assert width > 300 and height > 300
        data = json.loads((folder / f"{name}.json").read_text())
        for panel in data["panels"]:
            assert panel["xlabel"] == xlabel and panel["yscale"] == "log"
            assert panel["problem"] == "poisson1d"
            assert {s["label"].split()[0] for s in panel["series"]} == {"KAN", "MLP(tanh)"}
    scaling = json.loads((folder / "scaling_params.json").read_text())
    assert [p["metric"] for p in scaling["panels"]] == ["rel_l2", "rel_h1"]
    for panel in scaling["panels"]:
        assert panel["xscale"] == "log"
        for series in panel["series"]:
            assert series["x"] == [params[series["label"].split()[0]]]
            assert series["y_min"][0] <= series["y"][0] <= series["y_max"][0]


def test_compare_is_idempotent_and_reports_unusable_runs(sweep, tmp_path):
    folder, _ = sweep
    out = tmp_path / "report"
    # a corrupt results file and a job folder that never wrote one, beside the sweep
    broken = tmp_path / "extra" / "broken"
    broken.mkdir(parents=True)
    (broken / "results.h5").write_bytes(b"not hdf5")
    unfinished = tmp_path / "extra" / "unfinished"
    (unfinished / ".hydra").mkdir(parents=True)
    (unfinished / ".hydra" / "config.yaml").write_text("seed: 0\n")
    assert compare_main([str(folder), str(tmp_path / "extra"), "--out", str(out)]) == 0
    first = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert {"comparison.csv", "comparison.md", "scaling_params.png", "scaling_time.png", "curves.png"} <= set(first)
    report = (out / "comparison.md").read_text()
    assert f"`{broken / 'results.h5'}`: unreadable" in report
    assert f"`{unfinished}`: no results.h5" in report
    assert compare_main([str(folder), str(tmp_path / "extra"), "--out", str(out)]) == 0
    second = {p.name: p.read_bytes() for p in sorted(out.iterdir())}
    assert second == first


def test_compare_without_runs_fails_clearly(tmp_path, capsys):
    assert compare_main([str(tmp_path)]) == 1
    assert "no usable results.h5" in capsys.readouterr().err
    assert compare_main([str(tmp_path / "missing")]) == 2
    assert "is not a folder" in capsys.readouterr().err
