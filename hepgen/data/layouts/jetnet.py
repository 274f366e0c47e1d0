"""The JetNet layout: 'particle_features' (N, P, 4) [eta_rel, phi_rel, pt_rel, mask] and
'jet_features' (N, 4) [pt (GeV), eta, mass (GeV), n_particles], float32.

:func:`read` refuses (ValueError naming the file) what :mod:`hepgen.data._h5` refuses for
every file, and: NaN or infinite values, a mask other than 0/1, a negative jet pT, a jet
pT above 7 TeV (not GeV), n_particles that are not whole numbers in 0..P. A negative
pt_rel of a particle is read as it is: generative models undershoot zero for the softest
particles (the shipped EPiC-FM: 0.3% of its particles, down to -0.01), and their samples
must reach the metrics unaltered."""

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

PARTICLE_KEY = "particle_features"
JET_KEY = "jet_features"
PARTICLE_FEATURES = ("eta_rel", "phi_rel", "pt_rel", "mask")
JET_FEATURES = ("pt", "eta", "mass", "n_particles")
UNITS = {JET_KEY: "GeV"}

# No jet from a 13-14 TeV collision carries more than half the beam energy; a larger
# pT means the file is not in GeV.
MAX_JET_PT_GEV = 7000.0


def file_attrs() -> dict[str, Any]:
    """The attributes that make a file a JetNet-layout file of ours."""
    return {
        "format": "jetnet",
        "particle_feature_names": list(PARTICLE_FEATURES),
        "jet_feature_names": list(JET_FEATURES),
        "energy_unit": "GeV",
    }


def _arrays(sample) -> dict[str, np.ndarray]:
    return {PARTICLE_KEY: sample.particles, JET_KEY: sample.jets}


def write(path: str | os.PathLike, sample, attrs: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Write a :class:`hepgen.data.JetSample`; ``attrs`` are added to the sample's own."""
    if len(sample) == 0:
        raise ValueError("sample: no jets to write")
    return write_arrays(
        path, _arrays(sample), units=UNITS, attrs={**file_attrs(), **sample.attrs, **(attrs or {})}, force=force
    )


def writer(
    path: str | os.PathLike, max_particles: int, attrs: dict[str, Any] | None = None, force: bool = False
) -> SampleWriter:
    """An appendable writer of JetSample chunks with ``max_particles`` slots."""
    layout = {PARTICLE_KEY: ((max_particles, 4), np.float32, None), JET_KEY: ((4,), np.float32, "GeV")}
    return SampleWriter(path, layout, {**file_attrs(), **(attrs or {})}, force, _arrays)


def read(path: str | os.PathLike):
    """Read a JetNet-layout file (ours or JetNet's own); the checks of the module docstring."""
    from hepgen.data.jets import JetSample

    with reading(path, "jetnet") as file:
        particles = read_dataset(file, PARTICLE_KEY, (None, None, 4), kind="float")
        jets = read_dataset(file, JET_KEY, (particles.shape[0], 4), unit="GeV", kind="float")
        check_rows(file, len(jets))
        attrs = read_attrs(file)
    check_values(path, PARTICLE_KEY, particles)
    check_values(path, JET_KEY, jets)
    mask = particles[..., 3]
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"{path}: '{PARTICLE_KEY}'[..., 3] must be a 0/1 mask")
    check_values(path, JET_KEY, jets[:, 0], negative="jet pT")
    if len(jets) and jets[:, 0].max() > MAX_JET_PT_GEV:
        raise ValueError(
            f"{path}: '{JET_KEY}' pT reaches {jets[:, 0].max():.4g}, expected GeV (at most {MAX_JET_PT_GEV:g})"
        )
    check_counts(path, JET_KEY, jets[:, 3], particles.shape[1], "n_particles")
    return JetSample(particles, jets, attrs)
