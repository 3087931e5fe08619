"""The outcome of every job of a sweep, gathered at its end: ``sweep_status.csv`` and one line.

A sweep (``kanpde -m ...``) goes on when a job fails or diverges: the job records why in its
folder (``job_status.json``, written by the ``kanpde`` command) and returns.  When every job
has returned, Hydra calls :class:`SweepStatus` (registered in ``conf/config.yaml`` under
``hydra.callbacks``) on the machine that launched the sweep -- locally for the joblib and
submitit launchers alike -- which reads each job folder under ``hydra.sweep.dir`` and writes

- ``sweep_status.csv`` at the sweep's root: job number, folder, overrides, status
  (``completed``, ``time_limit``, ... as in ``results.h5``; ``diverged``; ``failed``), rel_l2 and
  the error message of a failed job;
- the line ``kanpde: sweep of N jobs: a completed, b diverged, c failed (sweep_status.csv in ...)``.

The ``kanpde`` command then exits with :data:`SWEEP_FAILED_EXIT` when any job did not complete.
"""
from __future__ import annotations

import csv
import io as _io
import json
from pathlib import Path
from typing import Any

from kanpde.cli_errors import EXIT_SWEEP

__all__ = ["SweepStatus", "JOB_STATUS", "SWEEP_CSV", "SWEEP_FAILED_EXIT", "job_outcome", "write_job_status",
           "last_sweep"]

JOB_STATUS = "job_status.json"
SWEEP_CSV = "sweep_status.csv"
#: exit code of a sweep in which some job failed or diverged
SWEEP_FAILED_EXIT = EXIT_SWEEP
#: statuses of runs that ended normally
_FINISHED = ("completed", "time_limit", "target_reached", "plateau")

#: the counts of the last sweep this process launched (read by the ``kanpde`` command for its exit code)
last_sweep: dict[str, int] = {}


def write_job_status(folder: str | Path, status: str, message: str, exit_code: int) -> None:
    """Record in a job's folder why it did not complete (atomically)."""
    from kanpde.io import atomic_path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with atomic_path(folder / JOB_STATUS) as tmp:
        Path(tmp).write_text(json.dumps({"status": status, "message": message, "exit_code": exit_code}, indent=1))


def job_outcome(folder: Path) -> dict[str, Any]:
    """Status, rel_l2 and message of one job folder: ``job_status.json`` if the job wrote one,
    else its ``results.h5``, else ``failed`` (the job ended without either)."""
    record = {"status": "failed", "rel_l2": "", "message": ""}
    status_file = folder / JOB_STATUS
    if status_file.exists():
        try:
            saved = json.loads(status_file.read_text())
            record.update(status=str(saved.get("status", "failed")), message=str(saved.get("message", "")))
        except (OSError, ValueError) as exc:
            record["message"] = f"unreadable {JOB_STATUS}: {exc}"
    results = folder / "results.h5"
    if results.exists():
        try:
            from kanpde.io import read_results

            res = read_results(results)
            if not status_file.exists():
                record["status"] = str(res.attrs.get("status", "completed"))
            record["rel_l2"] = f"{res.metrics.get('rel_l2', float('nan')):.6g}"
        except Exception as exc:  # a partial file is a result of its own
            record.update(status="failed", message=f"unreadable results.h5: {exc}")
    elif not status_file.exists():
        record["message"] = "the job ended without results.h5 or job_status.json (killed?)"
    return record


def _overrides(folder: Path) -> str:
    path = folder / ".hydra" / "overrides.yaml"
    try:
        import yaml

        items = yaml.safe_load(path.read_text()) or []
        return " ".join(str(i) for i in items)
    except Exception:
        return ""


def _job_number(folder: Path) -> int:
    try:
        import yaml

        hydra_cfg = yaml.safe_load((folder / ".hydra" / "hydra.yaml").read_text())
        return int(hydra_cfg["hydra"]["job"]["num"])
    except Exception:
        return -1


def summarize(sweep_dir: str | Path) -> dict[str, Any]:
    """Write ``sweep_status.csv`` for the job folders under ``sweep_dir``; return the counts
    (``completed``, ``diverged``, ``failed``, ``jobs``) and the csv path."""
    from kanpde.io import atomic_path

    root = Path(sweep_dir)
    folders = sorted({p.parent.parent for p in root.rglob(".hydra/overrides.yaml")},
                     key=lambda f: (_job_number(f), str(f)))
    rows = []
    counts = {"completed": 0, "diverged": 0, "failed": 0}
    for folder in folders:
        outcome = job_outcome(folder)
        kind = "completed" if outcome["status"] in _FINISHED else \
            "diverged" if outcome["status"] == "diverged" else "failed"
        counts[kind] += 1
        rows.append({"job": _job_number(folder), "folder": str(folder.relative_to(root)),
                     "overrides": _overrides(folder), **outcome})
    buf = _io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=["job", "folder", "overrides", "status", "rel_l2", "message"],
                            lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    root.mkdir(parents=True, exist_ok=True)
    with atomic_path(root / SWEEP_CSV) as tmp:
        Path(tmp).write_text(buf.getvalue())
    return {**counts, "jobs": len(rows), "csv": root / SWEEP_CSV}


try:
    from hydra.experimental.callback import Callback as _Callback
except ImportError:  # pragma: no cover - hydra-core < 1.1
    _Callback = object


class SweepStatus(_Callback):
    """Hydra callback: at the end of a multirun, :func:`summarize` the sweep folder and print
    one line; the counts go to :data:`last_sweep` for the command's exit code."""

    def on_multirun_end(self, config, **kwargs) -> None:
        summary = summarize(config.hydra.sweep.dir)
        last_sweep.clear()
        last_sweep.update({k: summary[k] for k in ("completed", "diverged", "failed", "jobs")})
        print(f"kanpde: sweep of {summary['jobs']} jobs: {summary['completed']} completed, "
              f"{summary['diverged']} diverged, {summary['failed']} failed ({SWEEP_CSV} in {config.hydra.sweep.dir})",
              flush=True)
