"""Data-parallel training with ``torch.distributed``: one run spread over several processes.

Launch one process per GPU (or per group of CPU cores) with ``torchrun`` or ``srun``; every
process holds the whole model and the whole (cheap) coordinate set of the collocation and
boundary points, and evaluates the loss on its own disjoint shard of them: rows ``rank``,
``rank + world_size``, ... of each point set.  The global point set is exactly the one a
one-process run with the same seed draws.  Each process computes its shard's share of every
mean (sum of squares over the shard, divided by the global count), back-propagates it, and
one ``all_reduce`` (sum) of the gradients and the loss terms, flattened into a single buffer,
gives every process the global loss and gradient.  That happens inside the optimizer's
closure, so Adam and L-BFGS alike (its line search included) see the global loss and every
process takes the same step.  (The residual needs the model's derivative jets, not its
``forward``, so :class:`torch.nn.parallel.DistributedDataParallel`'s forward hook would not
see the work; the single fused all-reduce after ``backward`` is what it would do.)

Where the environment comes from:

- ``torchrun``: ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``MASTER_ADDR``, ``MASTER_PORT``;
- ``srun`` (SLURM): ``SLURM_PROCID``, ``SLURM_STEP_NUM_TASKS`` (set by ``srun``, not by the batch
  script itself), ``SLURM_LOCALID``; ``MASTER_ADDR`` defaults to the first host of the job's
  node list, ``MASTER_PORT`` to ``15000 + job id % 20000``.

The backend follows the device: ``nccl`` for CUDA (each process takes GPU ``LOCAL_RANK``),
``gloo`` on CPU.  Without such an environment (or with one process) everything here is the
identity: :data:`SINGLE`.
"""
from __future__ import annotations

import datetime
import gc
import os
import re
import subprocess
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch

from .errors import SetupError

__all__ = ["DistributedSetupError", "LaunchEnvironment", "DistributedContext", "SINGLE", "launch_environment",
           "init_distributed", "current", "shutdown", "first_slurm_host"]


class DistributedSetupError(SetupError):
    """A distributed launch that cannot start: an incomplete launcher environment, a device
    that is not there, or point sets too small to share out."""


@dataclass(frozen=True)
class LaunchEnvironment:
    """What the launcher says about this process: its rank among ``world_size`` processes, its
    rank on its node (``local_rank``, the GPU it takes), and where rank 0 listens."""

    rank: int
    world_size: int
    local_rank: int
    master_addr: str
    master_port: int
    launcher: str  # "torchrun" or "srun"


def _int(environ: Mapping[str, str], key: str, launcher: str) -> int:
    value = environ.get(key, "")
    try:
        return int(value)
    except ValueError:
        raise DistributedSetupError(f"{launcher} environment: {key}={value!r} is not an integer") from None


def first_slurm_host(nodelist: str) -> str:
    """The first host of a SLURM node list (``node[03-05,7],gpu1`` -> ``node03``), through
    ``scontrol show hostnames`` where it is installed, else read from the common forms."""
    try:
        out = subprocess.run(["scontrol", "show", "hostnames", nodelist], capture_output=True, text=True,
                             timeout=30, check=True).stdout.split()
        if out:
            return out[0]
    except (OSError, subprocess.SubprocessError):
        pass
    first = re.match(r"([^,\[]+)(?:\[([^\]]+)\])?", nodelist.strip())
    if not first:
        raise DistributedSetupError(f"cannot read the first host of SLURM_JOB_NODELIST={nodelist!r}; set MASTER_ADDR")
    prefix, ranges = first.group(1), first.group(2)
    if not ranges:
        return prefix
    return prefix + ranges.split(",")[0].split("-")[0]


