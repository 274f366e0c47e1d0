"""CaloMan checkpoints: one file holding a format tag, a version, the config and every tensor
(weights, flow permutations, preprocessing and latent standardisation).

Loaded with ``torch.load(weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

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


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[CaloMan, dict]:
    """(model in eval mode on ``device``, the checkpoint's extra information)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors all mean "not our file"
        raise ValueError(f"{path}: not a readable hepgen checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or "format" not in payload:
        raise ValueError(f"{path}: not a hepgen checkpoint (no 'format' tag; found {_describe(payload)})")
    if payload["format"] != FORMAT:
        raise ValueError(f"{path}: a {payload['format']!r} checkpoint, expected {FORMAT!r}")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: {FORMAT} checkpoint version {payload.get('version')!r}; "
                         f"this hepgen reads version {VERSION}")
    try:
        config = CaloManConfig.from_dict(payload["config"])
        model = CaloMan(config)
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: damaged {FORMAT} checkpoint ({err})") from None
    return model.to(device).eval(), payload.get("extra", {})


def _describe(payload) -> str:
    if isinstance(payload, dict):
        return f"a dict with keys {sorted(map(str, payload))[:8]}"
    return type(payload).__name__
