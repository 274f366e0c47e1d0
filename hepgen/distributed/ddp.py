"""DistributedDataParallel around a trainer's loss, and the loss of a batch split over ranks.

A trainer gives ``loss_fn(*batch) -> (loss, weight, penalty)``: the loss of its part of the
global batch as the model defines it (a mean over what the model averages: samples, real
particles, real components), the ``weight`` that mean is over (the count), and a
``penalty`` that does not depend on the batch (a Bayesian KL term; 0 when none).
:class:`LossModule` makes it a module that owns the trained modules, so that DDP (one
process per rank, gradients all-reduced and averaged in backward) can wrap it.

Why the weight: DDP averages the ranks' gradients, which equals the gradient of the global
batch's loss only when every rank's mean is over the same count. A masked mean (EPiC: over
real particles; the event CFM and DDPM: over real components) is not, so each rank's loss
is scaled by K * w_r / sum(w): the average over ranks is then exactly sum(l_r w_r) / sum(w),
the loss one process computes for the whole batch. One all-reduce of two numbers per step
gives sum(w) and the global loss (so every rank sees a non-finite loss at the same step).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence

import torch
from torch import nn

from hepgen.distributed.context import Context, all_reduce_sum


class LossModule(nn.Module):
    """``forward(*batch)`` is ``loss_fn(*batch)``; ``modules`` are what it trains."""

    def __init__(self, loss_fn: Callable, modules: Sequence[nn.Module]):
        super().__init__()
        self.trained = nn.ModuleList(modules)
        self._loss_fn = loss_fn

    def forward(self, *batch):
        return self._loss_fn(*batch)


def wrap(module: LossModule, ctx: Context, unused_parameters: bool = False) -> nn.Module:
    """``module`` in DDP when the job is distributed, else itself.

    ``unused_parameters``: a batch may leave parts of the model unused (the INN's flow of a
    multiplicity absent from this rank's slice; JetGPT's positions past the longest event);
    DDP then looks for them after each forward (a cost; without it such a step fails with
    DDP's error, never silently). Buffers are not broadcast: here they are fitted
    preprocessing, equal on every rank and constant in training."""
    if not ctx.distributed:
        return module
    from torch.nn.parallel import DistributedDataParallel

    device_ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    # torch >= 2.13 names the flag forward_sync_buffers (and deprecates broadcast_buffers).
    no_sync = (
        {"forward_sync_buffers": False}
        if "forward_sync_buffers" in inspect.signature(DistributedDataParallel.__init__).parameters
        else {"broadcast_buffers": False}
    )
    return DistributedDataParallel(module, device_ids=device_ids, find_unused_parameters=unused_parameters, **no_sync)


def combine(ctx: Context, loss: torch.Tensor, weight: torch.Tensor) -> tuple[float, float]:
    """(the global batch's loss, this rank's loss scale K w_r / sum w) from this rank's
    (loss, weight); (loss, 1.0) on one process."""
    if not ctx.distributed:
        return float(loss.detach()), 1.0
    local = torch.stack([weight.detach().double().reshape(()), (loss.detach().double() * weight.detach().double())])
    total = all_reduce_sum(local.cpu())
    w_sum = float(total[0])
    if not w_sum > 0:
        raise RuntimeError("the global batch has no weight (no real particles or components)")
    return float(total[1]) / w_sum, ctx.world_size * float(weight) / w_sum


def reduce_mean(ctx: Context, weighted_sum: float, weight: float) -> float:
    """sum over ranks of ``weighted_sum`` / sum over ranks of ``weight`` (a validation loss)."""
    total = all_reduce_sum(torch.tensor([weighted_sum, weight], dtype=torch.float64))
    return float(total[0]) / float(total[1]) if float(total[1]) > 0 else float("nan")


def mean_std(ctx: Context, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and (unbiased) standard deviation over the rows of all ranks' ``values`` [n_r, F],
    in two passes (sums, then squared deviations from the mean) in float64."""
    x = values.double()
    count_sum = all_reduce_sum(
        torch.cat([torch.tensor([float(len(x))], dtype=torch.float64, device=x.device), x.sum(0)])
    )
    count, mean = count_sum[0], count_sum[1:] / count_sum[0]
    var = all_reduce_sum(((x - mean) ** 2).sum(0)) / (count - 1).clamp_min(1)
    return mean.to(values.dtype), var.sqrt().to(values.dtype)
