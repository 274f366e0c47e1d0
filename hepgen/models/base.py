"""The contract every hepgen generator implements (CaloMan, EPiC-FM/JeDi, the event models).

Users see one surface::

    model = hepgen.models.load("pretrained-jets")          # or a checkpoint path
    jets = model.sample(1000, seed=1)                        # a JetSample (ShowerSample, EventSample)
    jets.write("jets.h5")                                    # in the field's layout
    for chunk in model.sample_chunks(10**7, seed=1, chunk_size=10_000):
        ...                                                  # streaming, e.g. to disk
    model.save("copy.pt")                                    # a Checkpoint (hepgen.models.checkpoint)

``sample(n, *, condition=None, generator=None, seed=None, batch_size=None, progress=False,
device=None, **sampler_settings)`` returns a sample object of the model's data kind;
preprocessing is inside the model. ``condition`` is the model's per-sample condition (see
each model's ``condition_help``); the sampler settings (method, steps, tolerances, the
ensemble member of a Bayesian model) are keyword parameters with the model's defaults.

Randomness, the rule the distributed generation builds on:

- ``seed=S``: chunk k (samples k*C .. k*C+C-1, C = ``chunk_size``) is generated from its own
  generator seeded by :func:`chunk_seed` (S, k), so chunk k is the same whether produced
  alone, in any order, or in another process (``sample_chunks(..., chunks=[k, ...])``);
  a run depends on (S, n, C, ``batch_size``, settings, condition), not on how its chunks
  are split. ``sample(n, seed=S, batch_size=C)`` equals the concatenated chunks with
  ``chunk_size=C``.
- ``generator=g``: one stream for the whole run, chunk after chunk (the older behaviour;
  the shipped models' documented numbers were made this way). Without either, torch's
  global generator is that stream.

A new model implements (besides ``__init__`` and training):

- class attributes ``kind`` ("jets" | "showers" | "events"), ``checkpoint_format``,
  ``checkpoint_version`` and ``default_batch_size``; one line in
  :data:`hepgen.models.registry.FORMATS`;
- ``sampler_settings(**settings) -> dict``: the settings validated, defaults filled in
  (unknown names: TypeError);
- ``check_condition(n, condition) -> (n, condition)``: validated, the condition as an array
  indexable by sample (or None);
- ``generate_chunk(n, condition, generator, device, batch_size, settings) -> Sample``: one
  chunk in eval mode under no_grad (``generator`` None = torch's global generator);
- ``to_checkpoint`` / ``from_checkpoint`` when ``config.to_dict()``, the state dict and
  :meth:`checkpoint_entries` / :meth:`load_entries` do not suffice.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from hepgen.models.checkpoint import Checkpoint


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index`` of a run with ``seed`` (hepgen.data.streaming's rule)."""
    from hepgen.data.streaming import chunk_seed as data_chunk_seed

    return data_chunk_seed(seed, index)


def positive_int(name: str, value, default: int | None = None) -> int:
    """``value`` (``default`` when None) as an int >= 1, or a ValueError naming ``name``."""
    if value is None and default is not None:
        value = default
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


def deprecated(old: str, new: str) -> None:
    warnings.warn(
        f"{old} is deprecated and will be removed in the next release; use {new}", DeprecationWarning, stacklevel=3
    )


