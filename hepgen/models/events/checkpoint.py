"""Event-generator checkpoints: format tag, version, config, weights, the fitted
preprocessing (per-multiplicity standardisation, multiplicity fractions, jet threshold)
and free-form extra information. Loaded with ``torch.load(weights_only=True)``."""

from __future__ import annotations

import os
from pathlib import Path

import torch

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
    from hepgen import __version__

    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force / force=True to overwrite)")
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "hepgen_version": __version__,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "preprocessing": preprocessing.state(),
        "extra": dict(extra or {}),
    }
    tmp = path.with_name(path.name + ".partial")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu"
                    ) -> tuple[EventGenerator, EventPreprocessing, dict]:
    """(model in eval mode on ``device``, preprocessing, extra information)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors all mean "not our file"
        raise ValueError(f"{path}: not a readable hepgen checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise ValueError(f"{path}: not a hepgen checkpoint (no 'format' tag)")
    if payload["format"] != FORMAT:
        raise ValueError(f"{path}: a {payload['format']!r} checkpoint, expected {FORMAT!r}")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: {FORMAT} checkpoint version {payload.get('version')!r}; "
                         f"this hepgen reads version {VERSION}")
    try:
        config = EventModelConfig.from_dict(payload["config"])
        preprocessing = EventPreprocessing.from_state(payload["preprocessing"])
    except (KeyError, TypeError, ValueError) as err:
        raise ValueError(f"{path}: damaged {FORMAT} checkpoint ({err})") from None
    model = build_model(config)  # RuntimeError if the architecture is not built here
    try:
        model.load_state_dict(payload["state_dict"])
    except (KeyError, RuntimeError) as err:
        raise ValueError(f"{path}: damaged {FORMAT} checkpoint ({err})") from None
    return model.to(device).eval(), preprocessing, payload.get("extra", {})
