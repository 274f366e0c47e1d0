"""Generated event files: the hepgen-zjets layout of :mod:`hepgen.data.events` (readable by
``hepgen.data.read_events`` and ``hepgen evaluate``) plus, for ensembles, a dataset
'member' (N,) with the index of the weight draw that made each event."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hepgen.data._h5 import open_for_reading, read_attrs, read_dataset, write_arrays
from hepgen.data.events import OBJECT_FEATURES, EventSample, read_events


def write_generated(path: str | os.PathLike, sample: EventSample, members: np.ndarray, attrs: dict | None = None,
                    force: bool = False) -> Path:
    if len(sample) == 0:
        raise ValueError("sample: no events to write")
    members = np.asarray(members, dtype=np.int64)
    if members.shape != (len(sample),):
        raise ValueError(f"members: expected shape ({len(sample)},), got {members.shape}")
    return write_arrays(
        path,
        {"muons": sample.muons, "jets": sample.jets, "n_jets": sample.n_jets, "member": members},
        units={"muons": "GeV", "jets": "GeV"},
        attrs={"format": "hepgen-zjets", "object_feature_names": list(OBJECT_FEATURES), "energy_unit": "GeV",
               "ensemble": int(members.max()) + 1, **(attrs or {})},
        force=force,
    )


def read_generated(path: str | os.PathLike) -> tuple[EventSample, np.ndarray | None]:
    """(events, members or None when the file holds no 'member' dataset)."""
    sample = read_events(path)
    with open_for_reading(path) as file:
        if "member" not in file:
            return sample, None
        members = read_dataset(file, "member", (len(sample),))
    return sample, members.astype(np.int64)


def run_info(path: str | os.PathLike) -> dict:
    """What a generated file says about its making: sampling time per 10^5 events (from its
    attributes) and, if its checkpoint is still where it was, the training time, epochs and
    final validation loss. Missing pieces are left out."""
    with open_for_reading(path) as file:
        attrs = read_attrs(file)
        n = len(file["n_jets"])
    info = {}
    if "sampling_seconds" in attrs and n:
        info["seconds_per_1e5"] = 1e5 * float(attrs["sampling_seconds"]) / n
    checkpoint = attrs.get("model")
    if checkpoint and Path(checkpoint).is_file():
        import torch

        try:
            extra = torch.load(checkpoint, map_location="cpu", weights_only=True).get("extra", {})
        except Exception:  # an unreadable checkpoint only costs the table its training columns
            extra = {}
        if "train_seconds" in extra:
            info["train_seconds"] = float(extra["train_seconds"])
            info["epochs"] = int(extra.get("epochs", 0))
        if "val_loss" in extra.get("final", {}):
            info["val_loss"] = float(extra["final"]["val_loss"])
    return info
