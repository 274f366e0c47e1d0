"""Training EPiC-FM / EPiC-JeDi as the authors' code does: AdamW (lr 1e-3, weight decay 5e-5),
a cosine learning-rate schedule after a linear warm-up, gradient clipping at 0.5 and an
exponential moving average of the weights (0.999) that is what sampling uses and what is saved.

Resumable: ``TrainState`` holds the online and EMA weights, optimizer, schedule, epoch and
loss history; ``on_epoch`` receives it after every epoch (the CLI writes a checkpoint there).
One process or many (torchrun): the shared loop of :mod:`hepgen.distributed.loop`; a run's
state depends on its position (epoch, step), not on the number of processes, so a
checkpoint resumes on any number of them.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from hepgen.distributed.context import current
from hepgen.distributed.loop import EpochRunner
from hepgen.distributed.sampler import StratifiedBatches
from hepgen.distributed.shards import ArrayRows, Rows
from hepgen.models.checkpoint import provenance
from hepgen.models.epic.config import EPiCConfig
from hepgen.models.epic.model import EPiCGenerator


@dataclass
class TrainSettings:
    epochs: int = 100
    batch_size: int = 1024
    lr: float = 1e-3
    weight_decay: float = 5e-5
    warmup_fraction: float = 0.05  # of all optimizer steps
    grad_clip: float = 0.5
    ema_decay: float = 0.999
    seed: int = 0
    fit_rows: int = 200_000  # the preprocessing is fitted on the first fit_rows jets

    def __post_init__(self):
        for name in ("epochs", "batch_size", "fit_rows"):
            v = getattr(self, name)
            if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                raise ValueError(f"{name} must be a positive int, got {v!r}")
        if not self.lr > 0:
            raise ValueError(f"lr must be positive, got {self.lr!r}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"ema_decay must be in [0, 1), got {self.ema_decay!r}")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction!r}")


@dataclass
class TrainState:
    model: EPiCGenerator  # its net holds the online weights
    ema: torch.nn.Module  # EMA copy of model.net (what sampling uses)
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    settings: TrainSettings
    epoch: int = 0  # epochs finished
    history: list[float] = field(default_factory=list)  # mean training loss per epoch
    n_train: int = 0  # training examples (a resumed run must train on as many)
    samples_per_second: float = 0.0  # training throughput of this call, all ranks together

    def sampling_model(self) -> EPiCGenerator:
        """A copy of the model with the EMA weights (for sampling and saving)."""
        out = copy.deepcopy(self.model)
        out.net.load_state_dict(self.ema.state_dict())
        return out.eval()

    def state_dict(self) -> dict:
        return {
            "net": self.model.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "epoch": self.epoch,
            # The sampler's position: the global optimizer step (the same on any number of ranks).
            "step": int(self.scheduler.last_epoch),
            "n_train": self.n_train,
            "history": list(self.history),
            "settings": dict(vars(self.settings)),
        }


def _as_tensors(particles, jets, minimum: int = 2) -> tuple[torch.Tensor, torch.Tensor]:
    particles = torch.as_tensor(np.asarray(particles, dtype=np.float32))
    jets = torch.as_tensor(np.asarray(jets, dtype=np.float32))
    if particles.dim() != 3 or particles.shape[2] != 4:
        raise ValueError(f"particles must be (N, P, 4) in the JetNet layout, got shape {tuple(particles.shape)}")
    if jets.shape != (particles.shape[0], 4):
        raise ValueError(f"jets must be ({particles.shape[0]}, 4), got shape {tuple(jets.shape)}")
    if particles.shape[0] < minimum:
        raise ValueError(f"need at least {minimum} jets to train on, got {particles.shape[0]}")
    if not (torch.isfinite(particles).all() and torch.isfinite(jets).all()):
        raise ValueError("particles and jets must be finite")
    return particles, jets


def _make_state(model: EPiCGenerator, settings: TrainSettings, steps_per_epoch: int) -> TrainState:
    params = [p for p in model.net.parameters()]
    optimizer = torch.optim.AdamW(params, lr=settings.lr, weight_decay=settings.weight_decay)
    total = settings.epochs * steps_per_epoch
    warmup = max(1, int(settings.warmup_fraction * total))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * min(1.0, (step - warmup) / max(1, total - warmup))))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    ema = copy.deepcopy(model.net).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return TrainState(model, ema, optimizer, scheduler, settings)


def _check_resume(resume: dict, settings: TrainSettings, n: int) -> None:
    saved = resume.get("settings", {})
    if saved.get("batch_size", settings.batch_size) != settings.batch_size:
        raise ValueError(
            f"resume: the run used a global batch of {saved['batch_size']}, asked for {settings.batch_size}; "
            "resume with the same --batch-size (it is the global batch, whatever the number of processes)"
        )
    if resume.get("n_train", n) != n:
        raise ValueError(f"resume: the run trained on {resume['n_train']} jets, the data give {n}")


def train_epic(
    particles,
    jets,
    config: EPiCConfig | None = None,
    settings: TrainSettings | None = None,
    device: str = "cpu",
    progress: Callable | None = None,
    on_epoch: Callable[[TrainState], None] | None = None,
    resume: dict | None = None,
    model: EPiCGenerator | None = None,
    *,
    rows: Rows | None = None,
    until: int | None = None,
) -> TrainState:
    """Fit a generator to JetNet-layout ``particles`` (N, P, 4) and ``jets`` (N, 4).

    ``progress(iterable)`` wraps the epoch loop (e.g. tqdm); ``on_epoch(state)`` runs after
    each epoch; ``resume`` (a ``TrainState.state_dict()``) with ``model`` (the checkpoint's
    model, which holds the fitted preprocessing) continues an interrupted run.

    Distributed (under torchrun, after :func:`hepgen.distributed.init_from_env`): every rank
    calls this with the same arguments; ``rows`` (a :class:`hepgen.distributed.Rows` with
    "particles" and "jets", in place of the arrays) lets each rank read only its shard.
    ``settings.batch_size`` is the global batch (a multiple of the number of processes);
    the result does not depend on the number of processes (to float rounding), see
    :mod:`hepgen.distributed.sampler`. ``progress`` and ``on_epoch`` run on rank 0 only.
    The preprocessing is fitted on the first ``settings.fit_rows`` jets, on every rank alike.
    ``until``: stop after that epoch (the schedule stays that of ``settings.epochs``, so a
    later resume continues the same run: jobs under a time limit).
    """
    config = config or EPiCConfig()
    settings = settings or TrainSettings()
    ctx = current()
    if rows is None:
        particles, jets = _as_tensors(particles, jets)
        rows = ArrayRows(particles=particles.numpy(), jets=jets.numpy())
    elif particles is not None or jets is not None:
        raise ValueError("pass particles and jets, or rows, not both")
    n = rows.n
    if n < 2:
        raise ValueError(f"need at least 2 jets to train on, got {n}")
    batches = StratifiedBatches(n, min(settings.batch_size, n), settings.seed)
    batches.check_world(ctx.world_size)
    torch.manual_seed(settings.seed)  # the same initial weights on every rank
    resumed_model = model is not None
    if resume is not None and not resumed_model:
        raise ValueError("resume needs the checkpoint's model (model=...)")
    if resume is not None:
        _check_resume(resume, settings, n)
    if model is None:
        fit = rows.read(0, min(n, settings.fit_rows))
        fit_particles, fit_jets = _as_tensors(fit["particles"], fit["jets"])
        if fit_particles.shape[1] != config.particles:
            raise ValueError(f"the data have {fit_particles.shape[1]} particle slots, the config {config.particles}")
        model = EPiCGenerator(config)
        model.provenance = provenance(n_train=n, seed=settings.seed)
        mask = fit_particles[..., 3] > 0.5
        model.particle_scaler.fit(fit_particles[..., :3], mask)
        model.cond_scaler.fit(fit_jets[:, [0, 2]])
        model.jet_density.fit(fit_jets, torch.Generator().manual_seed(settings.seed))
        del fit, fit_particles, fit_jets, mask
    model.to(device).train()
    start, stop = batches.shard(ctx.rank, ctx.world_size)
    shard = rows.read(start, stop)
    local_particles, local_jets = _as_tensors(shard["particles"], shard["jets"], minimum=1)
    if local_particles.shape[1] != config.particles:
        raise ValueError(f"the data have {local_particles.shape[1]} particle slots, the config {config.particles}")
    del shard
    state = _make_state(model, settings, batches.steps_per_epoch)
    state.n_train = n
    if resume is not None:
        model.net.load_state_dict(resume["net"])
        state.optimizer.load_state_dict(resume["optimizer"])
        state.scheduler.load_state_dict(resume["scheduler"])
        state.epoch, state.history = int(resume["epoch"]), list(resume["history"])
        # state.ema was copied from the checkpoint's net, which holds the EMA weights.
    with torch.no_grad():
        y_all, mask_all, cond_all = model.prepare(local_particles.to(device), local_jets.to(device))
    del local_particles, local_jets
    data = (y_all, mask_all) if cond_all is None else (y_all, mask_all, cond_all)
    ema_params = list(state.ema.parameters())
    params = list(model.net.parameters())

    def loss_fn(y, mask, cond=None):
        # The weight: the loss is a mean over real particles (hepgen.distributed.ddp).
        return model.loss(y, mask, cond), mask.sum(), 0.0

    def ema_update(step: int) -> None:
        # EMA with the usual warm-up (ours: the paper states a fixed 0.999), so that short
        # runs do not sample from weights that are still mostly the initial ones.
        done = step + 1
        decay = min(settings.ema_decay, (1 + done) / (10 + done))
        with torch.no_grad():
            torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1 - decay)

    runner = EpochRunner(
        ctx,
        batches,
        data,
        loss_fn,
        [model.net],
        state.optimizer,
        state.scheduler,
        seed=settings.seed,
        grad_clip=settings.grad_clip,
        after_step=ema_update,
    )
    stop = settings.epochs if until is None else min(until, settings.epochs)
    epochs = range(state.epoch, stop)
    bar = progress(epochs) if progress and ctx.is_main else epochs
    for epoch in bar:
        state.history.append(runner.run_epoch(epoch))
        state.epoch = epoch + 1
        state.samples_per_second = runner.samples_per_second
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{state.history[-1]:.4g}")
        if on_epoch is not None and ctx.is_main:
            on_epoch(state)
    model.eval()
    return state
