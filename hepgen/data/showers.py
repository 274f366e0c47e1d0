"""Calorimeter showers in the CaloChallenge layout and their HDF5 files.

``incident_energies`` (N, 1) and ``showers`` (N, n_voxels), both in MeV, voxels ordered
as described in :mod:`hepgen.data.calo_geometry`. Real CaloChallenge files load through
:func:`read_showers` unchanged.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data.calo_geometry import CaloGeometry

# The 15 incident energies of CaloChallenge dataset 1: 256 MeV ... 4 TeV in powers of two.
DATASET1_ENERGIES_MEV = tuple(float(2**k) for k in range(8, 23))


@dataclass
class ShowerSample:
    """Showers: ``incident_energies`` (N, 1) and ``showers`` (N, n_voxels), float32, MeV."""

    incident_energies: np.ndarray
    showers: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.incident_energies = np.asarray(self.incident_energies, dtype=np.float32)
        self.showers = np.asarray(self.showers, dtype=np.float32)
        if self.showers.ndim != 2:
            raise ValueError(f"showers: expected shape (N, n_voxels), got {self.showers.shape}")
        if self.incident_energies.shape != (len(self.showers), 1):
            raise ValueError(
                f"incident_energies: expected shape ({len(self.showers)}, 1), got {self.incident_energies.shape}"
            )

    def __len__(self) -> int:
        return len(self.showers)

    def write(self, path: str | os.PathLike, *, force: bool = False, attrs: dict[str, Any] | None = None) -> Path:
        """Write in the CaloChallenge layout (:mod:`hepgen.data.layouts.calochallenge`);
        ``attrs`` are added to the sample's own. FileExistsError unless ``force``."""
        from hepgen.data.layouts import calochallenge

        return calochallenge.write(path, self, attrs, force)

    @classmethod
    def concatenate(cls, chunks) -> ShowerSample:
        """One sample of ``chunks`` (same voxel count) in order; the first chunk's attrs."""
        chunks = list(chunks)
        if not chunks:
            raise ValueError("chunks: nothing to concatenate")
        return cls(
            np.concatenate([c.incident_energies for c in chunks]),
            np.concatenate([c.showers for c in chunks]),
            dict(chunks[0].attrs),
        )


def write_showers(
    path: str | os.PathLike,
    sample: ShowerSample,
    attrs: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write ``sample`` in the CaloChallenge layout; ``attrs`` are added to its own."""
    return sample.write(path, force=force, attrs=attrs)


def read_showers(path: str | os.PathLike, geometry: CaloGeometry | None = None) -> ShowerSample:
    """Read a CaloChallenge-layout file; with ``geometry``, check the voxel count."""
    from hepgen.data.layouts import calochallenge

    return calochallenge.read(path, None if geometry is None else geometry.n_voxels)
