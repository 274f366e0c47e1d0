"""Physics data for hepgen: files in the field's layouts, their generators, preprocessing.

- jets: :class:`JetSample`, :func:`read_jets`, :func:`write_jets` (JetNet layout);
  :func:`generate_jets` (Pythia 8 + FastJet, needs the ``pythia`` extra).
- Z+jets events: :class:`EventSample`, :func:`read_events`, :func:`write_events`,
  :func:`event_vectors` (the flat 9/13/17-dim vectors) and the invertible transforms of
  :mod:`hepgen.data.event_transforms`; :func:`generate_events` (Pythia 8 + FastJet).
- showers: :class:`ShowerSample`, :func:`read_showers`, :func:`write_showers`
  (CaloChallenge layout), :class:`CaloGeometry`; :func:`generate_showers` (a GFlash-style
  parametrization, not Geant4).
- the file layouts themselves (dataset names, attributes, readers, writers, appendable
  writers for streaming): :mod:`hepgen.data.layouts`. Every sample writes itself:
  ``sample.write(path, force=False, attrs=None)``; ``Sample.concatenate(chunks)``.

Names are imported on first use (lazy_loader), so ``hepgen data --help`` stays fast; numpy and h5py
load with the first reader or writer, Pythia and FastJet only when events are generated.
"""

import lazy_loader

# Module -> the public names it defines.
_EXPORTS = {
    "calo_geometry": ["CaloGeometry", "CaloLayer"],
    "event_transforms": [
        "ArtanhPhi",
        "Chain",
        "LogTransform",
        "RelativePhi",
        "Standardize",
        "Transform",
        "event_preprocessing",
    ],
    "events": [
        "EventSample",
        "absolute_vectors",
        "event_vectors",
        "events_from_vectors",
        "read_events",
        "vector_columns",
        "write_events",
    ],
    "generate": ["generate_events", "generate_jets", "generate_showers"],
    "gflash": ["GFlashMedium", "GFlashSimulator"],
    "jets": ["JetSample", "read_jets", "write_jets"],
    "showers": ["DATASET1_ENERGIES_MEV", "ShowerSample", "read_showers", "write_showers"],
    "streaming": ["GenerationInterrupted"],
}

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submodules=["layouts"], submod_attrs=_EXPORTS)
