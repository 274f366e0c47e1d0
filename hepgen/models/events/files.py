"""Generated event files: the hepgen-zjets layout of :mod:`hepgen.data.events` (readable by
``hepgen.data.read_events`` and ``hepgen evaluate``) plus, for ensembles, a dataset
'member' (N,) with the index of the weight draw that made each event."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from hepgen.data._h5 import open_for_reading, read_dataset, write_arrays
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
