"""``hepgen.models.load``: any checkpoint or shipped model, by its format tag."""

from __future__ import annotations

import os
from pathlib import Path

from hepgen.models.registry import KINDS, PRETRAINED, model_class, pretrained_path


def load(path_or_name: str | os.PathLike, device=None, kind: str | None = None):
    """The generator in ``path_or_name`` in eval mode on ``device`` (default cpu).

    ``path_or_name``: a checkpoint file, or a shipped model: "pretrained-calo",
    "pretrained-jets" (see :func:`list_pretrained`), or "pretrained" with ``kind``
    ("showers" or "jets"). ``kind``: refuse a checkpoint of another data kind. The class is
    chosen by the checkpoint's format tag (:data:`hepgen.models.registry.FORMATS`)."""
    from hepgen.models.checkpoint import Checkpoint

    if kind is not None and kind not in KINDS:
        raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
    if not isinstance(path_or_name, (str, os.PathLike)):
        raise TypeError(f"path_or_name must be a path or a pretrained name, got {type(path_or_name).__name__}")
    path = Path(path_or_name)
    if not path.is_file():
        path = pretrained_path(str(path_or_name), kind) or path
    ckpt = Checkpoint.read(path)
    cls = model_class(ckpt.format)
    if kind is not None and cls.kind != kind:
        raise ValueError(f"{path}: a {ckpt.format} checkpoint generates {cls.kind}, expected {kind}")
    return cls.from_checkpoint(ckpt, device)


def list_pretrained() -> dict[str, tuple[Path, str]]:
    """name -> (file, description) of the models shipped with hepgen."""
    return {name: (path, description) for name, (path, _, description) in PRETRAINED.items()}
