"""Training of any event generator: Adam, a cosine learning-rate decay, and for Bayesian
networks the KL term divided by the training-set size (the paper's ELBO per event)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from hepgen.data.events import EventSample
from hepgen.models.checkpoint import provenance
from hepgen.models.events.base import EventGenerator, build_model
from hepgen.models.events.config import EventModelConfig
from hepgen.models.events.vectors import EventPreprocessing
from hepgen.nn.bayesian import is_bayesian, kl_divergence


@dataclass
class TrainResult:
    model: EventGenerator  # model.preprocessing is the fitted preprocessing
    preprocessing: EventPreprocessing  # the same object, for the older callers
    history: dict = field(default_factory=dict)  # per epoch: loss, kl, val_loss
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # this process's CPU time: the fairer figure on a shared machine
    n_train: int = 0


def _validation_loss(model, x, n, batch_size):
    """Mean loss on held-out events with the mean weights (eval mode), noise fixed by a seed."""
    model.eval()
    state = torch.get_rng_state()
    torch.manual_seed(12345)
    total = 0.0
    with torch.no_grad():
        for i in range(0, len(x), batch_size):
            total += float(model.loss(x[i : i + batch_size], n[i : i + batch_size])) * len(x[i : i + batch_size])
    torch.set_rng_state(state)
    model.train()
    return total / len(x)


def train_events(
    sample: EventSample,
    config: EventModelConfig,
    epochs: int = 50,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    validation_fraction: float = 0.1,
    progress=None,
) -> TrainResult:
    """Fit ``config``'s generator to ``sample`` (events with 1-3 jets). ``progress(iterable,
    name)`` wraps the epoch loop (e.g. tqdm) and may expose ``set_postfix``."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    preprocessing = EventPreprocessing.fit(sample)
    x_all, n_all = preprocessing.encode(sample)
    order = torch.as_tensor(rng.permutation(len(x_all)))
    n_val = int(round(validation_fraction * len(x_all)))
    val, train = order[:n_val], order[n_val:]
    x, n = x_all[train].to(device), n_all[train].to(device)
    x_val, n_val_t = x_all[val].to(device), n_all[val].to(device)
    if len(x) < 2:
        raise ValueError(f"data: {len(x)} training events after the validation split; need more")

    model = build_model(config).to(device).train()
    model.preprocessing = preprocessing  # preprocessing is part of the model (saved in its checkpoint)
    model.provenance = provenance(n_events=len(sample), seed=seed)
    bayesian = is_bayesian(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * steps_per_epoch)
    history = {"loss": [], "kl": [], "val_loss": []}
    epochs_iter = range(epochs) if progress is None else progress(range(epochs), f"train {config.model}")
    start, start_cpu = time.perf_counter(), time.process_time()
    for _ in epochs_iter:
        perm = torch.randperm(len(x), device=device)
        total, total_kl = 0.0, 0.0
        for i in range(0, len(x), batch_size):
            idx = perm[i : i + batch_size]
            loss = model.loss(x[idx], n[idx])
            objective = loss
            if bayesian:
                kl = kl_divergence(model) / len(x)
                objective = loss + kl
                total_kl += float(kl.detach()) * len(idx)
            optimizer.zero_grad(set_to_none=True)
            objective.backward()
            optimizer.step()
            scheduler.step()
            value = float(loss.detach())
            if not math.isfinite(value):
                raise RuntimeError(f"training diverged (loss {value}); try a smaller --learning-rate")
            total += value * len(idx)
        history["loss"].append(total / len(x))
        history["kl"].append(total_kl / len(x))
        if n_val:
            history["val_loss"].append(_validation_loss(model, x_val, n_val_t, 4 * batch_size))
        if hasattr(epochs_iter, "set_postfix"):
            post = {"loss": f"{history['loss'][-1]:.4g}"}
            if n_val:
                post["val"] = f"{history['val_loss'][-1]:.4g}"
            if bayesian:
                post["kl/N"] = f"{history['kl'][-1]:.3g}"
            epochs_iter.set_postfix(post)
    seconds, cpu_seconds = time.perf_counter() - start, time.process_time() - start_cpu
    return TrainResult(model.eval(), preprocessing, history, seconds, cpu_seconds, len(x))
