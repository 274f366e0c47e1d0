"""Training CaloMan in three phases: the VAE, then the latent flow on the frozen encoder's
means, then the energy-per-layer flow. Each phase is Adam with a cosine-decayed learning rate.

Resumable: after every epoch of every phase ``on_epoch`` receives the result, whose
``train_state`` (phase, epoch in the phase, that phase's optimizer and schedule, histories)
with the model's weights (incl. the latent standardisation) continues the run; earlier
phases' optimizers are not kept (a finished phase is never revisited).
"""

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

PHASES = ("vae", "latent_flow", "layer_flow")  # the training order; the keys of the histories
_NAMES = {"vae": "VAE", "latent_flow": "latent flow", "layer_flow": "layer flow"}


@dataclass
class TrainResult:
    model: CaloMan
    history: dict[str, list[float]] = field(default_factory=dict)  # phase -> mean loss per epoch
    samples_per_second: dict[str, float] = field(default_factory=dict)  # phase -> throughput, all ranks
    phase: str = "vae"  # the phase of the last finished epoch (one of PHASES)
    epoch: int = 0  # epochs finished in that phase
    train_state: dict = field(default_factory=dict)  # what resume= takes (with model = the checkpoint's)

    @property
    def epochs_done(self) -> int:
        """Epochs finished over all phases (what ``until`` counts)."""
        return sum(len(self.history.get(name, ())) for name in PHASES)


def _check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _check_resume(resume: dict, n: int, batch: int, epochs: int, flow_epochs: int) -> None:
    if resume.get("phase") not in PHASES:
        raise ValueError(f"resume: phase must be one of {PHASES}, got {resume.get('phase')!r}")
    asked = {"n_train": n, "batch_size": batch, "epochs": epochs, "flow_epochs": flow_epochs}
    saved = {k: resume.get(k) for k in asked}
    if saved != asked:
        raise ValueError(
            f"resume: the run had {saved}, asked for {asked} "
            "(resume with the same data, --batch-size, --epochs and --flow-epochs)"
        )


def _fit(ctx, phase, modules, loss_fn, data, n, epochs, batch_size, lr, seed, stream, progress, result, hooks):
    """Minibatch Adam over ``data`` (this rank's shard of tensors with one row per sample,
    of ``n`` in all) for the epochs of ``phase`` not yet done: appends the mean loss per
    epoch to ``result.history[phase]`` (the shared loop: hepgen.distributed.loop).
    ``hooks``: (resume state or None, until, on_epoch, the run's settings for the state);
    the phase continues from the resume state when that was saved in this phase."""
    resume, until, on_epoch, run = hooks
    name = _NAMES[phase]
    params = [p for m in modules for p in m.parameters()]
    opt = torch.optim.Adam(params, lr=lr)
    batches = StratifiedBatches(n, min(batch_size, n), mix_seed(seed, stream))
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, epochs * batches.steps_per_epoch)
    history = result.history.setdefault(phase, [])
    if resume is not None and resume["phase"] == phase:
        opt.load_state_dict(resume["optimizer"])
        sched.load_state_dict(resume["scheduler"])
    first = len(history)  # the epochs of this phase done before a resume
    stop = epochs if until is None else max(first, min(epochs, until - result.epochs_done + first))

    def per_sample(*batch):  # each phase's loss is a mean over samples
        return loss_fn(*batch), torch.tensor(float(len(batch[0]))), 0.0

    runner = EpochRunner(
        ctx, batches, data, per_sample, modules, opt, sched, seed=seed, stream=stream, grad_clip=10.0, name=name
    )  # grad_clip: flows can spike early; keeps Adam sane
    epochs_iter = range(first, stop)
    bar = progress(epochs_iter, name) if progress and ctx.is_main else epochs_iter
    for epoch in bar:
        history.append(runner.run_epoch(epoch))
        result.phase, result.epoch = phase, epoch + 1
        result.samples_per_second[phase] = runner.samples_per_second
        result.train_state = _state(result, opt, sched, run)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{history[-1]:.4g}")
        if on_epoch is not None and ctx.is_main:
            on_epoch(result)
    return stop == epochs  # the phase is complete


