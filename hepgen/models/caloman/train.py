"""Training CaloMan in three phases: the VAE, then the latent flow on the frozen encoder's
means, then the energy-per-layer flow. Each phase is Adam with a cosine-decayed learning rate."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from hepgen.distributed.context import current
from hepgen.distributed.ddp import mean_std
from hepgen.distributed.draws import SplitDraws, mix_seed
from hepgen.distributed.loop import EpochRunner
from hepgen.distributed.sampler import StratifiedBatches
from hepgen.distributed.shards import ArrayRows, Rows
from hepgen.models.caloman.config import CaloManConfig
from hepgen.models.caloman.model import CaloMan
from hepgen.models.checkpoint import provenance


@dataclass
class TrainResult:
    model: CaloMan
    history: dict[str, list[float]] = field(default_factory=dict)  # phase -> mean loss per epoch
    samples_per_second: dict[str, float] = field(default_factory=dict)  # phase -> throughput, all ranks


def _check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _fit(ctx, name, modules, loss_fn, data, n, epochs, batch_size, lr, seed, stream, progress, speeds):
    """Minibatch Adam over ``data`` (this rank's shard of tensors with one row per sample,
    of ``n`` in all); the mean loss per epoch (the shared loop: hepgen.distributed.loop)."""
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    batches = StratifiedBatches(n, min(batch_size, n), mix_seed(seed, stream))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * batches.steps_per_epoch)

    def per_sample(*batch):  # each phase's loss is a mean over samples
        return loss_fn(*batch), torch.tensor(float(len(batch[0]))), 0.0

    runner = EpochRunner(
        ctx, batches, data, per_sample, modules, opt, sched, seed=seed, stream=stream, grad_clip=10.0, name=name
    )  # grad_clip: flows can spike early; keeps Adam sane
    history = []
    bar = progress(range(epochs), name) if progress and ctx.is_main else range(epochs)
    for epoch in bar:
        history.append(runner.run_epoch(epoch))
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{history[-1]:.4g}")
    speeds[name] = runner.samples_per_second
    return history


def train_caloman(
    showers,
    energies,
    config: CaloManConfig | None = None,
    epochs: int = 100,
    flow_epochs: int | None = None,
    batch_size: int = 256,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    progress: Callable | None = None,
    *,
    rows: Rows | None = None,
    fit_rows: int = 200_000,
) -> TrainResult:
    """Fit CaloMan to showers [N, n_voxels] (MeV) with incident energies [N] or [N, 1] (MeV).

    ``flow_epochs`` (default ``epochs``) for each flow phase; ``progress(iterable, name)``
    wraps each phase's epoch loop (e.g. a tqdm bar).

    Distributed (under torchrun): every rank calls this alike; ``rows`` (a
    :class:`hepgen.distributed.Rows` of "showers" and "energies", in place of the arrays)
    lets each rank read only its shard; ``batch_size`` is the global batch; ``progress``
    runs on rank 0. The preprocessing is fitted on the first ``fit_rows`` showers on every
    rank alike; the latent standardisation is reduced over the ranks.
    """
    config = config or CaloManConfig()
    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    flow_epochs = epochs if flow_epochs is None else flow_epochs
    _check_positive_int("flow_epochs", flow_epochs)
    ctx = current()
    if rows is None:
        showers, energies = _as_tensors(showers, energies, config)
        rows = ArrayRows(showers=showers.numpy(), energies=energies.numpy())
    elif showers is not None or energies is not None:
        raise ValueError("pass showers and energies, or rows, not both")
    n = rows.n
    if n < 10:  # the preprocessing's means and standard deviations need a sample
        raise ValueError(f"showers: {n} are too few to train on (need at least 10)")
    batches = StratifiedBatches(n, min(batch_size, n), seed)
    start, stop = batches.shard(ctx.rank, ctx.world_size)
    torch.manual_seed(seed)  # the same initial weights on every rank
    model = CaloMan(config, seed=seed)
    model.provenance = provenance(n_train=n, seed=seed)
    fit = rows.read(0, min(n, fit_rows))
    # The dequantisation noise of the fit's layer values, from the seeded generator.
    model.preprocessing.fit(
        *_as_tensors(fit["showers"], fit["energies"], config), generator=torch.Generator().manual_seed(seed)
    )
    del fit
    shard = rows.read(start, stop)
    showers, energies = _as_tensors(shard["showers"], shard["energies"], config, minimum=1)
    del shard
    model.to(device)
    showers, energies = showers.to(device), energies.to(device)
    p = model.preprocessing
    layers = p.layer_energies(showers)
    x = p.voxels_forward(showers, layers)
    c = p.energy_to_condition(energies)
    # Each shower's dequantisation noise is its row of one draw for all n showers: the same
    # on any number of ranks (hepgen.distributed.draws).
    with SplitDraws(mix_seed(seed, 0), n, start, stop - start):
        y = p.layers_forward(layers, energies)
    del showers
    history, speeds = {}, {}

    model.train()
    history["vae"] = _fit(
        ctx,
        "VAE",
        [model.vae],
        lambda xb: model.vae.loss(xb, config.kl_weight)[0],
        (x,),
        n,
        epochs,
        batch_size,
        lr,
        seed,
        1,
        progress,
        speeds,
    )
    model.vae.eval()
    with torch.no_grad():
        means = torch.cat([model.vae.encode(xb)[0] for xb in x.split(4096)])
        mean, std = mean_std(ctx, means)
        model.latent_mean.copy_(mean)
        model.latent_std.copy_(std.clamp_min(1e-6))
        u = (means - model.latent_mean) / model.latent_std
    history["latent_flow"] = _fit(
        ctx,
        "latent flow",
        [model.latent_flow],
        lambda ub, cb, yb: -model.latent_log_prob(ub, cb, yb).mean(),
        (u, c, y),
        n,
        flow_epochs,
        batch_size,
        lr,
        seed,
        2,
        progress,
        speeds,
    )
    history["layer_flow"] = _fit(
        ctx,
        "layer flow",
        [model.layer_flow],
        lambda yb, cb: -model.layer_log_prob(yb, cb).mean(),
        (y, c),
        n,
        flow_epochs,
        batch_size,
        lr,
        seed,
        3,
        progress,
        speeds,
    )
    model.eval()
    return TrainResult(model.cpu(), history, speeds)


def _as_tensors(showers, energies, config, minimum: int = 10):
    showers = torch.as_tensor(np.asarray(showers, dtype=np.float32))
    energies = torch.as_tensor(np.asarray(energies, dtype=np.float32)).reshape(-1, 1)
    if showers.dim() != 2 or showers.shape[1] != config.n_voxels:
        raise ValueError(f"showers must be [N, {config.n_voxels}], got shape {tuple(showers.shape)}")
    if energies.shape[0] != showers.shape[0]:
        raise ValueError(f"energies has {energies.shape[0]} rows but showers has {showers.shape[0]}")
    if showers.shape[0] < minimum:  # the preprocessing's means and standard deviations need a sample
        raise ValueError(f"showers: {showers.shape[0]} are too few to train on (need at least {minimum})")
    return showers, energies
