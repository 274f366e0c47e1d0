"""The checkpoint file shared by every model: a dict with a format tag, a version, the
hepgen version, the config, the weights and extra information (plus a model's own entries),
written through ``FILE.partial`` renamed at the end (never half-written) and read with
``torch.load(weights_only=True)``: a checkpoint is data, never code.

Each model's ``checkpoint.py`` names its format and version and builds its model from the
payload; wrong files, formats and versions are refused here, with the path in the message.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch


def write(path: str | os.PathLike, fmt: str, version: int, model: torch.nn.Module, extra: dict | None,
          force: bool, **entries) -> Path:
    """Save ``model`` (its ``config.to_dict()`` and state dict) and ``entries`` to ``path``."""
    from hepgen import __version__

    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists (use --force / force=True to overwrite)")
    payload = {
        "format": fmt,
        "version": version,
        "hepgen_version": __version__,
        "config": model.config.to_dict(),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "extra": dict(extra or {}),
        **entries,
    }
    tmp = path.with_name(path.name + ".partial")
    try:
        torch.save(payload, tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def read(path: str | os.PathLike, fmt: str, version: int, what: str = "") -> dict:
    """The payload of a ``fmt`` checkpoint of ``version``; a clear error for anything else.
    ``what`` names the models, for the message when the format is another one."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint file")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # pickle, zip and unpickler errors all mean "not our file"
        raise ValueError(f"{path}: not a readable hepgen checkpoint ({type(err).__name__}: {err})") from None
    if not isinstance(payload, dict) or "format" not in payload:
        found = f"a dict with keys {sorted(map(str, payload))[:8]}" if isinstance(payload, dict) else type(payload).__name__
        raise ValueError(f"{path}: not a hepgen checkpoint (no 'format' tag; found {found})")
    if payload["format"] != fmt:
        raise ValueError(f"{path}: a {payload['format']!r} checkpoint, expected {fmt!r}" + (f" ({what})" if what else ""))
    if payload.get("version") != version:
        raise ValueError(f"{path}: {fmt} checkpoint version {payload.get('version')!r}; "
                         f"this hepgen reads version {version}")
    return payload


def damaged(path: str | os.PathLike, fmt: str, err: Exception) -> ValueError:
    """The error for a checkpoint of the right format whose content does not build a model."""
    return ValueError(f"{Path(path)}: damaged {fmt} checkpoint ({err})")
