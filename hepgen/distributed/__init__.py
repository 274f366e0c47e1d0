"""Running hepgen across processes with torch.distributed (torchrun, SLURM's srun).

The process group is PyTorch's own: gloo on CPU, NCCL on CUDA. :func:`init_from_env`
reads what the launcher put in the environment and returns a :class:`Context`; with no
launcher it returns the single-process context, so every entry point runs the same code
with one process or many. See docs/distributed.md.
"""

from hepgen.distributed.context import (
    Context,
    all_reduce_sum,
    barrier,
    broadcast_object,
    current,
    gather_objects,
    init_from_env,
    launcher_environment,
    shutdown,
)
from hepgen.distributed.sampler import StratifiedBatches
from hepgen.distributed.shards import ArrayRows, FileRows, Rows

__all__ = [
    "ArrayRows",
    "Context",
    "FileRows",
    "Rows",
    "StratifiedBatches",
    "all_reduce_sum",
    "barrier",
    "broadcast_object",
    "current",
    "gather_objects",
    "init_from_env",
    "launcher_environment",
    "shutdown",
]