class Generator(nn.Module):
    """Base class of every generator; see the module docstring for the contract."""

    kind: ClassVar[str]
    checkpoint_format: ClassVar[str]
    checkpoint_version: ClassVar[int]
    default_batch_size: ClassVar[int] = 1024
    condition_help: ClassVar[str] = "no condition"

    def __init__(self):
        super().__init__()
        # What the model was trained on (set by trainers and from_checkpoint).
        self.provenance: dict = {}

    # ------------------------------------------------------------------ to implement
    def sampler_settings(self, **settings) -> dict:
        if settings:
            raise TypeError(f"{type(self).__name__}.sample takes no sampler setting {sorted(settings)}")
        return {}

    def check_condition(self, n, condition):
        if condition is not None:
            raise ValueError(f"condition: {type(self).__name__} takes {self.condition_help}")
        return positive_int("n", n), None

    def generate_chunk(
        self,
        n: int,
        condition,
        generator: torch.Generator | None,
        device: torch.device,
        batch_size: int,
        settings: dict,
    ):
        raise NotImplementedError

    def sampling_context(self, settings: dict):
        """Held around a whole sampling run (e.g. a Bayesian weight draw, cached weight norm)."""
        return contextlib.nullcontext()

    # ------------------------------------------------------------------ sampling
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        if p is None:
            p = next(self.buffers())
        return p.device

    def sample_chunks(
        self,
        n: int | None = None,
        *,
        condition=None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        chunk_size: int | None = None,
        batch_size: int | None = None,
        chunks: Iterable[int] | None = None,
        progress=False,
        device: str | torch.device | None = None,
        **settings,
    ) -> Iterator:
        """Yield sample chunks of ``chunk_size`` (the last one shorter), ``n`` samples in all.

        ``chunks``: the chunk indices to produce, in the order given (only with ``seed``: a
        chunk's content then depends on its index alone). ``batch_size``: samples per
        network call within a chunk (default: the chunk size). ``device``: where to
        compute; the model is moved there. Every argument is checked in this call, before
        any chunk is generated (the chunks come lazily, as they are iterated)."""
        settings = self.sampler_settings(**settings)
        n, condition = self.check_condition(n, condition)
        chunk_size = positive_int("chunk_size", chunk_size, self.default_batch_size)
        batch_size = positive_int("batch_size", batch_size, chunk_size)
        if seed is not None and generator is not None:
            raise ValueError("pass seed or generator, not both")
        if seed is not None and (
            not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or not 0 <= seed < 2**63
        ):
            raise ValueError(f"seed must be a non-negative int, got {seed!r}")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
        n_chunks = -(-n // chunk_size)
        if chunks is None:
            indices = list(range(n_chunks))
        else:
            if seed is None:
                raise ValueError("chunks needs seed (a chunk's content must depend on its index alone)")
            indices = [int(k) for k in chunks]
            bad = [k for k in indices if not 0 <= k < n_chunks]
            if bad:
                raise ValueError(f"chunks: {bad[:5]} outside 0..{n_chunks - 1} ({n} samples in chunks of {chunk_size})")
        if device is not None:
            self.to(torch.device(device))
        # Checked now, generated lazily: a caller can refuse bad arguments before opening a file.
        return self._chunks(n, condition, seed, generator, chunk_size, batch_size, indices, progress, settings)

    def _chunks(self, n, condition, seed, generator, chunk_size, batch_size, indices, progress, settings):
        device = self.device()
        progress_bar = _progress_bar(progress, sum(min(chunk_size, n - k * chunk_size) for k in indices), self.kind)
        was_training = self.training
        if was_training:  # eval() walks every submodule: skipped when already in eval mode
            self.eval()
        try:
            with torch.no_grad(), self.sampling_context(settings):
                for k in indices:
                    start = k * chunk_size
                    size = min(chunk_size, n - start)
                    part = None if condition is None else condition[start : start + size]
                    g = torch.Generator().manual_seed(chunk_seed(seed, k)) if seed is not None else generator
                    chunk = self.generate_chunk(size, part, g, device, batch_size, settings)
                    progress_bar(size)
                    yield chunk
        finally:
            if was_training:
                self.train()
            progress_bar(None)

    def sample(
        self,
        n: int | None = None,
        *,
        condition=None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        batch_size: int | None = None,
        progress=False,
        device: str | torch.device | None = None,
        **settings,
    ):
        """``n`` samples as one sample object of the model's kind (see the module docstring);
        ``batch_size`` is the chunk size of :meth:`sample_chunks`."""
        if batch_size is not None:
            positive_int("batch_size", batch_size)
        chunks = list(
            self.sample_chunks(
                n,
                condition=condition,
                seed=seed,
                generator=generator,
                chunk_size=batch_size,
                progress=progress,
                device=device,
                **settings,
            )
        )
        return type(chunks[0]).concatenate(chunks)

    # ------------------------------------------------------------------ checkpoints
    def checkpoint_entries(self) -> dict:
        """The model's own state stored beside its weights (e.g. fitted preprocessing)."""
        return {}

    def load_entries(self, entries: dict) -> None:
        """Restore what :meth:`checkpoint_entries` stored."""

    def to_checkpoint(self, provenance: dict | None = None, **entries) -> Checkpoint:
        """The model as a :class:`Checkpoint`; ``provenance`` defaults to the model's own;
        ``entries`` add state (e.g. ``train_state``)."""
        prov = dict(getattr(self, "provenance", {}) if provenance is None else provenance)
        return Checkpoint(
            self.checkpoint_format,
            self.checkpoint_version,
            self.config.to_dict(),
            {k: v.detach().cpu() for k, v in self.state_dict().items()},
            prov,
            {**self.checkpoint_entries(), **entries},
        )

    @classmethod
    def build(cls, config_dict: dict):
        """A fresh model of the checkpoint's config (subclasses parse their config class)."""
        raise NotImplementedError

    @classmethod
    def from_checkpoint(cls, ckpt: Checkpoint, device: str | torch.device | None = None):
        """The model of ``ckpt`` in eval mode (on ``device``: default cpu)."""
        if ckpt.format != cls.checkpoint_format:
            raise ValueError(
                f"{ckpt.source or 'checkpoint'}: a {ckpt.format!r} checkpoint, "
                f"{cls.__name__} reads {cls.checkpoint_format!r}"
            )
        try:
            model = cls.build(ckpt.config)
            model.load_state_dict(ckpt.weights)
            model.load_entries(ckpt.entries)
        except (KeyError, TypeError, ValueError, RuntimeError) as err:
            if isinstance(err, RuntimeError) and "not available in this build" in str(err):
                raise
            raise ckpt.damaged(err) from None
        model.provenance = dict(ckpt.provenance)
        return model.to(device or "cpu").eval()

    def save(self, path: str | os.PathLike, force: bool = False, provenance: dict | None = None, **entries) -> Path:
        """Write the model's checkpoint to ``path`` (atomic; FileExistsError unless ``force``)."""
        return self.to_checkpoint(provenance, **entries).write(path, force=force)


def _progress_bar(progress, total: int, kind: str):
    """``update(k)`` / ``update(None)`` (close): a tqdm bar when ``progress`` is true and
    stderr is a terminal, an old-style callable ``progress(k)`` (deprecated), or nothing."""
    if callable(progress):
        deprecated("progress=<callable>", "progress=True (a tqdm bar)")
        return lambda k: None if k is None else progress(k)
    if not progress or not sys.stderr.isatty():
        return lambda k: None
    from tqdm.auto import tqdm

    bar = tqdm(total=total, unit=kind[:-1] if kind.endswith("s") else kind, file=sys.stderr, dynamic_ncols=True)
    return lambda k: bar.close() if k is None else bar.update(k)
