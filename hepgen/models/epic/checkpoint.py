"""EPiC-FM / EPiC-JeDi checkpoints: one file holding a format tag, a version, the config and
every tensor of the sampling model (EMA network weights, preprocessing, jet-feature density),
plus optionally the training state (online weights, optimizer, schedule) for resuming.

Loaded with ``torch.load(weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hepgen.models import _checkpoint
from hepgen.models.epic.config import EPiCConfig
from hepgen.models.epic.model import EPiCGenerator

FORMAT = "hepgen.epic"
VERSION = 1
PRETRAINED = Path(__file__).with_name("pretrained") / "epic_fm_top30.pt"


def save_checkpoint(model: EPiCGenerator, path: str | os.PathLike, extra: dict | None = None,
                    train_state: dict | None = None, force: bool = False) -> Path:
    """Write ``model`` (its weights are what sampling uses: pass the EMA model) to ``path``
    through a temporary file renamed at the end (never half-written)."""
    if not isinstance(model, EPiCGenerator):
        raise TypeError(f"model must be an EPiCGenerator, got {type(model).__name__}")
    entries = {} if train_state is None else {"train_state": train_state}
    return _checkpoint.write(path, FORMAT, VERSION, model, extra, force, **entries)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu",
                    with_train_state: bool = False):
    """(model in eval mode on ``device``, the checkpoint's extra information)
    [, the training state or None with ``with_train_state``]."""
    payload = _checkpoint.read(path, FORMAT, VERSION, "EPiC-FM/EPiC-JeDi jets")
    try:
        model = EPiCGenerator(EPiCConfig.from_dict(payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise _checkpoint.damaged(path, FORMAT, err) from None
    model = model.to(device).eval()
    if with_train_state:
        return model, payload.get("extra", {}), payload.get("train_state")
    return model, payload.get("extra", {})


def load(path: str | os.PathLike | None = "pretrained", device: str | torch.device = "cpu") -> EPiCGenerator:
    """The sampling model of a checkpoint; ``"pretrained"`` (or None) is the shipped EPiC-FM
    for Pythia top jets with 30 particles."""
    if path is None or str(path) == "pretrained":
        if not PRETRAINED.is_file():
            raise FileNotFoundError(f"the pretrained model {PRETRAINED} is missing from this installation")
        path = PRETRAINED
    return load_checkpoint(path, device)[0]
