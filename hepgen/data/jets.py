"""Jets as particle clouds in the JetNet layout, and their HDF5 files.

``particle_features`` (N, P, 4): [eta_rel, phi_rel, pt_rel, mask], the P highest-pT
constituents, zero-padded; eta_rel = eta - eta_jet, phi_rel = phi - phi_jet wrapped to
(-pi, pi], pt_rel = pt / pt_jet. ``jet_features`` (N, 4): [pt (GeV), eta, mass (GeV),
n_particles], with n_particles the number of stored (unpadded) constituents.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data._h5 import open_for_reading, read_attrs, read_dataset, write_arrays

PARTICLE_KEY = "particle_features"
JET_KEY = "jet_features"
PARTICLE_FEATURES = ("eta_rel", "phi_rel", "pt_rel", "mask")
JET_FEATURES = ("pt", "eta", "mass", "n_particles")

# No jet from a 13-14 TeV collision carries more than half the beam energy; a larger
# pT means the file is not in GeV.
_MAX_JET_PT_GEV = 7000.0


@dataclass
class JetSample:
    """Jets in the JetNet layout: ``particles`` (N, P, 4) and ``jets`` (N, 4), float32."""

    particles: np.ndarray
    jets: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.particles = np.asarray(self.particles, dtype=np.float32)
        self.jets = np.asarray(self.jets, dtype=np.float32)
        if self.particles.ndim != 3 or self.particles.shape[2] != 4:
            raise ValueError(f"particles: expected shape (N, P, 4), got {self.particles.shape}")
        if self.jets.shape != (len(self.particles), 4):
            raise ValueError(
                f"jets: expected shape ({len(self.particles)}, 4) to match particles, got {self.jets.shape}"
            )

    def __len__(self) -> int:
        return len(self.jets)

    @property
    def max_particles(self) -> int:
        """P, the number of particle slots per jet."""
        return self.particles.shape[1]

    @property
    def mask(self) -> np.ndarray:
        """(N, P) bool, true for real (unpadded) particles."""
        return self.particles[..., 3] > 0.5


def write_jets(
    path: str | os.PathLike,
    sample: JetSample,
    attrs: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write ``sample`` in the JetNet layout; ``attrs`` are added to the sample's own."""
    if len(sample) == 0:
        raise ValueError("sample: no jets to write")
    return write_arrays(
        path,
        {PARTICLE_KEY: sample.particles, JET_KEY: sample.jets},
        units={JET_KEY: "GeV"},
        attrs={
            "format": "jetnet",
            "particle_feature_names": list(PARTICLE_FEATURES),
            "jet_feature_names": list(JET_FEATURES),
            "energy_unit": "GeV",
            **sample.attrs,
            **(attrs or {}),
        },
        force=force,
    )


def read_jets(path: str | os.PathLike) -> JetSample:
    """Read a JetNet-layout file (ours or JetNet's own), checking keys, shapes and units."""
    with open_for_reading(path) as file:
        particles = read_dataset(file, PARTICLE_KEY, (None, None, 4))
        jets = read_dataset(file, JET_KEY, (particles.shape[0], 4), unit="GeV")
        attrs = read_attrs(file)
    mask = particles[..., 3]
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"{path}: '{PARTICLE_KEY}'[..., 3] must be a 0/1 mask")
    if len(jets) and np.nanmax(jets[:, 0]) > _MAX_JET_PT_GEV:
        raise ValueError(
            f"{path}: '{JET_KEY}' pT reaches {np.nanmax(jets[:, 0]):.4g}, expected GeV "
            f"(at most {_MAX_JET_PT_GEV:g})"
        )
    return JetSample(particles, jets, attrs)
