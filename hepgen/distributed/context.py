"""Who am I among the processes: the launcher's environment, the process group, small collectives.

torchrun sets RANK, WORLD_SIZE, LOCAL_RANK, MASTER_ADDR and MASTER_PORT. Under SLURM, `srun`
sets SLURM_PROCID, SLURM_NTASKS and SLURM_LOCALID; MASTER_ADDR and MASTER_PORT must then be
exported by the batch script (the first host of the allocation and a free port), as
docs/distributed.md shows: guessing them from SLURM_NODELIST would need `scontrol`, which a
compute node may not have. torchrun's variables win where both are set (torchrun inside an
allocation).

Faults: the process group gets a finite timeout (HEPGEN_DIST_TIMEOUT seconds, default 600),
so a rank waiting for a dead peer raises instead of hanging; under torchrun the agent stops
the other ranks when one exits with an error and names it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist

_CURRENT: Context | None = None


@dataclass(frozen=True)
class Context:
    """This process's place in the job: rank r of world_size, on `device`."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None  # None: a single process, no process group
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the one process that writes checkpoints, logs and progress."""
        return self.rank == 0

    def describe(self) -> str:
        if not self.distributed:
            return f"1 process on {self.device}"
        return f"rank {self.rank} of {self.world_size} ({self.backend}, {self.device})"


def _int_env(env, name: str) -> int:
    value = env[name]
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def launcher_environment(env=None) -> tuple[int, int, int] | None:
    """(rank, world size, local rank) from torchrun's or SLURM's variables; None without a launcher."""
    env = os.environ if env is None else env
    if "RANK" in env and "WORLD_SIZE" in env:
        rank, world = _int_env(env, "RANK"), _int_env(env, "WORLD_SIZE")
        local = _int_env(env, "LOCAL_RANK") if "LOCAL_RANK" in env else rank
    elif "SLURM_PROCID" in env and "SLURM_NTASKS" in env:
        rank, world = _int_env(env, "SLURM_PROCID"), _int_env(env, "SLURM_NTASKS")
        local = _int_env(env, "SLURM_LOCALID") if "SLURM_LOCALID" in env else 0
    else:
        return None
    if world < 1 or not 0 <= rank < world or local < 0:
        raise ValueError(f"launcher environment is inconsistent: rank {rank}, world size {world}, local rank {local}")
    return rank, world, local


def init_from_env(device: str | torch.device | None = None) -> Context:
    """Join the job the environment describes (idempotent) and return this process's Context.

    device: "cpu", "cuda" (this rank's GPU is cuda:LOCAL_RANK) or None (cuda when available).
    With no launcher variables, or a world of one, no process group is made.
    """
    global _CURRENT
    if _CURRENT is not None:
        return _CURRENT
    found = launcher_environment()
    rank, world, local = found or (0, 1, 0)
    want = torch.device(device) if device is not None else None
    use_cuda = want.type == "cuda" if want is not None else torch.cuda.is_available()
    if use_cuda:
        if not torch.cuda.is_available():
            raise RuntimeError("device cuda was asked for but no CUDA device is available")
        index = want.index if want is not None and want.index is not None else local % torch.cuda.device_count()
        dev = torch.device("cuda", index)
        torch.cuda.set_device(dev)
    else:
        dev = torch.device("cpu")
    if world == 1:
        _CURRENT = Context(rank, 1, local, None, dev)
        return _CURRENT
    for name in ("MASTER_ADDR", "MASTER_PORT"):
        if name not in os.environ:
            raise RuntimeError(
                f"{name} is not set: under SLURM export MASTER_ADDR (the first host) and MASTER_PORT "
                "in the batch script (docs/distributed.md); torchrun sets both"
            )
    backend = "nccl" if dev.type == "cuda" else "gloo"
    timeout = timedelta(seconds=float(os.environ.get("HEPGEN_DIST_TIMEOUT", "600")))
    if not dist.is_initialized():
        kwargs = {"device_id": dev} if backend == "nccl" else {}
        dist.init_process_group(backend, rank=rank, world_size=world, timeout=timeout, **kwargs)
    _CURRENT = Context(rank, world, local, backend, dev)
    return _CURRENT


def current() -> Context:
    """The Context of :func:`init_from_env`, or the single-process one if it was not called."""
    return _CURRENT if _CURRENT is not None else Context()


def shutdown() -> None:
    """Leave the process group (if any) and forget the Context."""
    global _CURRENT
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
    _CURRENT = None


def barrier() -> None:
    if current().distributed:
        dist.barrier()


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """Sum of `values` over the ranks (a new tensor; `values` itself on one process)."""
    ctx = current()
    if not ctx.distributed:
        return values
    out = values.detach().to(ctx.device, copy=True)
    dist.all_reduce(out, op=dist.ReduceOp.SUM)
    return out.to(values.device)


def broadcast_object(value: Any, src: int = 0) -> Any:
    """Rank `src`'s `value`, on every rank (picklable values only)."""
    if not current().distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def gather_objects(value: Any) -> list[Any]:
    """Every rank's `value`, in rank order, on every rank."""
    ctx = current()
    if not ctx.distributed:
        return [value]
    out: list[Any] = [None] * ctx.world_size
    dist.all_gather_object(out, value)
    return out
