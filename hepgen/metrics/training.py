"""Training one truth-vs-generated classifier: balanced BCE, Adam, early stopping."""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
from torch import nn

from hepgen.metrics._checks import balanced_sample_weights, check_labels
from hepgen.metrics.mlp import MLPClassifier


@dataclass(frozen=True)
class ClassifierConfig:
    """Network and training settings of a classifier.

    The defaults are the paper's event classifier: 5 × 256, LeakyReLU, dropout 0.1,
    Adam at 1e-3, 50 epochs. Training stops early when the validation loss has not
    improved for ``patience`` epochs, and the best epoch's parameters are kept.
    ``threads`` sets torch's CPU threads during training (None: leave them): networks
    this small often train fastest on one thread, and far faster than on oversubscribed
    cores.
    """

    hidden_layers: int = 5
    hidden_units: int = 256
    dropout: float = 0.1
    learning_rate: float = 1e-3
    epochs: int = 50
    batch_size: int = 1024
    patience: int | None = 10
    device: str = "cpu"
    threads: int | None = None

    def __post_init__(self):
        if self.threads is not None and (not isinstance(self.threads, int) or self.threads < 1):
            raise ValueError(f"threads: expected None or a positive integer, got {self.threads!r}")
        for name in ("hidden_layers", "hidden_units", "epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not 0 <= self.dropout < 1:
            raise ValueError(f"dropout: expected a value in [0, 1), got {self.dropout}")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate: expected a positive number, got {self.learning_rate}")
        if self.patience is not None and self.patience < 1:
            raise ValueError(f"patience: expected None or a positive integer, got {self.patience}")

    def with_(self, **changes) -> ClassifierConfig:
        """A copy with ``changes`` applied (``None`` values are ignored)."""
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class TrainingHistory:
    """Per-epoch balanced BCE on the training and validation data, and the epoch kept."""

    train_loss: list[float]
    validation_loss: list[float]
    best_epoch: int


def train_classifier(
    x_train,
    y_train,
    x_val,
    y_val,
    config: ClassifierConfig,
    seed: int = 0,
    progress: bool = False,
    description: str = "classifier",
):
    """Train an :class:`MLPClassifier` to output D = P(truth | x); labels 1 truth, 0 generated.

    Both classes weigh the same in the loss, so D/(1 − D) estimates p_truth/p_generated
    whatever the sample sizes. Returns the model (in eval mode, on CPU) and its history.
    """
    y_train = check_labels(y_train, "y_train")
    y_val = check_labels(y_val, "y_val")
    threads = torch.get_num_threads()
    if config.threads is not None:
        torch.set_num_threads(config.threads)
    try:
        return _train(x_train, y_train, x_val, y_val, config, seed, progress, description)
    finally:
        torch.set_num_threads(threads)


def _train(x_train, y_train, x_val, y_val, config, seed, progress, description):
    from tqdm.auto import tqdm

    device = torch.device(config.device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model = MLPClassifier(x_train.shape[1], config.hidden_layers, config.hidden_units, config.dropout)
        xt = torch.as_tensor(x_train, dtype=torch.float32)
        model.set_standardisation(xt)
        model.to(device)
        xt = xt.to(device)
        yt = torch.as_tensor(y_train, dtype=torch.float32, device=device)
        wt = torch.as_tensor(balanced_sample_weights(y_train), dtype=torch.float32, device=device)
        xv = torch.as_tensor(x_val, dtype=torch.float32, device=device)
        yv = torch.as_tensor(y_val, dtype=torch.float32, device=device)
        wv = torch.as_tensor(balanced_sample_weights(y_val), dtype=torch.float32, device=device)

        optimizer = torch.optim.Adam(model.parameters(), lr=config.learning_rate)
        loss_fn = nn.BCEWithLogitsLoss(reduction="none")
        shuffle = torch.Generator().manual_seed(seed)
        n = xt.shape[0]
        best_loss, best_state, best_epoch = math.inf, None, 0
        history = TrainingHistory([], [], 0)
        epochs = tqdm(range(config.epochs), desc=description, disable=not progress, leave=False, unit="epoch")
        for epoch in epochs:
            model.train()
            order = torch.randperm(n, generator=shuffle).to(device)
            total = 0.0
            for start in range(0, n, config.batch_size):
                batch = order[start : start + config.batch_size]
                loss = (loss_fn(model(xt[batch]), yt[batch]) * wt[batch]).sum() / wt[batch].sum()
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.item() * batch.numel()
            val_loss = _weighted_loss(model, xv, yv, wv, loss_fn, config.batch_size)
            history.train_loss.append(total / n)
            history.validation_loss.append(val_loss)
            if val_loss < best_loss:
                best_loss, best_epoch = val_loss, epoch
                best_state = copy.deepcopy(model.state_dict())
            epochs.set_postfix(val_bce=f"{val_loss:.4f}", best=best_epoch + 1)
            if config.patience is not None and epoch - best_epoch >= config.patience:
                break
        epochs.close()
    model.load_state_dict(best_state)
    history.best_epoch = best_epoch
    return model.cpu().eval(), history


def predict_probabilities(model: MLPClassifier, x, batch_size: int = 8192) -> np.ndarray:
    """D = σ(logit) of ``model`` on ``x`` (N, F), as float64 numpy, in batches."""
    model.eval()
    out = []
    with torch.no_grad():
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        for start in range(0, xt.shape[0], batch_size):
            out.append(torch.sigmoid(model(xt[start : start + batch_size]).double()))
    if not out:
        return np.zeros(0)
    return torch.cat(out).numpy()


def _weighted_loss(model, x, y, w, loss_fn, batch_size) -> float:
    model.eval()
    total = 0.0
    with torch.no_grad():
        for start in range(0, x.shape[0], batch_size):
            sl = slice(start, start + batch_size)
            total += (loss_fn(model(x[sl]), y[sl]) * w[sl]).sum().item()
    return total / w.sum().item()
