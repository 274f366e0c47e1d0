"""Physics data for hepgen: files in the field's layouts, their generators, preprocessing.

- jets: :class:`JetSample`, :func:`read_jets`, :func:`write_jets` (JetNet layout);
  :func:`generate_jets` (Pythia 8 + FastJet, needs the ``pythia`` extra).
- Z+jets events: :class:`EventSample`, :func:`read_events`, :func:`write_events`,
  :func:`event_vectors` (the flat 9/13/17-dim vectors) and the invertible transforms of
  :mod:`hepgen.data.event_transforms`; :func:`generate_events` (Pythia 8 + FastJet).
- showers: :class:`ShowerSample`, :func:`read_showers`, :func:`write_showers`
  (CaloChallenge layout), :class:`CaloGeometry`; :func:`generate_showers` (a GFlash-style
  parametrization, not Geant4).

Names are imported on first use, so ``hepgen data --help`` stays fast; numpy and h5py
load with the first reader or writer, Pythia and FastJet only when events are generated.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

# Public name -> module that defines it.
_EXPORTS = {
    "CaloGeometry": "calo_geometry",
    "CaloLayer": "calo_geometry",
    "ArtanhPhi": "event_transforms",
    "Chain": "event_transforms",
    "LogTransform": "event_transforms",
    "RelativePhi": "event_transforms",
    "Standardize": "event_transforms",
    "Transform": "event_transforms",
    "event_preprocessing": "event_transforms",
    "EventSample": "events",
    "absolute_vectors": "events",
    "event_vectors": "events",
    "events_from_vectors": "events",
    "read_events": "events",
    "vector_columns": "events",
    "write_events": "events",
    "generate_events": "generate",
    "generate_jets": "generate",
    "generate_showers": "generate",
    "GFlashMedium": "gflash",
    "GFlashSimulator": "gflash",
    "JetSample": "jets",
    "read_jets": "jets",
    "write_jets": "jets",
    "DATASET1_ENERGIES_MEV": "showers",
    "ShowerSample": "showers",
    "read_showers": "showers",
    "write_showers": "showers",
    "GenerationInterrupted": "streaming",
}

__all__ = [
    "DATASET1_ENERGIES_MEV",
    "ArtanhPhi",
    "CaloGeometry",
    "CaloLayer",
    "Chain",
    "EventSample",
    "GFlashMedium",
    "GFlashSimulator",
    "GenerationInterrupted",
    "JetSample",
    "LogTransform",
    "RelativePhi",
    "ShowerSample",
    "Standardize",
    "Transform",
    "absolute_vectors",
    "event_preprocessing",
    "event_vectors",
    "events_from_vectors",
    "generate_events",
    "generate_jets",
    "generate_showers",
    "read_events",
    "read_jets",
    "read_showers",
    "vector_columns",
    "write_events",
    "write_jets",
    "write_showers",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'hepgen.data' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"hepgen.data.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})


if TYPE_CHECKING:
    from hepgen.data.calo_geometry import CaloGeometry, CaloLayer
    from hepgen.data.event_transforms import (
        ArtanhPhi,
        Chain,
        LogTransform,
        RelativePhi,
        Standardize,
        Transform,
        event_preprocessing,
    )
    from hepgen.data.events import (
        EventSample,
        absolute_vectors,
        event_vectors,
        events_from_vectors,
        read_events,
        vector_columns,
        write_events,
    )
    from hepgen.data.generate import generate_events, generate_jets, generate_showers
    from hepgen.data.gflash import GFlashMedium, GFlashSimulator
    from hepgen.data.jets import JetSample, read_jets, write_jets
    from hepgen.data.showers import DATASET1_ENERGIES_MEV, ShowerSample, read_showers, write_showers
    from hepgen.data.streaming import GenerationInterrupted