def launch_environment(environ: Mapping[str, str] | None = None) -> LaunchEnvironment | None:
    """The launcher's description of a multi-process run, or ``None`` for a single process.

    Raises :class:`DistributedSetupError` naming what is missing when the environment says
    several processes but not how to reach rank 0 (the rendezvous)."""
    env = os.environ if environ is None else environ
    if "WORLD_SIZE" in env:
        world = _int(env, "WORLD_SIZE", "torchrun")
        if world <= 1:
            return None
        missing = [k for k in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not env.get(k)]
        if missing:
            raise DistributedSetupError(
                f"WORLD_SIZE={world} says this is one of {world} processes, but the rendezvous environment lacks "
                f"{', '.join(missing)}; launch with `torchrun --nproc_per_node={world} -m kanpde ...` (which sets "
                f"RANK, LOCAL_RANK, MASTER_ADDR and MASTER_PORT), or set them yourself")
        rank = _int(env, "RANK", "torchrun")
        local = _int(env, "LOCAL_RANK", "torchrun") if env.get("LOCAL_RANK") else 0
        return _checked(LaunchEnvironment(rank, world, local, env["MASTER_ADDR"],
                                          _int(env, "MASTER_PORT", "torchrun"), "torchrun"))
    if env.get("SLURM_STEP_NUM_TASKS") and env.get("SLURM_PROCID"):
        world = _int(env, "SLURM_STEP_NUM_TASKS", "srun")
        if world <= 1:
            return None
        addr = env.get("MASTER_ADDR")
        if not addr:
            nodes = env.get("SLURM_STEP_NODELIST") or env.get("SLURM_JOB_NODELIST")
            if not nodes:
                raise DistributedSetupError(
                    f"srun started {world} processes, but neither MASTER_ADDR nor SLURM_JOB_NODELIST says where "
                    f"rank 0 runs; export MASTER_ADDR=<first node> before srun")
            addr = first_slurm_host(nodes)
        if env.get("MASTER_PORT"):
            port = _int(env, "MASTER_PORT", "srun")
        else:  # one port per job, so jobs sharing a node do not collide
            port = 15000 + _int(env, "SLURM_JOB_ID", "srun") % 20000 if env.get("SLURM_JOB_ID") else 29500
        local = _int(env, "SLURM_LOCALID", "srun") if env.get("SLURM_LOCALID") else 0
        return _checked(LaunchEnvironment(_int(env, "SLURM_PROCID", "srun"), world, local, addr, port, "srun"))
    return None


def _checked(launch: LaunchEnvironment) -> LaunchEnvironment:
    if not 0 <= launch.rank < launch.world_size:
        raise DistributedSetupError(f"{launch.launcher} environment: rank {launch.rank} is outside 0..."
                                    f"{launch.world_size - 1} (world size {launch.world_size})")
    if not 0 < launch.master_port < 65536:
        raise DistributedSetupError(f"{launch.launcher} environment: MASTER_PORT={launch.master_port} is not a port "
                                    f"number (1-65535)")
    return launch


