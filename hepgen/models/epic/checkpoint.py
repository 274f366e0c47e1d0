"""EPiC-FM / EPiC-JeDi checkpoints: the older functions, kept for one release.

An EPiC checkpoint is a :class:`hepgen.models.checkpoint.Checkpoint` of format
``hepgen.epic`` holding the sampling model (EMA network weights, preprocessing, jet-feature
density) and optionally the entry ``train_state`` (online weights, optimizer, schedule) for
resuming: ``model.save(path, train_state=...)``, ``hepgen.models.load(path)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hepgen.models.base import deprecated
from hepgen.models.checkpoint import Checkpoint
from hepgen.models.epic.model import EPiCGenerator
from hepgen.models.registry import PRETRAINED

FORMAT = EPiCGenerator.checkpoint_format
VERSION = EPiCGenerator.checkpoint_version
PRETRAINED_PATH = PRETRAINED["pretrained-jets"][0]
PRETRAINED = PRETRAINED_PATH  # the older name


def save_checkpoint(
    model: EPiCGenerator,
    path: str | os.PathLike,
    extra: dict | None = None,
    train_state: dict | None = None,
    force: bool = False,
) -> Path:
    """Write ``model`` (its weights are what sampling uses: pass the EMA model) with
    ``extra`` as its provenance (as before), atomically."""
    if not isinstance(model, EPiCGenerator):
        raise TypeError(f"model must be an EPiCGenerator, got {type(model).__name__}")
    entries = {} if train_state is None else {"train_state": train_state}
    return model.save(path, force=force, provenance=dict(extra or {}), **entries)


def read_train_state(path: str | os.PathLike) -> dict | None:
    """The resumable training state of an EPiC checkpoint, or None (a slim checkpoint)."""
    return Checkpoint.read(path, FORMAT).entries.get("train_state")


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu", with_train_state: bool = False):
    """Deprecated: (model in eval mode on ``device``, its provenance) [, the training state or
    None with ``with_train_state``]; use hepgen.models.load(path) and read_train_state(path)."""
    deprecated("hepgen.models.epic.load_checkpoint", "hepgen.models.load(path) (and read_train_state(path))")
    ckpt = Checkpoint.read(path, FORMAT)
    model = EPiCGenerator.from_checkpoint(ckpt, device)
    extra = {k: v for k, v in model.provenance.items() if k != "hepgen_version"}
    if with_train_state:
        return model, extra, ckpt.entries.get("train_state")
    return model, extra


def load(path: str | os.PathLike | None = "pretrained", device: str | torch.device = "cpu") -> EPiCGenerator:
    """Deprecated: the sampling model of a checkpoint, ``"pretrained"`` (or None) being the
    shipped EPiC-FM for Pythia top jets; use hepgen.models.load(path | "pretrained-jets")."""
    from hepgen.models.loading import load as load_any

    deprecated("hepgen.models.epic.load", 'hepgen.models.load(path | "pretrained-jets")')
    return load_any("pretrained-jets" if path is None or str(path) == "pretrained" else path, device, kind="jets")
