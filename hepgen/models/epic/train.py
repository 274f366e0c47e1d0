"""Training EPiC-FM / EPiC-JeDi as the authors' code does: AdamW (lr 1e-3, weight decay 5e-5),
a cosine learning-rate schedule after a linear warm-up, gradient clipping at 0.5 and an
exponential moving average of the weights (0.999) that is what sampling uses and what is saved.

Resumable: ``TrainState`` holds the online and EMA weights, optimizer, schedule, epoch and
loss history; ``on_epoch`` receives it after every epoch (the CLI writes a checkpoint there).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

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

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
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
            "history": list(self.history),
            "settings": dict(vars(self.settings)),
        }


def _as_tensors(particles, jets) -> tuple[torch.Tensor, torch.Tensor]:
    particles = torch.as_tensor(np.asarray(particles, dtype=np.float32))
    jets = torch.as_tensor(np.asarray(jets, dtype=np.float32))
    if particles.dim() != 3 or particles.shape[2] != 4:
        raise ValueError(f"particles must be (N, P, 4) in the JetNet layout, got shape {tuple(particles.shape)}")
    if jets.shape != (particles.shape[0], 4):
        raise ValueError(f"jets must be ({particles.shape[0]}, 4), got shape {tuple(jets.shape)}")
    if particles.shape[0] < 2:
        raise ValueError(f"need at least 2 jets to train on, got {particles.shape[0]}")
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
) -> TrainState:
    """Fit a generator to JetNet-layout ``particles`` (N, P, 4) and ``jets`` (N, 4).

    ``progress(iterable)`` wraps the epoch loop (e.g. tqdm); ``on_epoch(state)`` runs after
    each epoch; ``resume`` (a ``TrainState.state_dict()``) with ``model`` (the checkpoint's
    model, which holds the fitted preprocessing) continues an interrupted run.
    """
    config = config or EPiCConfig()
    settings = settings or TrainSettings()
    particles, jets = _as_tensors(particles, jets)
    if particles.shape[1] != config.particles:
        raise ValueError(f"the data have {particles.shape[1]} particle slots, the config {config.particles}")
    torch.manual_seed(settings.seed)
    resumed_model = model is not None
    if resume is not None and not resumed_model:
        raise ValueError("resume needs the checkpoint's model (model=...)")
    if model is None:
        model = EPiCGenerator(config)
        model.provenance = provenance(n_train=len(particles), seed=settings.seed)
        mask = particles[..., 3] > 0.5
        model.particle_scaler.fit(particles[..., :3], mask)
        model.cond_scaler.fit(jets[:, [0, 2]])
        model.jet_density.fit(jets, torch.Generator().manual_seed(settings.seed))
    model.to(device).train()
    n = particles.shape[0]
    steps_per_epoch = math.ceil(n / settings.batch_size)
    state = _make_state(model, settings, steps_per_epoch)
    if resume is not None:
        model.net.load_state_dict(resume["net"])
        state.optimizer.load_state_dict(resume["optimizer"])
        state.scheduler.load_state_dict(resume["scheduler"])
        state.epoch, state.history = int(resume["epoch"]), list(resume["history"])
        # state.ema was copied from the checkpoint's net, which holds the EMA weights.
    with torch.no_grad():
        y_all, mask_all, cond_all = model.prepare(particles.to(device), jets.to(device))
    # One generator per epoch from (seed, epoch): a resumed run draws what the whole run would have.
    epochs = range(state.epoch, settings.epochs)
    bar = progress(epochs) if progress else epochs
    ema_params = list(state.ema.parameters())
    params = list(model.net.parameters())
    for epoch in bar:
        g = torch.Generator().manual_seed(settings.seed * 100_003 + epoch)
        order = torch.randperm(n, generator=g)
        total, count = 0.0, 0
        for start in range(0, n, settings.batch_size):
            idx = order[start : start + settings.batch_size].to(device)
            cond = None if cond_all is None else cond_all[idx]
            loss = model.loss(y_all[idx], mask_all[idx], cond, generator=g)
            if not torch.isfinite(loss):
                raise RuntimeError(f"epoch {epoch + 1}: the loss became {loss.item()} (try a smaller --lr)")
            state.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, settings.grad_clip)
            state.optimizer.step()
            state.scheduler.step()
            # EMA with the usual warm-up (ours: the paper states a fixed 0.999), so that short
            # runs do not sample from weights that are still mostly the initial ones.
            step = state.scheduler.last_epoch
            decay = min(settings.ema_decay, (1 + step) / (10 + step))
            with torch.no_grad():
                torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1 - decay)
            total, count = total + loss.item() * len(idx), count + len(idx)
        state.history.append(total / count)
        state.epoch = epoch + 1
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{state.history[-1]:.4g}")
        if on_epoch is not None:
            on_epoch(state)
    model.eval()
    return state
