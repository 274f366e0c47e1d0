"""Training CaloMan in three phases: the VAE, then the latent flow on the frozen encoder's
means, then the energy-per-layer flow. Each phase is Adam with a cosine-decayed learning rate."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from hepgen.models.caloman.config import CaloManConfig
from hepgen.models.caloman.model import CaloMan
from hepgen.models.checkpoint import provenance


@dataclass
class TrainResult:
    model: CaloMan
    history: dict[str, list[float]] = field(default_factory=dict)  # phase -> mean loss per epoch


def _check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _fit(name, params, loss_fn, data: tuple[torch.Tensor, ...], epochs, batch_size, lr, g, progress):
    """Minibatch Adam over ``data`` (tensors with one row per sample); mean loss per epoch."""
    opt = torch.optim.Adam(params, lr=lr)
    n = data[0].shape[0]
    steps = epochs * math.ceil(n / batch_size)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    history = []
    bar = progress(range(epochs), name) if progress else range(epochs)
    for _ in bar:
        order = torch.randperm(n, generator=g).to(data[0].device)
        total, count = 0.0, 0
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            loss = loss_fn(*(t[idx] for t in data))
            if not torch.isfinite(loss):
                raise RuntimeError(f"{name}: the loss became {loss.item()} (try a smaller learning rate)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 10.0)  # flows can spike early; keeps Adam sane
            opt.step()
            sched.step()
            total, count = total + loss.item() * len(idx), count + len(idx)
        history.append(total / count)
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(loss=f"{history[-1]:.4g}")
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
) -> TrainResult:
    """Fit CaloMan to showers [N, n_voxels] (MeV) with incident energies [N] or [N, 1] (MeV).

    ``flow_epochs`` (default ``epochs``) for each flow phase; ``progress(iterable, name)``
    wraps each phase's epoch loop (e.g. a tqdm bar).
    """
    config = config or CaloManConfig()
    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    flow_epochs = epochs if flow_epochs is None else flow_epochs
    _check_positive_int("flow_epochs", flow_epochs)
    showers = torch.as_tensor(np.asarray(showers, dtype=np.float32))
    energies = torch.as_tensor(np.asarray(energies, dtype=np.float32)).reshape(-1, 1)
    if showers.dim() != 2 or showers.shape[1] != config.n_voxels:
        raise ValueError(f"showers must be [N, {config.n_voxels}], got shape {tuple(showers.shape)}")
    if energies.shape[0] != showers.shape[0]:
        raise ValueError(f"energies has {energies.shape[0]} rows but showers has {showers.shape[0]}")
    if showers.shape[0] < 10:  # the preprocessing's means and standard deviations need a sample
        raise ValueError(f"showers: {showers.shape[0]} are too few to train on (need at least 10)")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = CaloMan(config, seed=seed)
    model.provenance = provenance(n_train=int(showers.shape[0]), seed=seed)
    # The dequantisation noise of the layer values is drawn once, from the seeded generator.
    model.preprocessing.fit(showers, energies, generator=g)
    model.to(device)
    showers, energies = showers.to(device), energies.to(device)
    p = model.preprocessing
    layers = p.layer_energies(showers)
    x = p.voxels_forward(showers, layers)
    c = p.energy_to_condition(energies)
    y = p.layers_forward(layers, energies, generator=g)
    history = {}

    model.train()
    history["vae"] = _fit(
        "VAE",
        list(model.vae.parameters()),
        lambda xb: model.vae.loss(xb, config.kl_weight)[0],
        (x,),
        epochs,
        batch_size,
        lr,
        g,
        progress,
    )
    model.vae.eval()
    with torch.no_grad():
        means = torch.cat([model.vae.encode(xb)[0] for xb in x.split(4096)])
        model.latent_mean.copy_(means.mean(0))
        model.latent_std.copy_(means.std(0).clamp_min(1e-6))
        u = (means - model.latent_mean) / model.latent_std
    history["latent_flow"] = _fit(
        "latent flow",
        list(model.latent_flow.parameters()),
        lambda ub, cb, yb: -model.latent_log_prob(ub, cb, yb).mean(),
        (u, c, y),
        flow_epochs,
        batch_size,
        lr,
        g,
        progress,
    )
    history["layer_flow"] = _fit(
        "layer flow",
        list(model.layer_flow.parameters()),
        lambda yb, cb: -model.layer_log_prob(yb, cb).mean(),
        (y, c),
        flow_epochs,
        batch_size,
        lr,
        g,
        progress,
    )
    model.eval()
    return TrainResult(model.cpu(), history)
