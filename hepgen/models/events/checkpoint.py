"""Event-generator checkpoints: the older functions, kept for one release.

An event checkpoint is a :class:`hepgen.models.checkpoint.Checkpoint` of format
``hepgen.events``: config, weights, provenance and the entry ``preprocessing`` (the fitted
per-multiplicity standardisation, multiplicity fractions, jet threshold), which is the
model's own ``model.preprocessing``: ``model.save(path)``, ``hepgen.models.load(path)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hepgen.models.base import deprecated
from hepgen.models.checkpoint import Checkpoint
from hepgen.models.events.base import EventGenerator
from hepgen.models.events.vectors import EventPreprocessing

FORMAT = EventGenerator.checkpoint_format
VERSION = EventGenerator.checkpoint_version


def save_checkpoint(
    model: EventGenerator,
    preprocessing: EventPreprocessing,
    path: str | os.PathLike,
    extra: dict | None = None,
    force: bool = False,
) -> Path:
    """Write ``model`` with ``preprocessing`` (which becomes the model's own) and ``extra`` as
    its provenance, as before (atomic)."""
    if not isinstance(model, EventGenerator):
        raise TypeError(f"model must be an EventGenerator, got {type(model).__name__}")
    if not isinstance(preprocessing, EventPreprocessing):
        raise TypeError(f"preprocessing must be an EventPreprocessing, got {type(preprocessing).__name__}")
    model.preprocessing = preprocessing
    return model.save(path, force=force, provenance=dict(extra or {}))


def load_checkpoint(
    path: str | os.PathLike, device: str | torch.device = "cpu"
) -> tuple[EventGenerator, EventPreprocessing, dict]:
    """Deprecated: (model in eval mode on ``device``, its preprocessing, its provenance); use
    hepgen.models.load(path) (then model.preprocessing, model.provenance)."""
    deprecated("hepgen.models.events.checkpoint.load_checkpoint", "hepgen.models.load(path)")
    model = EventGenerator.from_checkpoint(Checkpoint.read(path, FORMAT), device)
    extra = {k: v for k, v in model.provenance.items() if k != "hepgen_version"}
    return model, model.preprocessing, extra
