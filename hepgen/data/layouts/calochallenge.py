"""The CaloChallenge layout: 'incident_energies' (N, 1) and 'showers' (N, n_voxels), float32,
both in MeV. Real CaloChallenge files read unchanged.

:func:`read` refuses (ValueError naming the file) what :mod:`hepgen.data._h5` refuses for
every file, and: NaN or infinite values, incident energies that are not positive, negative
voxel energies (Geant4's deposits and every generator here are >= 0), another voxel count
than asked for, and showers whose sums say the two datasets are in different units."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data._h5 import (
    check_rows,
    check_values,
    read_attrs,
    read_dataset,
    reading,
    write_arrays,
)
from hepgen.data.layouts import SampleWriter

ENERGY_KEY = "incident_energies"
SHOWER_KEY = "showers"
UNITS = {ENERGY_KEY: "MeV", SHOWER_KEY: "MeV"}

# A calorimeter records at most a few times the incident energy (noise, calibration) and,
# in a file's typical shower, more than a few per mille of it. A median ratio outside this
# range means the two datasets are in different units (MeV against GeV is a factor 1000).
DEPOSIT_RATIO_RANGE = (3e-3, 30.0)


def file_attrs() -> dict[str, Any]:
    return {"format": "calochallenge", "energy_unit": "MeV"}


def _arrays(sample) -> dict[str, np.ndarray]:
    return {ENERGY_KEY: sample.incident_energies, SHOWER_KEY: sample.showers}


def write(path: str | os.PathLike, sample, attrs: dict[str, Any] | None = None, force: bool = False) -> Path:
    """Write a :class:`hepgen.data.ShowerSample`; ``attrs`` are added to its own."""
    if len(sample) == 0:
        raise ValueError("sample: no showers to write")
    return write_arrays(
        path, _arrays(sample), units=UNITS, attrs={**file_attrs(), **sample.attrs, **(attrs or {})}, force=force
    )


def writer(
    path: str | os.PathLike, n_voxels: int, attrs: dict[str, Any] | None = None, force: bool = False
) -> SampleWriter:
    """An appendable writer of ShowerSample chunks of ``n_voxels`` voxels."""
    layout = {ENERGY_KEY: ((1,), np.float32, "MeV"), SHOWER_KEY: ((n_voxels,), np.float32, "MeV")}
    return SampleWriter(path, layout, {**file_attrs(), **(attrs or {})}, force, _arrays)


def read(path: str | os.PathLike, n_voxels: int | None = None):
    """Read a CaloChallenge-layout file; with ``n_voxels``, check the voxel count; the
    checks of the module docstring."""
    from hepgen.data.showers import ShowerSample

    with reading(path, "calochallenge") as file:
        energies = read_dataset(file, ENERGY_KEY, (None, 1), unit="MeV", kind="float")
        showers = read_dataset(file, SHOWER_KEY, (len(energies), n_voxels), unit="MeV", kind="float")
        check_rows(file, len(energies))
        attrs = read_attrs(file)
    check_values(path, ENERGY_KEY, energies)
    if len(energies) and energies.min() <= 0:
        raise ValueError(f"{path}: '{ENERGY_KEY}' must be finite and positive (MeV), found {energies.min():.4g}")
    check_values(path, SHOWER_KEY, showers, negative="voxel energies")
    _check_units(path, energies, showers)
    return ShowerSample(energies, showers, attrs)


def _check_units(path, energies: np.ndarray, showers: np.ndarray) -> None:
    totals = showers.sum(axis=1, dtype=np.float64)
    nonzero = totals > 0
    if not np.any(nonzero):
        return
    ratio = float(np.median(totals[nonzero] / energies[nonzero, 0]))
    low, high = DEPOSIT_RATIO_RANGE
    if not low <= ratio <= high:
        raise ValueError(f"{path}: '{SHOWER_KEY}' sum to {ratio:.3g} x '{ENERGY_KEY}' (median); both must be in MeV")
