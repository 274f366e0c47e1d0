"""The hepgen-zjets layout of Z(->mu mu)+jets events: 'muons' (N, 2, 4) and 'jets' (N, 3, 4)
float32 as (pT [GeV], eta, phi, m [GeV]), 'n_jets' (N,) int64; for a Bayesian ensemble
also 'member' (N,) int64, the weight draw that made each event (file attribute
'ensemble': the number of members).

:func:`read` refuses (ValueError naming the file) what :mod:`hepgen.data._h5` refuses for
every file, and: NaN or infinite values, negative pT, pT above 7 TeV (not GeV), 'n_jets'
outside 0..3 or not integers, negative or non-integer members. Masses are not checked: a
jet's mass from FastJet or a generator can be a little below zero."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data._h5 import (
    check_counts,
    check_rows,
    check_values,
    read_attrs,
    read_dataset,
    reading,
    write_arrays,
)
from hepgen.data.layouts import SampleWriter

MAX_JETS = 3
OBJECT_FEATURES = ("pt", "eta", "phi", "m")
MEMBER_KEY = "member"
UNITS = {"muons": "GeV", "jets": "GeV"}
MAX_PT_GEV = 7000.0


def file_attrs() -> dict[str, Any]:
    return {"format": "hepgen-zjets", "object_feature_names": list(OBJECT_FEATURES), "energy_unit": "GeV"}


def _arrays(sample) -> dict[str, np.ndarray]:
    arrays = {"muons": sample.muons, "jets": sample.jets, "n_jets": sample.n_jets}
    if sample.members is not None:
        arrays[MEMBER_KEY] = sample.members
    return arrays


def write(path: str | os.PathLike, sample, attrs: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Write a :class:`hepgen.data.EventSample` (with 'member' when it has members)."""
    if len(sample) == 0:
        raise ValueError("sample: no events to write")
    ensemble = {} if sample.members is None else {"ensemble": int(sample.members.max()) + 1}
    return write_arrays(
        path,
        _arrays(sample),
        units=UNITS,
        attrs={**file_attrs(), **ensemble, **sample.attrs, **(attrs or {})},
        force=force,
    )


def writer(
    path: str | os.PathLike, members: bool = False, attrs: dict[str, Any] | None = None, force: bool = False
) -> SampleWriter:
    """An appendable writer of EventSample chunks (``members``: chunks carry members; set
    the 'ensemble' attribute through ``attrs`` or ``finish``)."""
    layout = {
        "muons": ((2, 4), np.float32, "GeV"),
        "jets": ((MAX_JETS, 4), np.float32, "GeV"),
        "n_jets": ((), np.int64, None),
    }
    if members:
        layout[MEMBER_KEY] = ((), np.int64, None)
    return SampleWriter(path, layout, {**file_attrs(), **(attrs or {})}, force, _arrays)


def read(path: str | os.PathLike):
    """Read an event file ('member' if present); the checks of the module docstring."""
    from hepgen.data.events import EventSample

    with reading(path, "hepgen-zjets") as file:
        muons = read_dataset(file, "muons", (None, 2, 4), unit="GeV", kind="float")
        n = len(muons)
        jets = read_dataset(file, "jets", (n, MAX_JETS, 4), unit="GeV", kind="float")
        n_jets = read_dataset(file, "n_jets", (n,), kind="int")
        members = read_dataset(file, MEMBER_KEY, (n,), kind="int") if MEMBER_KEY in file else None
        check_rows(file, n)
        attrs = read_attrs(file)
    check_counts(path, "n_jets", n_jets, MAX_JETS, "jet counts")
    for key, objects in (("muons", muons), ("jets", jets)):
        check_values(path, key, objects)
        check_values(path, key, objects[..., 0], negative="pT")
        if n and objects[..., 0].max() > MAX_PT_GEV:
            raise ValueError(f"{path}: '{key}' pT reaches {objects[..., 0].max():.4g}, expected GeV")
    if members is not None:
        check_values(path, MEMBER_KEY, members, negative="ensemble members")
        members = members.astype(np.int64)
    return EventSample(muons, jets, n_jets, attrs, members)
