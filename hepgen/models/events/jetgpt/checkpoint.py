"""JetGPT checkpoints: one file with a format tag, a version, the config and every tensor
(weights and the fitted preprocessing: standardisation per jet count and multiplicity
fractions). Loaded with ``torch.load(weights_only=True)``: a checkpoint is data, never code."""

from __future__ import annotations

import os
from pathlib import Path

import torch

from hepgen.models.events.jetgpt.config import JetGPTConfig
from hepgen.models.events.jetgpt.model import JetGPT

FORMAT = "hepgen.jetgpt"
VERSION = 1


def save_checkpoint(model: JetGPT, path: str | os.PathLike, extra: dict | None = None,
                    force: bool = False) -> Path:
    """Write ``model`` to ``path`` through a temporary file renamed at the end (never half-written)."""
    if not isinstance(model, JetGPT):
        raise TypeError(f"model must be a JetGPT, got {type(model).__name__}")
    if not model.coding.fitted:
        raise ValueError("model: its preprocessing is not fitted; train it (or call model.coding.fit) first")
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
        "extra": dict(extra or {}),
    }
    tmp = path.with_name(path.name + ".partial")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[JetGPT, dict]:
    """(model in eval mode on ``device``, the checkpoint's extra information)."""
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
        model = JetGPT(JetGPTConfig.from_dict(payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: damaged {FORMAT} checkpoint ({err})") from None
    if not model.coding.fitted:
        raise ValueError(f"{path}: damaged {FORMAT} checkpoint (preprocessing not fitted)")
    return model.to(device).eval(), payload.get("extra", {})
