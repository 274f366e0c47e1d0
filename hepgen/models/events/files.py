"""Generated event files: the hepgen-zjets layout (:mod:`hepgen.data.layouts.zjets`,
readable by ``hepgen.data.read_events`` and ``hepgen evaluate``) with, for ensembles, the
dataset 'member' (N,): the index of the weight draw that made each event. ``write_generated``
and ``read_generated`` are the older spellings of ``EventSample(..., members=m).write`` and
``read_events(path).members``; ``run_info`` reads what a generated file says about its making."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hepgen.data._h5 import open_for_reading, read_attrs
from hepgen.data.events import EventSample, read_events


def write_generated(
    path: str | os.PathLike, sample: EventSample, members: np.ndarray, attrs: dict | None = None, force: bool = False
) -> Path:
    """``sample`` with ``members`` in the hepgen-zjets layout (``EventSample.write``); the
    sample's own attrs are not written, ``attrs`` are."""
    if len(sample) == 0:
        raise ValueError("sample: no events to write")
    members = np.asarray(members, dtype=np.int64)
    if members.shape != (len(sample),):
        raise ValueError(f"members: expected shape ({len(sample)},), got {members.shape}")
    return EventSample(sample.muons, sample.jets, sample.n_jets, {}, members).write(path, force=force, attrs=attrs)


def read_generated(path: str | os.PathLike) -> tuple[EventSample, np.ndarray | None]:
    """(events, members or None when the file holds no 'member' dataset)."""
    sample = read_events(path)
    return sample, sample.members


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
    if "sampling_cpu_seconds" in attrs and n:
        info["cpu_seconds_per_1e5"] = 1e5 * float(attrs["sampling_cpu_seconds"]) / n
    checkpoint = attrs.get("model")
    if checkpoint and Path(checkpoint).is_file():
        from hepgen.models.checkpoint import Checkpoint

        try:
            extra = Checkpoint.read(checkpoint).provenance
        except Exception:  # an unreadable checkpoint only costs the table its training columns
            extra = {}
        if "train_seconds" in extra:
            info["train_seconds"] = float(extra["train_seconds"])
            info["epochs"] = int(extra.get("epochs", 0))
        if "train_cpu_seconds" in extra:
            info["train_cpu_seconds"] = float(extra["train_cpu_seconds"])
        if "val_loss" in extra.get("final", {}):
            info["val_loss"] = float(extra["final"]["val_loss"])
    return info
