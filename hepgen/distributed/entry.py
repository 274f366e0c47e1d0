"""An entry point's life in a job: join it, name the failing rank, leave it.

``with job(device) as ctx:`` joins the process group the launcher describes (or none), and
on the way out leaves it. An exception on a rank of a distributed job prints
``rank R of W: <error>`` on stderr before it propagates (the CLI then exits non-zero and
torchrun stops the other ranks); under torchrun, :func:`recorded` also writes the error
file torchrun reads (torch.distributed.elastic's ``@record``) so its summary shows the
failing rank's traceback. Peers blocked in a collective with a dead rank are stopped by
torchrun, or raise after HEPGEN_DIST_TIMEOUT seconds (hepgen.distributed.context).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch

from hepgen.distributed.context import Context, init_from_env, shutdown


@contextmanager
def job(device: str | torch.device | None = "cpu") -> Iterator[Context]:
    ctx = init_from_env(device)
    try:
        yield ctx
    except KeyboardInterrupt:
        # Ctrl-C, or SIGTERM (the CLI turns it into Ctrl-C): torchrun stopping this rank
        # because another failed, or the user stopping the job; not this rank's fault.
        raise
    except BaseException as err:
        if ctx.distributed:
            text = str(err).strip().splitlines()[0] if str(err).strip() else ""
            print(f"rank {ctx.rank} of {ctx.world_size}: {type(err).__name__}: {text}", file=sys.stderr, flush=True)
        raise
    finally:
        shutdown()


def recorded(fn: Callable) -> Callable:
    """``fn`` under torch.distributed.elastic's ``@record`` (the error file torchrun reads)
    when torchrun asked for one; ``fn`` itself otherwise."""
    if "TORCHELASTIC_ERROR_FILE" not in os.environ:
        return fn
    from torch.distributed.elastic.multiprocessing.errors import record

    return record(fn)
