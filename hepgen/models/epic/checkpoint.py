"""EPiC-FM / EPiC-JeDi checkpoints: one file holding a format tag, a version, the config and
every tensor of the sampling model (EMA network weights, preprocessing, jet-feature density),
plus optionally the training state (online weights, optimizer, schedule) for resuming.

Loaded with ``torch.load(weights_only=True)``: a checkpoint is data, never code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

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
    if train_state is not None:
        payload["train_state"] = train_state
    tmp = path.with_name(path.name + ".partial")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _read(path: Path) -> dict:
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors all mean "not our file"
        raise ValueError(f"{path}: not a readable hepgen checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or "format" not in payload:
        found = f"a dict with keys {sorted(map(str, payload))[:8]}" if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: not a hepgen checkpoint (no 'format' tag; found {found})")
    if payload["format"] != FORMAT:
        raise ValueError(f"{path}: a {payload['format']!r} checkpoint, expected {FORMAT!r} (EPiC-FM/EPiC-JeDi jets)")
    if payload.get("version") != VERSION:
        raise ValueError(f"{path}: {FORMAT} checkpoint version {payload.get('version')!r}; "
                         f"this hepgen reads version {VERSION}")
    return payload


def load_checkpoint(path: str | os.PathLike, device: str | torch.device = "cpu",
                    with_train_state: bool = False):
    """(model in eval mode on ``device``, the checkpoint's extra information)
    [, the training state or None with ``with_train_state``]."""
    path = Path(path)
    payload = _read(path)
    try:
        model = EPiCGenerator(EPiCConfig.from_dict(payload["config"]))
        model.load_state_dict(payload["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as err:
        raise ValueError(f"{path}: damaged {FORMAT} checkpoint ({err})") from None
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
