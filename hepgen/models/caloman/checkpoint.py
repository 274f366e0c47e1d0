"""CaloMan checkpoints: the older functions, kept for one release.

A CaloMan checkpoint is a :class:`hepgen.models.checkpoint.Checkpoint` of format
``hepgen.caloman``: ``model.save(path)``, ``hepgen.models.load(path)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hepgen.models.base import deprecated
from hepgen.models.caloman.model import CaloMan
from hepgen.models.checkpoint import Checkpoint

FORMAT = CaloMan.checkpoint_format
VERSION = CaloMan.checkpoint_version


def save_checkpoint(model: CaloMan, path: str | os.PathLike, extra: dict | None = None, force: bool = False) -> Path:
    """Write ``model`` to ``path`` with ``extra`` as its provenance, as before (atomic)."""
    if not isinstance(model, CaloMan):
        raise TypeError(f"model must be a CaloMan, got {type(model).__name__}")
    return model.save(path, force=force, provenance=dict(extra or {}))


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[CaloMan, dict]:
    """Deprecated: (model in eval mode on ``device``, its provenance); use hepgen.models.load(path)."""
    deprecated("hepgen.models.caloman.load_checkpoint", "hepgen.models.load(path) and model.provenance")
    model = CaloMan.from_checkpoint(Checkpoint.read(path, FORMAT), device)
    return model, _extra(model)


def _extra(model) -> dict:
    """The older loaders' ``extra``: the provenance without the writer's version."""
    return {k: v for k, v in model.provenance.items() if k != "hepgen_version"}
