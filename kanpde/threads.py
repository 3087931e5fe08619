"""How many CPU threads one training job uses: set by hand, or its launcher's share of the cores.

Jobs that run side by side must not each start a thread per core: two jobs of two threads on
two cores spend their time waiting for each other (torch's CPU kernels spin and then sleep
between parallel regions).  ``threads=auto`` (the default of the ``kanpde`` command) gives each
job the share of the machine its launcher leaves it:

- Hydra's joblib launcher (``hydra/launcher=joblib``, ``hydra.launcher.n_jobs=k``): the usable
  cores divided by the ``k`` jobs running at once (``n_jobs=-1``: one per core, so one thread each);
- the submitit launchers (``submitit_local``, ``submitit_slurm``, ``slurm``): the job's
  ``cpus_per_task`` (under SLURM the ``SLURM_CPUS_PER_TASK`` the scheduler granted);
- one process of a distributed run started by ``torchrun`` (``LOCAL_WORLD_SIZE`` processes on
  the node): the usable cores divided among the node's processes;
- any other launcher (the basic one runs jobs one after another): torch's own default, every core.

An integer ``threads=N`` sets the count outright.  Nothing here imports Hydra: the ``kanpde``
command hands over its launcher settings as a plain mapping.
"""
from __future__ import annotations

import numbers
import os
from collections.abc import Mapping
from typing import Any

__all__ = ["usable_cores", "job_threads", "apply_threads"]


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return max(1, os.cpu_count() or 1)


def job_threads(setting: Any, launcher: Mapping | None = None, environ: Mapping[str, str] | None = None,
                cores: int | None = None) -> int | None:
    """The thread count for one job, or ``None`` to leave torch's default.

    Args:
        setting: ``"auto"`` or a positive integer.
        launcher: the job's launcher settings (``hydra.launcher`` as a dict), or ``None``.
        environ: environment variables (default ``os.environ``), read for ``SLURM_CPUS_PER_TASK``.
        cores: usable cores (default :func:`usable_cores`).
    """
    if isinstance(setting, numbers.Integral) and not isinstance(setting, bool):
        if setting < 1:
            raise ValueError(f"threads must be 'auto' or an integer >= 1, got {setting!r}")
        return int(setting)
    if setting != "auto":
        raise ValueError(f"threads must be 'auto' or an integer >= 1, got {setting!r}")
    environ = os.environ if environ is None else environ
    cores = usable_cores() if cores is None else cores
    launcher = dict(launcher or {})
    target = str(launcher.get("_target_", ""))
    if "joblib" in target.lower():
        n_jobs = launcher.get("n_jobs", -1)
        # joblib: n_jobs = -1 is every core, -2 all but one, and so on
        parallel = n_jobs if isinstance(n_jobs, int) and n_jobs > 0 else max(1, cores + 1 + int(n_jobs or -1))
        return max(1, cores // min(parallel, cores))
    if "submitit" in target.lower():
        granted = environ.get("SLURM_CPUS_PER_TASK")
        if granted and granted.isdigit() and int(granted) > 0:
            return int(granted)
        cpus = launcher.get("cpus_per_task")
        if isinstance(cpus, int) and cpus > 0:
            return cpus
        return None
    local_procs = environ.get("LOCAL_WORLD_SIZE", "")
    if local_procs.isdigit() and int(local_procs) > 1:  # torchrun's processes share the node's cores
        return max(1, cores // int(local_procs))
    return None


def apply_threads(count: int | None) -> None:
    """Set torch's intra-op thread count (``None``: leave it)."""
    if count is None:
        return
    import torch

    if torch.get_num_threads() != count:
        torch.set_num_threads(count)
