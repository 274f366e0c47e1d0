"""CaloChallenge-layout files: round trip, real-file layout, reader checks."""

import h5py
import numpy as np
import pytest

from hepgen.data import CaloGeometry, ShowerSample, read_showers, write_showers


def make_showers(rng, n=6, voxels=368):
    energies = rng.choice([256.0, 65536.0], size=(n, 1))
    showers = rng.exponential(1.0, (n, voxels)) * energies / voxels
    return ShowerSample(energies, showers)


def test_round_trip(tmp_path, rng):
    sample = make_showers(rng)
    back = read_showers(write_showers(tmp_path / "s.h5", sample), CaloGeometry.photons())
    np.testing.assert_array_equal(back.showers, sample.showers)
    np.testing.assert_array_equal(back.incident_energies, sample.incident_energies)
    assert back.attrs["energy_unit"] == "MeV"


def test_reads_a_file_written_like_the_challenge(tmp_path, rng):
    # The challenge's files: two float64 datasets, no attributes, pion binning.
    sample = make_showers(rng, voxels=533)
    path = tmp_path / "dataset_1_pions_1.hdf5"
    with h5py.File(path, "w") as f:
        f.create_dataset("incident_energies", data=sample.incident_energies.astype(np.float64))
        f.create_dataset("showers", data=sample.showers.astype(np.float64))
    back = read_showers(path, CaloGeometry.pions())
    np.testing.assert_allclose(back.showers, sample.showers, rtol=1e-6)
    assert back.showers.dtype == np.float32


def write_raw(path, energies, showers):
    with h5py.File(path, "w") as f:
        if energies is not None:
            f["incident_energies"] = energies
        f["showers"] = showers
    return path


def test_reader_errors_name_file_and_key(tmp_path, rng):
    sample = make_showers(rng)
    path = tmp_path / "bad.h5"
    write_raw(path, None, sample.showers)
    with pytest.raises(ValueError, match="bad.h5: missing dataset 'incident_energies'"):
        read_showers(path)
    write_raw(path, sample.incident_energies, sample.showers)
    with pytest.raises(ValueError, match=r"bad.h5: 'showers' has shape \(6, 368\), expected \(6, 533\)"):
        read_showers(path, CaloGeometry.pions())
    write_raw(path, sample.incident_energies[:, 0], sample.showers)
    with pytest.raises(ValueError, match=r"'incident_energies' has shape \(6,\), expected \(N, 1\)"):
        read_showers(path)
    write_raw(path, -sample.incident_energies, sample.showers)
    with pytest.raises(ValueError, match="'incident_energies' must be finite and positive"):
        read_showers(path)


def test_unit_mismatch_is_caught(tmp_path, rng):
    sample = make_showers(rng)
    # Incident energies in GeV next to showers in MeV: a factor 1000.
    path = write_raw(tmp_path / "gev.h5", sample.incident_energies / 1000, sample.showers)
    with pytest.raises(ValueError, match="gev.h5: 'showers' sum to .* both must be in MeV"):
        read_showers(path)
    path = write_showers(tmp_path / "attr.h5", sample)
    with h5py.File(path, "a") as f:
        f["showers"].attrs["unit"] = "GeV"
    with pytest.raises(ValueError, match="'showers' is in GeV, expected MeV"):
        read_showers(path)


def test_sample_shapes():
    with pytest.raises(ValueError, match="incident_energies"):
        ShowerSample(np.ones(3), np.zeros((3, 368)))
