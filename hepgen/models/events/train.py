"""Training of any event generator: Adam, a cosine learning-rate decay, and for Bayesian
networks the KL term divided by the training-set size (the paper's ELBO per event).

One process or many (torchrun): the shared loop of :mod:`hepgen.distributed.loop`. The
examples are the events of a modelled multiplicity (1-3 jets) in file order; the last
``validation_fraction`` of them are held out (ours: before, a random subset was; a
contiguous tail lets each rank read only its rows, and hepgen's event files are in
generation order, i.i.d.). Resumable from the state ``on_epoch`` receives after each epoch.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from hepgen.data.events import EventSample
from hepgen.distributed.context import current
from hepgen.distributed.loop import EpochRunner, block_shard, validation_loss
from hepgen.distributed.sampler import StratifiedBatches
from hepgen.distributed.shards import ArrayRows, Rows
from hepgen.models.checkpoint import provenance
from hepgen.models.events.base import EventGenerator, build_model
from hepgen.models.events.config import EventModelConfig
from hepgen.models.events.vectors import MAX_COMPONENTS, EventPreprocessing, component_mask
from hepgen.nn.bayesian import is_bayesian, kl_divergence

# What each model's loss is a mean over (hepgen.distributed.ddp needs the count): the CFM
# and DDPM losses average over real components (5 + 4 n per event), the others over events.
_COMPONENT_MEAN = ("cfm", "ddpm")
# Models a batch may use only part of: the INN (one flow per multiplicity), JetGPT (the
# positions past a batch's longest event).
_SKIPS_PARAMETERS = ("inn", "jetgpt")


@dataclass
class TrainResult:
    model: EventGenerator  # model.preprocessing is the fitted preprocessing
    preprocessing: EventPreprocessing  # the same object, for the older callers
    history: dict = field(default_factory=dict)  # per epoch: loss, kl, val_loss
    seconds: float = 0.0  # wall clock
    cpu_seconds: float = 0.0  # this process's CPU time: the fairer figure on a shared machine
    n_train: int = 0
    epoch: int = 0  # epochs finished
    train_state: dict = field(default_factory=dict)  # what resume= takes (optimizer, schedule, position)
    samples_per_second: float = 0.0  # training throughput (optimizer steps only), all ranks together
    stopped_early: bool = False  # by ``patience``


def _sample(arrays: dict, attrs: dict) -> EventSample:
    return EventSample(arrays["muons"], arrays["jets"], arrays["n_jets"], attrs)


def _encode_in_order(preprocessing: EventPreprocessing, sample: EventSample, expected: int):
    """(x, n_jets) of the modelled events of ``sample`` in file order (encode groups them by
    multiplicity, each group in file order: a stable sort by n_jets undoes it)."""
    x, n = preprocessing.encode(sample)
    if len(x) != expected:
        raise ValueError(f"data: {len(x)} modelled events in this shard, expected {expected}")
    in_file = sample.n_jets[np.isin(sample.n_jets, n.unique().numpy())]
    order = torch.as_tensor(np.argsort(in_file, kind="stable"))
    x_out, n_out = torch.empty_like(x), torch.empty_like(n)
    x_out[order], n_out[order] = x, n
    return x_out, n_out


def _read_examples(rows: Rows, attrs, examples: np.ndarray, start: int, stop: int, preprocessing, device):
    """Examples start..stop (``examples``: their file rows), read as one file row range."""
    if stop <= start:
        return torch.zeros(0, MAX_COMPONENTS, device=device), torch.zeros(0, dtype=torch.long, device=device)
    arrays = rows.read(int(examples[start]), int(examples[stop - 1]) + 1)
    x, n = _encode_in_order(preprocessing, _sample(arrays, attrs), stop - start)
    return x.to(device), n.to(device)


def train_events(
    sample: EventSample | None,
    config: EventModelConfig,
    epochs: int = 50,
    batch_size: int = 1024,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "cpu",
    validation_fraction: float = 0.1,
    progress=None,
    *,
    rows: Rows | None = None,
    attrs: dict | None = None,
    fit_rows: int = 200_000,
    on_epoch: Callable[[TrainResult], None] | None = None,
    resume: dict | None = None,
    model: EventGenerator | None = None,
    until: int | None = None,
    patience: int | None = None,
) -> TrainResult:
    """Fit ``config``'s generator to ``sample`` (events with 1-3 jets). ``progress(iterable,
    name)`` wraps the epoch loop (e.g. tqdm) and may expose ``set_postfix``.

    Distributed (under torchrun): every rank calls this alike; ``rows`` (a
    :class:`hepgen.distributed.Rows` of "muons", "jets", "n_jets", with the file's ``attrs``)
    in place of ``sample`` lets each rank read only its shard. ``batch_size`` is the global
    batch. ``on_epoch(result)`` runs on rank 0 after each epoch (``result.train_state`` is
    what ``resume`` takes, with ``model`` = the checkpoint's model); ``until`` stops after
    that epoch with the schedule of ``epochs``. The preprocessing is fitted on the first
    ``fit_rows`` events, on every rank alike. ``patience``: stop when the validation loss
    has not improved for that many epochs, and end with the best epoch's weights (the
    model returned and, from the CLI, the checkpoint)."""
    for name, value in (("epochs", epochs), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if not 0 <= validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in [0, 1), got {validation_fraction!r}")
    if patience is not None and (not isinstance(patience, int) or isinstance(patience, bool) or patience < 1):
        raise ValueError(f"patience must be a positive int or None, got {patience!r}")
    if patience is not None and validation_fraction == 0:
        raise ValueError("patience needs a validation loss: validation_fraction > 0")
    if resume is not None and model is None:
        raise ValueError("resume needs the checkpoint's model (model=...)")
    ctx = current()
    if rows is None:
        if sample is None:
            raise ValueError("pass sample or rows")
        rows, attrs = ArrayRows(muons=sample.muons, jets=sample.jets, n_jets=sample.n_jets), sample.attrs
    elif sample is not None:
        raise ValueError("pass sample or rows, not both")
    attrs = dict(attrs or {})
    if model is None:
        preprocessing = EventPreprocessing.fit(_sample(rows.read(0, min(rows.n, fit_rows)), attrs))
    else:
        preprocessing = model.preprocessing
    modelled = [n for n in (1, 2, 3) if preprocessing.fractions[n - 1] > 0]
    examples = np.flatnonzero(np.isin(rows.column("n_jets"), modelled))
    n_val = int(round(validation_fraction * len(examples)))
    n_train = len(examples) - n_val
    if n_train < 2:
        raise ValueError(f"data: {n_train} training events after the validation split; need more")
    batches = StratifiedBatches(n_train, min(batch_size, n_train), seed)
    batches.check_world(ctx.world_size)
    start, stop = batches.shard(ctx.rank, ctx.world_size)
    x, n = _read_examples(rows, attrs, examples, start, stop, preprocessing, device)
    val_block = 4 * batches.batch
    v_start, v_stop = block_shard(n_val, val_block, ctx.rank, ctx.world_size)
    x_val, n_val_t = _read_examples(rows, attrs, examples, n_train + v_start, n_train + v_stop, preprocessing, device)

    torch.manual_seed(seed)  # the same initial weights on every rank
    if model is None:
        model = build_model(config)
        model.preprocessing = preprocessing  # preprocessing is part of the model (saved in its checkpoint)
        model.provenance = provenance(n_events=rows.n, seed=seed)
    config = model.config
    model.to(device).train()
    bayesian = is_bayesian(model)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs * batches.steps_per_epoch)
    history = {"loss": [], "kl": [], "val_loss": []}
    first = 0
    if resume is not None:
        if resume.get("batch_size") != batches.batch or resume.get("n_train") != n_train:
            raise ValueError(
                f"resume: the run had a global batch of {resume.get('batch_size')} and {resume.get('n_train')} "
                f"training events, asked for {batches.batch} and {n_train} (same --batch-size and data needed)"
            )
        optimizer.load_state_dict(resume["optimizer"])
        scheduler.load_state_dict(resume["scheduler"])
        first, history = int(resume["epoch"]), {k: list(v) for k, v in resume["history"].items()}
        if resume.get("stopped"):
            raise ValueError(f"resume: the run stopped early at epoch {first} (no better validation loss)")
        if resume.get("last_weights") is not None:  # the checkpoint holds the best epoch's weights
            model.load_state_dict(resume["last_weights"])
    best = dict(resume.get("best") or {}) if resume is not None else {}
    best.setdefault("val_loss", math.inf)
    best.setdefault("epoch", 0)
    stopped = False

    def _weight(xb, nb):
        return component_mask(nb).sum() if config.model in _COMPONENT_MEAN else torch.tensor(float(len(xb)))

    def loss_fn(xb, nb):
        loss = model.loss(xb, nb)
        weight = _weight(xb, nb)
        penalty = kl_divergence(model) / n_train if bayesian else 0.0
        return loss, weight, penalty

    def held_out_loss(xb, nb):  # the loss alone, with the mean weights (eval mode)
        return model.loss(xb, nb), _weight(xb, nb), 0.0

    runner = EpochRunner(
        ctx,
        batches,
        (x, n),
        loss_fn,
        [model],
        optimizer,
        scheduler,
        seed=seed,
        name=f"train {config.model}",
        unused_parameters=config.model in _SKIPS_PARAMETERS,
    )
    result = TrainResult(model, preprocessing, history, n_train=n_train, epoch=first)
    stop_epoch = epochs if until is None else min(until, epochs)
    epochs_iter = range(first, stop_epoch)
    if progress is not None and ctx.is_main:
        epochs_iter = progress(epochs_iter, f"train {config.model}")
    start_time, start_cpu = time.perf_counter(), time.process_time()
    for epoch in epochs_iter:
        history["loss"].append(runner.run_epoch(epoch))
        history["kl"].append(float(kl_divergence(model).detach()) / n_train if bayesian else 0.0)
        if n_val:
            model.eval()
            history["val_loss"].append(validation_loss(ctx, held_out_loss, (x_val, n_val_t), n_val, val_block, seed))
            model.train()
        if not math.isfinite(history["loss"][-1]):
            raise RuntimeError(f"training diverged (loss {history['loss'][-1]}); try a smaller --learning-rate")
        result.epoch = epoch + 1
        result.samples_per_second = runner.samples_per_second
        result.seconds, result.cpu_seconds = time.perf_counter() - start_time, time.process_time() - start_cpu
        if patience is not None:
            if history["val_loss"][-1] < best["val_loss"]:
                weights = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
                best = {"val_loss": history["val_loss"][-1], "epoch": epoch + 1, "weights": weights}
            stopped = epoch + 1 - best["epoch"] >= patience
        result.train_state = {
            "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(),
            "epoch": result.epoch,
            "step": int(scheduler.last_epoch),  # the sampler's position, the same on any number of ranks
            "history": {k: list(v) for k, v in history.items()},
            "batch_size": batches.batch,
            "n_train": n_train,
            **({"best": best, "stopped": stopped} if patience is not None else {}),
        }
        if hasattr(epochs_iter, "set_postfix"):
            post = {"loss": f"{history['loss'][-1]:.4g}"}
            if n_val:
                post["val"] = f"{history['val_loss'][-1]:.4g}"
            if bayesian:
                post["kl/N"] = f"{history['kl'][-1]:.3g}"
            epochs_iter.set_postfix(post)
        if on_epoch is not None and ctx.is_main:
            on_epoch(result)
        if stopped:
            break
    if patience is not None and best.get("weights") is not None and best["epoch"] != result.epoch:
        # End with the best epoch's weights; a resume continues from the last epoch's.
        last = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
        model.load_state_dict(best["weights"])
        result.train_state = {**result.train_state, "last_weights": last}
    result.stopped_early = stopped
    model.eval()
    return result
