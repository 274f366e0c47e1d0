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

from hepgen.data._h5 import open_for_reading, read_attrs, read_dataset, write_arrays
from hepgen.data.calo_geometry import CaloGeometry

# The 15 incident energies of CaloChallenge dataset 1: 256 MeV ... 4 TeV in powers of two.
DATASET1_ENERGIES_MEV = tuple(float(2**k) for k in range(8, 23))

# A calorimeter records at most a few times the incident energy (noise, calibration) and,
# in a file's typical shower, more than a few per mille of it. A median ratio outside this
# range means the two datasets are in different units (MeV against GeV is a factor 1000).
_DEPOSIT_RATIO_RANGE = (3e-3, 30.0)


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
                f"incident_energies: expected shape ({len(self.showers)}, 1), "
                f"got {self.incident_energies.shape}"
            )

    def __len__(self) -> int:
        return len(self.showers)


def write_showers(
    path: str | os.PathLike,
    sample: ShowerSample,
    attrs: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write ``sample`` in the CaloChallenge layout; ``attrs`` are added to its own."""
    if len(sample) == 0:
        raise ValueError("sample: no showers to write")
    return write_arrays(
        path,
        {"incident_energies": sample.incident_energies, "showers": sample.showers},
        units={"incident_energies": "MeV", "showers": "MeV"},
        attrs={"format": "calochallenge", "energy_unit": "MeV", **sample.attrs, **(attrs or {})},
        force=force,
    )


def read_showers(path: str | os.PathLike, geometry: CaloGeometry | None = None) -> ShowerSample:
    """Read a CaloChallenge-layout file; with ``geometry``, check the voxel count."""
    n_voxels = None if geometry is None else geometry.n_voxels
    with open_for_reading(path) as file:
        energies = read_dataset(file, "incident_energies", (None, 1), unit="MeV")
        showers = read_dataset(file, "showers", (len(energies), n_voxels), unit="MeV")
        attrs = read_attrs(file)
    if not np.all(np.isfinite(energies)) or np.any(energies <= 0):
        raise ValueError(f"{path}: 'incident_energies' must be finite and positive (MeV)")
    if not np.all(np.isfinite(showers)):
        raise ValueError(f"{path}: 'showers' contains NaN or infinite values")
    _check_units(path, energies, showers)
    return ShowerSample(energies, showers, attrs)


def _check_units(path, energies: np.ndarray, showers: np.ndarray) -> None:
    totals = showers.sum(axis=1, dtype=np.float64)
    nonzero = totals > 0
    if not np.any(nonzero):
        return
    ratio = float(np.median(totals[nonzero] / energies[nonzero, 0]))
    low, high = _DEPOSIT_RATIO_RANGE
    if not low <= ratio <= high:
        raise ValueError(
            f"{path}: 'showers' sum to {ratio:.3g} x 'incident_energies' (median); both must be in MeV"
        )
