"""Training JetGPT by maximum likelihood: loss = -mean log p(x | n_jets) over a batch of
events (in the preprocessed space), plus KL / N_train for the Bayesian version. Adam with a
short linear warm-up and a cosine decay; batches mix jet counts (padding masked)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable

import torch

from hepgen.data.events import EventSample
from hepgen.models.events.jetgpt.config import JetGPTConfig
from hepgen.models.events.jetgpt.model import JetGPT
from hepgen.models.events.jetgpt.preprocessing import sequence_length
from hepgen.nn.bayesian import kl_divergence


@dataclass
class TrainResult:
    model: JetGPT
    # Per epoch: mean negative log-likelihood per event (preprocessed space), the KL term per
    # training event (Bayesian only, else 0) and, with validation data, the held-out NLL.
    history: dict[str, list[float]] = field(default_factory=dict)
    seconds: float = 0.0
    n_train: int = 0


def _check_positive_int(name, value):
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")


def _batches(x, n_jets, order, batch_size):
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        nb = n_jets[idx]
        L = int(sequence_length(nb).max())  # pad to the batch's longest event only
        yield x[idx, :L], nb


@torch.no_grad()
def mean_nll(model: JetGPT, x: torch.Tensor, n_jets: torch.Tensor, batch_size: int = 4096) -> float:
    """Mean -log p(x | n_jets) per event (eval mode: mean weights for a Bayesian model)."""
    was_training = model.training
    model.eval()
    try:
        order = torch.arange(len(x))
        total = sum(-model.log_prob(xb, nb).sum().item() for xb, nb in _batches(x, n_jets, order, batch_size))
    finally:
        model.train(was_training)
    return total / max(len(x), 1)


def train_jetgpt(sample: EventSample, config: JetGPTConfig | None = None, epochs: int = 20,
                 batch_size: int = 256, lr: float = 1e-3, seed: int = 0, device: str = "cpu",
                 validation: EventSample | None = None, max_seconds: float | None = None,
                 progress: Callable | None = None) -> TrainResult:
    """Fit a JetGPT to ``sample`` (events with 1-3 jets are used). ``progress(iterable)`` wraps
    the epoch loop (e.g. tqdm); ``max_seconds`` stops after the epoch that crosses it."""
    config = config or JetGPTConfig()
    _check_positive_int("epochs", epochs)
    _check_positive_int("batch_size", batch_size)
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    model = JetGPT(config)
    model.coding.fit(sample)
    x, n_jets = model.coding.encode(sample)
    if len(x) < 2:
        raise ValueError(f"sample: {len(x)} events with 1-3 jets are too few to train on")
    model.to(device)
    x, n_jets = x.to(device), n_jets.to(device)
    val = None
    if validation is not None:
        xv, nv = model.coding.encode(validation)
        val = (xv.to(device), nv.to(device))
    n = len(x)
    steps = epochs * math.ceil(n / batch_size)
    warmup = min(200, steps // 10 + 1)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / warmup) * 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)))
    history: dict[str, list[float]] = {"nll": [], "kl": []}
    if val is not None:
        history["val_nll"] = []
    t0 = time.perf_counter()
    model.train()
    bar = progress(range(epochs)) if progress else range(epochs)
    for _ in bar:
        order = torch.randperm(n, generator=g).to(device)
        total, kl_value = 0.0, 0.0
        for xb, nb in _batches(x, n_jets, order, batch_size):
            nll = -model.log_prob(xb, nb).mean()
            kl = kl_divergence(model) / n if config.bayesian else None
            loss = nll if kl is None else nll + kl
            if not torch.isfinite(loss):
                raise RuntimeError(f"JetGPT: the loss became {loss.item()} (try a smaller learning rate)")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            total += nll.item() * len(xb)
            kl_value = 0.0 if kl is None else kl.item()
        history["nll"].append(total / n)
        history["kl"].append(kl_value)
        if val is not None:
            history["val_nll"].append(mean_nll(model, *val))
        if hasattr(bar, "set_postfix"):
            bar.set_postfix(nll=f"{history['nll'][-1]:.4g}",
                            **({"val": f"{history['val_nll'][-1]:.4g}"} if val is not None else {}))
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            break
    model.eval()
    return TrainResult(model.cpu(), history, time.perf_counter() - t0, n)
