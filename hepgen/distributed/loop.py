"""The training loop every hepgen trainer shares, on one process or many.

:class:`EpochRunner` runs the optimizer steps of an epoch over this rank's shard: the
examples of each step from :class:`~hepgen.distributed.sampler.StratifiedBatches`, the
loss through DDP (:mod:`hepgen.distributed.ddp`), the loss's random draws through
:class:`~hepgen.distributed.draws.SplitDraws` seeded by (seed, stream, global step), so a
step's result depends only on the run's position, never on the number of ranks.
:func:`validation_loss` is the held-out loss, reduced over ranks, with draws seeded per
block of examples. Side effects (checkpoints, logs, progress) are the trainers' and
happen on rank 0 only (``Context.is_main``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch
from torch import nn

from hepgen.distributed.context import Context
from hepgen.distributed.ddp import LossModule, combine, reduce_mean, wrap
from hepgen.distributed.draws import SplitDraws, mix_seed
from hepgen.distributed.sampler import StratifiedBatches


class EpochRunner:
    """Optimizer steps over ``data`` (this rank's shard: tensors with one row per example).

    ``loss_fn(*batch) -> (loss, weight, penalty)`` (see :mod:`hepgen.distributed.ddp`);
    ``after_step(step)`` runs after each optimizer step (e.g. the EMA update); ``stream``
    separates the draws of runners that share a seed (CaloMan's phases);
    ``unused_parameters``: a batch may leave some parameters unused (see ddp.wrap)."""

    def __init__(
        self,
        ctx: Context,
        batches: StratifiedBatches,
        data: Sequence[torch.Tensor],
        loss_fn: Callable,
        modules: Sequence[nn.Module],
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        *,
        seed: int,
        stream: int = 0,
        grad_clip: float | None = None,
        after_step: Callable[[int], None] | None = None,
        name: str = "training",
        unused_parameters: bool = False,
    ):
        self.ctx, self.batches, self.data = ctx, batches, tuple(data)
        self.local = batches.check_world(ctx.world_size)
        start, stop = batches.shard(ctx.rank, ctx.world_size)
        if any(len(t) != stop - start for t in self.data):
            lengths = [len(t) for t in self.data]
            raise ValueError(f"{name}: this rank's shard has {stop - start} rows, the data {lengths}")
        self.net = wrap(LossModule(loss_fn, modules), ctx, unused_parameters)
        self.params = [p for m in modules for p in m.parameters() if p.requires_grad]
        self.optimizer, self.scheduler = optimizer, scheduler
        self.seed, self.stream, self.grad_clip = seed, stream, grad_clip
        self.after_step, self.name = after_step, name
        self.seconds, self.samples = 0.0, 0  # wall time in run_epoch, global examples trained on

    @property
    def samples_per_second(self) -> float:
        """Training throughput of the whole job (all ranks) so far."""
        return self.samples / self.seconds if self.seconds > 0 else 0.0

    def run_epoch(self, epoch: int) -> float:
        """The optimizer steps of ``epoch``; the mean over its steps of the global batch loss."""
        ctx, steps = self.ctx, self.batches.steps_per_epoch
        started = time.perf_counter()
        order = self.batches.epoch_order(epoch, ctx.rank, ctx.world_size)
        device = self.data[0].device
        total = 0.0
        for s in range(steps):
            step = epoch * steps + s
            idx = order[s].to(device)
            batch = tuple(t[idx] for t in self.data)
            draws = SplitDraws(
                mix_seed(self.seed, self.stream, step), self.batches.batch, ctx.rank * self.local, self.local
            )
            with draws:
                loss, weight, penalty = self.net(*batch)
            global_loss, scale = combine(ctx, loss, weight)
            if not math.isfinite(global_loss):
                raise RuntimeError(f"{self.name}, epoch {epoch + 1}: the loss became {global_loss} (try a smaller lr)")
            objective = loss if scale == 1.0 else loss * scale
            self.optimizer.zero_grad(set_to_none=True)
            (objective + penalty).backward()
            if self.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(self.params, self.grad_clip)
            self.optimizer.step()
            self.scheduler.step()
            if self.after_step is not None:
                self.after_step(step)
            total += global_loss
        self.seconds += time.perf_counter() - started
        self.samples += steps * self.batches.batch
        return total / steps


def block_shard(n: int, block: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows [start, stop) of rank ``rank``: whole blocks of ``block`` rows, split evenly."""
    blocks = -(-n // block)
    first, last = rank * blocks // world_size, (rank + 1) * blocks // world_size
    return min(first * block, n), min(last * block, n)


@torch.no_grad()
def validation_loss(
    ctx: Context, loss_fn: Callable, data: Sequence[torch.Tensor], n: int, block: int, seed: int
) -> float:
    """The mean loss over ``n`` held-out examples, of which ``data`` holds this rank's
    :func:`block_shard`; block k's draws are seeded by (seed, k), so the result is the same
    on any number of ranks (up to the float64 sum's rounding)."""
    start, stop = block_shard(n, block, ctx.rank, ctx.world_size)
    if any(len(t) != stop - start for t in data):
        raise ValueError(f"validation: this rank's shard has {stop - start} rows, the data {[len(t) for t in data]}")
    weighted, weights = 0.0, 0.0
    for offset in range(0, stop - start, block):
        k = (start + offset) // block
        rows = slice(offset, min(offset + block, stop - start))
        size = rows.stop - rows.start
        with SplitDraws(mix_seed(seed, k), size, 0, size):
            loss, weight, _ = loss_fn(*(t[rows] for t in data))
        weighted += float(loss) * float(weight)
        weights += float(weight)
    return reduce_mean(ctx, weighted, weights)