class DistributedContext:
    """This process's place in a data-parallel run, and the collective operations the trainer
    needs.  With ``world_size == 1`` (:data:`SINGLE`) every operation is the identity."""

    def __init__(self, rank: int = 0, world_size: int = 1, local_rank: int = 0, backend: str | None = None):
        self.rank, self.world_size, self.local_rank, self.backend = rank, world_size, local_rank, backend

    def __repr__(self) -> str:
        return (f"DistributedContext(rank={self.rank}, world_size={self.world_size}, local_rank={self.local_rank}, "
                f"backend={self.backend!r})")

    @property
    def active(self) -> bool:
        """Several processes share the run."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that evaluates, writes and prints."""
        return self.rank == 0

    @property
    def comm_device(self) -> torch.device:
        """Where tensors for the backend live (NCCL talks CUDA only)."""
        return torch.device("cuda", self.local_rank) if self.backend == "nccl" else torch.device("cpu")

    def device(self, requested: str) -> torch.device:
        """The device this process trains on: ``requested`` (``auto``, ``cpu``, ``cuda``,
        ``cuda:N``), with ``cuda`` meaning GPU ``local_rank`` in a distributed run."""
        from .trainer import resolve_device

        dev = resolve_device(requested)
        if self.active and dev.type == "cuda":
            return torch.device("cuda", self.local_rank)
        return dev

    # ------------------------------------------------------------------ sharding
    def shard(self, t):
        """This process's rows of ``t`` (``t[rank::world_size]``); ``t`` itself in one process."""
        return t[self.rank::self.world_size] if self.active else t

    def check_shardable(self, n: int, what: str) -> None:
        """Refuse a point set with fewer points than processes (a process without points)."""
        if self.active and n < self.world_size:
            raise DistributedSetupError(
                f"{what} has {n} point(s), fewer than the {self.world_size} processes of this run (world size); "
                f"every process needs at least one: run fewer processes or give it more points")

    # ------------------------------------------------------------------ collectives
    def all_reduce_sum(self, t: torch.Tensor) -> torch.Tensor:
        """``t`` summed over the processes, in place (``t`` unchanged in one process)."""
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.SUM)
        return t

    def all_reduce_max(self, t: torch.Tensor) -> torch.Tensor:
        """``t``'s element-wise maximum over the processes, in place."""
        if self.active:
            import torch.distributed as dist

            dist.all_reduce(t, op=dist.ReduceOp.MAX)
        return t

    def all_reduce_sum_many(self, tensors: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """Each of ``tensors`` (one dtype and device) summed over the processes, in one
        all-reduce of their flattened concatenation; ``tensors`` themselves in one process."""
        if not self.active or not tensors:
            return list(tensors)
        flat = self.all_reduce_sum(torch.cat([t.reshape(-1) for t in tensors]))
        return list(_split_like(flat, tensors))

    def broadcast_tensors(self, tensors: Sequence[torch.Tensor]) -> None:
        """Overwrite ``tensors`` with rank 0's values (one flattened broadcast per dtype)."""
        if not self.active:
            return
        import torch.distributed as dist

        by_dtype: dict[Any, list[torch.Tensor]] = {}
        for t in tensors:
            by_dtype.setdefault(t.dtype, []).append(t)
        for group in by_dtype.values():
            flat = torch.cat([t.detach().reshape(-1).to(self.comm_device) for t in group])
            dist.broadcast(flat, src=0)
            with torch.no_grad():
                for t, value in zip(group, _split_like(flat, group)):
                    t.copy_(value)

    def broadcast(self, obj: Any) -> Any:
        """Rank 0's ``obj`` (any picklable object) on every process."""
        if not self.active:
            return obj
        import torch.distributed as dist

        box = [obj]
        dist.broadcast_object_list(box, src=0, device=self.comm_device)
        return box[0]

    def gather_rows(self, local: torch.Tensor, n_total: int) -> torch.Tensor:
        """The inverse of :meth:`shard`: the ``(n_total, ...)`` tensor whose rows ``rank::world``
        each process holds as ``local``; the same on every process."""
        if not self.active:
            return local
        import torch.distributed as dist

        longest = -(-n_total // self.world_size)
        padded = local.new_zeros((longest, *local.shape[1:]))
        padded[:local.shape[0]] = local
        parts = [torch.empty_like(padded) for _ in range(self.world_size)]
        dist.all_gather(parts, padded.contiguous())
        out = local.new_empty((n_total, *local.shape[1:]))
        for r, part in enumerate(parts):
            rows = len(range(r, n_total, self.world_size))
            out[r::self.world_size] = part[:rows]
        return out

    def gather_objects(self, obj: Any) -> list:
        """Every process's ``obj`` (picklable), in rank order, on every process."""
        if not self.active:
            return [obj]
        import torch.distributed as dist

        out: list[Any] = [None] * self.world_size
        dist.all_gather_object(out, obj)
        return out

    def agree(self, error: BaseException | None) -> None:
        """Every process learns whether any failed: re-raise ``error`` here, or raise a
        :class:`DistributedSetupError` citing the first process that failed, so that no
        process waits forever for one that left."""
        if not self.active:
            if error is not None:
                raise error
            return
        messages = self.gather_objects(None if error is None else f"{type(error).__name__}: {error}")
        if error is not None:
            raise error
        failed = [(r, m) for r, m in enumerate(messages) if m is not None]
        if failed:
            rank, message = failed[0]
            raise DistributedSetupError(f"process {rank} of {self.world_size} failed: {message}")


def _split_like(flat: torch.Tensor, tensors: Sequence[torch.Tensor]):
    """Views of ``flat`` shaped like each of ``tensors``, in order (the inverse of flattening
    and concatenating them)."""
    offset = 0
    for t in tensors:
        yield flat[offset:offset + t.numel()].view_as(t)
        offset += t.numel()


#: the context of a run in one process
SINGLE = DistributedContext()


def current() -> DistributedContext:
    """The context of the initialised default process group, or :data:`SINGLE` without one."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() <= 1:
        return SINGLE
    local = os.environ.get("LOCAL_RANK") or os.environ.get("SLURM_LOCALID") or "0"
    return DistributedContext(dist.get_rank(), dist.get_world_size(), int(local) if local.isdigit() else 0,
                              dist.get_backend())


def init_distributed(device: str = "auto", environ: Mapping[str, str] | None = None,
                     timeout_s: float = 1800.0) -> DistributedContext:
    """Join the process group the launcher (``torchrun``, ``srun``) describes and return this
    process's context; :data:`SINGLE` when the environment describes no multi-process run.

    The backend follows ``device``: ``nccl`` for CUDA (this process then works on GPU
    ``LOCAL_RANK``), ``gloo`` on CPU.  Calling it again returns the existing group's context.
    Raises :class:`DistributedSetupError` for a CUDA request without CUDA (or with fewer GPUs
    than processes on the node) and an environment that lacks the rendezvous."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return current()
    launch = launch_environment(environ)
    if launch is None:
        return SINGLE
    if not dist.is_available():
        raise DistributedSetupError("this torch build has no torch.distributed; a multi-process run needs it")
    wants_cuda = str(device).startswith("cuda") or (device == "auto" and torch.cuda.is_available())
    if wants_cuda:
        if not torch.cuda.is_available():
            raise DistributedSetupError(f"device={device!r} was requested for a {launch.world_size}-process run, but "
                                        f"torch sees no CUDA device here; use device=cpu (backend gloo) or run on "
                                        f"GPU nodes")
        if launch.local_rank >= torch.cuda.device_count():
            raise DistributedSetupError(
                f"process {launch.rank} has local rank {launch.local_rank}, but this node shows "
                f"{torch.cuda.device_count()} GPU(s); start at most one process per GPU "
                f"(torchrun --nproc_per_node / SLURM --ntasks-per-node = GPUs per node)")
        torch.cuda.set_device(launch.local_rank)
    backend = "nccl" if wants_cuda else "gloo"
    os.environ.setdefault("MASTER_ADDR", launch.master_addr)
    os.environ.setdefault("MASTER_PORT", str(launch.master_port))
    try:
        dist.init_process_group(backend, init_method="env://", rank=launch.rank, world_size=launch.world_size,
                                timeout=datetime.timedelta(seconds=timeout_s))
    except (RuntimeError, ValueError, OSError) as exc:
        raise DistributedSetupError(
            f"process {launch.rank} of {launch.world_size} could not join the process group at "
            f"{launch.master_addr}:{launch.master_port} (backend {backend}): {exc}") from None
    return DistributedContext(launch.rank, launch.world_size, launch.local_rank, backend)


def shutdown() -> None:
    """Leave the process group (if any), so the process exits cleanly.

    Unreachable objects of the run (a trainer's reference cycles) are collected first, while
    the group is alive: freed only at interpreter exit, after the group, they may take gloo's
    worker threads down with the process (SIGABRT, "terminate called without an active
    exception"), in about one run in four here."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        gc.collect()
        dist.destroy_process_group()
