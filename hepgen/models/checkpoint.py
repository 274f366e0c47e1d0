"""The one checkpoint type of hepgen, read and written here and nowhere else.

A :class:`Checkpoint` is what a trained generator needs to come back: its ``format`` tag
(which model class reads it), the format ``version``, the ``config`` (a plain dict), the
``weights`` (a state dict of tensors), the ``provenance`` (hepgen version, what it was
trained on, when, the command) and ``entries``, a model's own extra state (fitted
preprocessing, a resumable training state, ...).

On disk it is a ``torch.save`` dict, the layout every hepgen release has written::

    {"format", "version", "hepgen_version", "config", "state_dict", "extra", **entries}

``weights`` is stored as ``state_dict``, ``provenance`` as ``extra`` (with the writer's
``hepgen_version`` beside it), each entry under its own key; so files written before this
module (the shipped pretrained models included) read unchanged, and older readers read
new files.

Writing: through a scratch file of the writer's own, ``FILE.partial-<pid>-<random>``, renamed
onto FILE when complete (:mod:`hepgen.data._atomic`): FILE holds the previous checkpoint,
untouched, or the complete new one, whatever stops the writer (Ctrl-C removes the scratch
file; SIGKILL leaves it behind), and two processes writing one target each publish a whole
file. Reading: only through :meth:`Checkpoint.read`, with ``torch.load(weights_only=True)``:
a checkpoint is data, never code. Its unpickler builds tensors, containers and plain values
and refuses every other global (a crafted pickle that would call ``os.system`` is refused
before anything runs), and it refuses TorchScript archives instead of handing them to
``torch.jit.load``. No other module of hepgen calls ``torch.load``, ``pickle`` or
``np.load(allow_pickle=True)``. Every refusal is a clear error that names the file.
"""

from __future__ import annotations

import datetime
import os
import shlex
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

# Keys of the on-disk dict that are not model entries.
_RESERVED = ("format", "version", "hepgen_version", "config", "state_dict", "extra")


