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

from hepgen.data.layouts.jetnet import JET_FEATURES, JET_KEY, PARTICLE_FEATURES, PARTICLE_KEY

__all__ = ["JET_FEATURES", "JET_KEY", "PARTICLE_FEATURES", "PARTICLE_KEY", "JetSample", "read_jets", "write_jets"]


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

    def write(self, path: str | os.PathLike, *, force: bool = False, attrs: dict[str, Any] | None = None) -> Path:
        """Write in the JetNet layout (:mod:`hepgen.data.layouts.jetnet`); ``attrs`` are
        added to the sample's own. FileExistsError unless ``force``."""
        from hepgen.data.layouts import jetnet

        return jetnet.write(path, self, attrs, force)

    @classmethod
    def concatenate(cls, chunks) -> JetSample:
        """One sample of ``chunks`` (same particle slots) in order; the first chunk's attrs."""
        chunks = list(chunks)
        if not chunks:
            raise ValueError("chunks: nothing to concatenate")
        return cls(
            np.concatenate([c.particles for c in chunks]),
            np.concatenate([c.jets for c in chunks]),
            dict(chunks[0].attrs),
        )


def write_jets(
    path: str | os.PathLike,
    sample: JetSample,
    attrs: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write ``sample`` in the JetNet layout; ``attrs`` are added to the sample's own."""
    return sample.write(path, force=force, attrs=attrs)


def read_jets(path: str | os.PathLike) -> JetSample:
    """Read a JetNet-layout file (ours or JetNet's own), checking keys, shapes and units."""
    from hepgen.data.layouts import jetnet

    return jetnet.read(path)
