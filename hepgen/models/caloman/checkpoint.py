"""CaloMan checkpoints: one file holding a format tag, a version, the config and every tensor
(weights, flow permutations, preprocessing and latent standardisation).

Loaded with ``torch.load(weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hepgen.models import _checkpoint
from hepgen.models.caloman.config import CaloManConfig
from hepgen.models.caloman.model import CaloMan

FORMAT = "hepgen.caloman"
# 2: per-layer normalised voxels, the latent flow conditioned on the layer energies.
VERSION = 2


def save_checkpoint(model: CaloMan, path: str | os.PathLike, extra: dict | None = None,
                    force: bool = False) -> Path:
    """Write ``model`` to ``path`` through a temporary file renamed at the end (never half-written)."""
    if not isinstance(model, CaloMan):
        raise TypeError(f"model must be a CaloMan, got {type(model).__name__}")
    return _checkpoint.write(path, FORMAT, VERSION, model, extra, force)


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[CaloMan, dict]:
    """(model in eval mode on ``device``, the checkpoint's extra information)."""
    payload = _checkpoint.read(path, FORMAT, VERSION, "CaloMan showers")
    try:
        model = CaloMan(CaloManConfig.from_dict(payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise _checkpoint.damaged(path, FORMAT, err) from None
    return model.to(device).eval(), payload.get("extra", {})