def provenance(data: str | None = None, **more: Any) -> dict:
    """Provenance of a model made now: ``data`` (what it was trained on), ``created`` (UTC,
    ISO 8601), ``command`` (the command line when run from the shell) and ``more``."""
    out: dict[str, Any] = {"created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    if data is not None:
        out["data"] = str(data)
    if sys.argv and Path(sys.argv[0]).name in ("hepgen", "__main__.py"):
        out["command"] = "hepgen " + shlex.join(sys.argv[1:])
    out.update(more)
    return out


@dataclass
class Checkpoint:
    """A generator's checkpoint; see the module docstring for the file layout."""

    format: str
    version: int
    config: dict
    weights: dict[str, torch.Tensor]
    provenance: dict = field(default_factory=dict)
    entries: dict = field(default_factory=dict)
    # Where it was read from (for messages); not written.
    source: Path | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.format, str) or not self.format:
            raise ValueError(f"format: expected a non-empty str, got {self.format!r}")
        if not isinstance(self.version, int) or isinstance(self.version, bool) or self.version < 1:
            raise ValueError(f"version: expected a positive int, got {self.version!r}")
        for name in ("config", "weights", "provenance", "entries"):
            if not isinstance(getattr(self, name), dict):
                raise ValueError(f"{name}: expected a dict, got {type(getattr(self, name)).__name__}")
        bad = [k for k, v in self.weights.items() if not isinstance(k, str) or not torch.is_tensor(v)]
        if bad:
            raise ValueError(f"weights: expected str -> tensor, got {bad[:3]}")
        clash = sorted(set(self.entries) & set(_RESERVED))
        if clash:
            raise ValueError(f"entries: {clash} are reserved checkpoint keys")

    # ---------------------------------------------------------------------------- writing
    def write(self, path: str | os.PathLike, force: bool = False) -> Path:
        """Write to ``path`` (FileExistsError unless ``force``) through a scratch file."""
        from hepgen import __version__
        from hepgen.data._atomic import publish, scratch_path

        path = Path(path)
        if path.exists() and not force:
            raise FileExistsError(f"{path} exists (use --force / force=True to overwrite)")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"{path}: directory {path.parent} does not exist")
        extra = {k: v for k, v in self.provenance.items() if k != "hepgen_version"}
        payload = {
            "format": self.format,
            "version": self.version,
            "hepgen_version": __version__,
            "config": self.config,
            "state_dict": {k: v.detach().cpu() for k, v in self.weights.items()},
            "extra": extra,
            **self.entries,
        }
        tmp = scratch_path(path)
        try:
            torch.save(payload, tmp)
            return publish(tmp, path, force)
        finally:
            tmp.unlink(missing_ok=True)

    # ---------------------------------------------------------------------------- reading
    @classmethod
    def read(cls, path: str | os.PathLike, expect_format: str | None = None) -> Checkpoint:
        """The checkpoint in ``path``; with ``expect_format``, only that format.

        Refused, with the path in the message: a missing file (FileNotFoundError); a file
        torch cannot read (truncated, random bytes, pickled code); a torch file that is not
        a hepgen checkpoint (no format tag); another format than ``expect_format``; a
        format this hepgen does not know; a version newer or older than the one its model
        reads; content of the wrong types (ValueError)."""
        from hepgen.models.registry import FORMATS, supported_version

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"{path}: no such checkpoint file")
        try:
            with warnings.catch_warnings():
                # torch.load warns before it refuses some files (a TorchScript archive); the
                # refusal below says it in one line.
                warnings.simplefilter("ignore")
                payload = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as err:  # zip, pickle and unpickler errors all mean "not our file"
            raise ValueError(
                f"{path}: not a readable hepgen checkpoint, damaged or not a torch file "
                f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
            ) from None
        if not isinstance(payload, dict) or "format" not in payload:
            found = (
                f"a dict with keys {sorted(map(str, payload))[:8]}"
                if isinstance(payload, dict)
                else type(payload).__name__
            )
            raise ValueError(f"{path}: not a hepgen checkpoint (no 'format' tag; found {found})")
        fmt = payload["format"]
        if expect_format is not None and fmt != expect_format:
            what = FORMATS.get(expect_format, (None, None, ""))[2]
            raise ValueError(
                f"{path}: a {fmt!r} checkpoint, expected {expect_format!r}" + (f" ({what})" if what else "")
            )
        if fmt not in FORMATS:
            raise ValueError(f"{path}: unknown checkpoint format {fmt!r}; this hepgen reads {', '.join(FORMATS)}")
        version, supported = payload.get("version"), supported_version(fmt)
        if not isinstance(version, int) or isinstance(version, bool):
            raise ValueError(f"{path}: damaged {fmt} checkpoint (version {version!r} is not an int)")
        if version > supported:
            raise ValueError(
                f"{path}: {fmt} checkpoint version {version} was written by a newer hepgen; "
                f"this hepgen reads version {supported} (upgrade hepgen)"
            )
        if version < supported:
            raise ValueError(
                f"{path}: {fmt} checkpoint version {version} is no longer read; "
                f"this hepgen reads version {supported} (retrain the model)"
            )
        provenance = payload.get("extra", {})
        if not isinstance(provenance, dict):
            raise ValueError(f"{path}: damaged {fmt} checkpoint ('extra' is a {type(provenance).__name__})")
        provenance = dict(provenance)
        if "hepgen_version" in payload:
            provenance["hepgen_version"] = payload["hepgen_version"]
        try:
            return cls(
                fmt,
                version,
                payload.get("config"),
                payload.get("state_dict"),
                provenance,
                {k: v for k, v in payload.items() if k not in _RESERVED},
                source=path,
            )
        except ValueError as err:
            raise ValueError(f"{path}: damaged {fmt} checkpoint ({err})") from None

    def damaged(self, err: Exception) -> ValueError:
        """The error for a checkpoint whose content does not build its model."""
        where = f"{self.source}: " if self.source is not None else ""
        return ValueError(f"{where}damaged {self.format} checkpoint ({type(err).__name__}: {err})")
