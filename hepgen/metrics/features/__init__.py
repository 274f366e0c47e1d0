"""Kind-specific classifier inputs and observables: events, jets, showers.

Each kind module (named as in ``KIND_NAMES``) has ``KEYS`` (the HDF5 datasets that identify its files),
``CLASSIFIER`` (its default :class:`~hepgen.metrics.training.ClassifierConfig`),
``read(path)``, ``check_compatible(truth, generated, ...)``,
``classifier_inputs(sample, ...)`` and ``observables(sample)``.
"""

from __future__ import annotations

import importlib
import os

KIND_NAMES = ("events", "jets", "showers")


def kind_module(kind: str):
    """The module of ``kind`` (``"events"``, ``"jets"`` or ``"showers"``)."""
    if kind not in KIND_NAMES:
        raise ValueError(f"kind: expected one of {KIND_NAMES}, got {kind!r}")
    return importlib.import_module(f"hepgen.metrics.features.{kind}")


def detect_kind(path: str | os.PathLike) -> str:
    """The kind of an HDF5 sample file, from its top-level dataset names."""
    import h5py

    if not os.path.isfile(path):
        raise FileNotFoundError(f"{path}: no such file")
    try:
        with h5py.File(path, "r") as file:
            keys = set(file.keys())
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None
    matches = [k for k in KIND_NAMES if set(kind_module(k).KEYS) <= keys]
    if len(matches) == 1:
        return matches[0]
    expected = "; ".join(f"{k}: {', '.join(kind_module(k).KEYS)}" for k in KIND_NAMES)
    if not matches:
        raise ValueError(
            f"{path}: cannot tell the sample kind from its datasets {sorted(keys)}; "
            f"expected the datasets of one kind ({expected})"
        )
    raise ValueError(f"{path}: datasets {sorted(keys)} fit several kinds {matches}; pass --kind")
