"""Event-generator checkpoints: format tag, version, config, weights, the fitted
preprocessing (per-multiplicity standardisation, multiplicity fractions, jet threshold)
and free-form extra information. Loaded with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hepgen.models import _checkpoint
from hepgen.models.events.base import EventGenerator, build_model
from hepgen.models.events.config import EventModelConfig
from hepgen.models.events.vectors import EventPreprocessing

FORMAT = "hepgen.events"
VERSION = 1


def save_checkpoint(model: EventGenerator, preprocessing: EventPreprocessing, path: str | os.PathLike,
                    extra: dict | None = None, force: bool = False) -> Path:
    """Write through a temporary file renamed at the end (never half-written)."""
    if not isinstance(model, EventGenerator):
        raise TypeError(f"model must be an EventGenerator, got {type(model).__name__}")
    if not isinstance(preprocessing, EventPreprocessing):
        raise TypeError(f"preprocessing must be an EventPreprocessing, got {type(preprocessing).__name__}")
    return _checkpoint.write(path, FORMAT, VERSION, model, extra, force, preprocessing=preprocessing.state())


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                    ) -> tuple[EventGenerator, EventPreprocessing, dict]:
    """(model in eval mode on ``device``, preprocessing, extra information)."""
    payload = _checkpoint.read(path, FORMAT, VERSION, "Z+jets event generators")
    try:
        config = EventModelConfig.from_dict(payload["config"])
        preprocessing = EventPreprocessing.from_state(payload["preprocessing"])
    except (KeyError, TypeError, ValueError) as err:
        raise _checkpoint.damaged(path, FORMAT, err) from None
    model = build_model(config)  # RuntimeError if the architecture is not built here
    try:
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError) as err:
        raise _checkpoint.damaged(path, FORMAT, err) from None
    return model.to(device).eval(), preprocessing, payload.get("extra", {})