def _state(result: TrainResult, opt, sched, run: dict) -> dict:
    return {
        "phase": result.phase,
        "epoch": result.epoch,
        # The sampler's position in the phase: the global optimizer step (the same on any number of ranks).
        "step": int(sched.last_epoch),
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "history": {k: list(v) for k, v in result.history.items()},
        **run,  # n_train, batch_size, epochs, flow_epochs: a resume must ask for the same
    }


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
    on_epoch: Callable[[TrainResult], None] | None = None,
    resume: dict | None = None,
    model: CaloMan | None = None,
    until: int | None = None,
) -> TrainResult:
    """Fit CaloMan to showers [N, n_voxels] (MeV) with incident energies [N] or [N, 1] (MeV).

    ``flow_epochs`` (default ``epochs``) for each flow phase; ``progress(iterable, name)``
    wraps each phase's epoch loop (e.g. a tqdm bar).

    Resumable: ``on_epoch(result)`` runs after every epoch of every phase (on rank 0);
    ``result.train_state`` (phase, epoch in the phase, the phase's optimizer and schedule,
    histories) is what ``resume`` takes, with ``model`` = the model saved with it (its
    weights, preprocessing and latent standardisation). ``until``: stop after that many
    epochs over all phases (the VAE's ``epochs``, then ``flow_epochs`` of each flow), the
    schedules staying those of the whole run, so a later resume continues the same run.

    Distributed (under torchrun): every rank calls this alike; ``rows`` (a
    :class:`hepgen.distributed.Rows` of "showers" and "energies", in place of the arrays)
    lets each rank read only its shard; ``batch_size`` is the global batch; ``progress``
    runs on rank 0. The preprocessing is fitted on the first ``fit_rows`` showers on every
    rank alike; the latent standardisation is reduced over the ranks. A run's state
    depends on its position (phase, epoch, step), not on the number of ranks, so it
    resumes on any number of them.
    """
    config = config or CaloManConfig()
    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    flow_epochs = epochs if flow_epochs is None else flow_epochs
    _check_positive_int("flow_epochs", flow_epochs)
    if until is not None:
        _check_positive_int("until", until)
    if resume is not None and model is None:
        raise ValueError("resume needs the checkpoint's model (model=...)")
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
    if resume is not None:
        _check_resume(resume, n, batches.batch, epochs, flow_epochs)
        config = model.config
    else:
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
    result = TrainResult(model)
    if resume is not None:
        result.history = {k: list(v) for k, v in resume["history"].items()}
        result.phase, result.epoch = resume["phase"], int(resume["epoch"])
    run = {"n_train": n, "batch_size": batches.batch, "epochs": epochs, "flow_epochs": flow_epochs}
    hooks = (resume, until, on_epoch, run)
    done = PHASES.index(resume["phase"]) if resume is not None else -1  # phases before this one are complete

    def fit(phase, modules, loss_fn, data, phase_epochs, stream):
        if PHASES.index(phase) < done:
            return True
        return _fit(
            ctx, phase, modules, loss_fn, data, n, phase_epochs, batch_size, lr, seed, stream, progress, result, hooks
        )

    model.train()
    vae_loss = lambda xb: model.vae.loss(xb, config.kl_weight)[0]  # noqa: E731
    if fit("vae", [model.vae], vae_loss, (x,), epochs, 1):
        model.vae.eval()
        with torch.no_grad():
            means = torch.cat([model.vae.encode(xb)[0] for xb in x.split(4096)])
            if done < 1:  # else the checkpoint holds the standardisation the run fitted
                mean, std = mean_std(ctx, means)
                model.latent_mean.copy_(mean)
                model.latent_std.copy_(std.clamp_min(1e-6))
            u = (means - model.latent_mean) / model.latent_std
        latent_loss = lambda ub, cb, yb: -model.latent_log_prob(ub, cb, yb).mean()  # noqa: E731
        if fit("latent_flow", [model.latent_flow], latent_loss, (u, c, y), flow_epochs, 2):
            layer_loss = lambda yb, cb: -model.layer_log_prob(yb, cb).mean()  # noqa: E731
            fit("layer_flow", [model.layer_flow], layer_loss, (y, c), flow_epochs, 3)
    model.eval()
    result.model = model.cpu()
    return result


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
