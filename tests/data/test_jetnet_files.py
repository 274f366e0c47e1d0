"""JetNet-layout jets: construction, file round trip, reader checks, feature conversion."""

import h5py
import numpy as np
import pytest

from hepgen.data import JetSample, read_jets, write_jets
from hepgen.data.jetnet_features import jetnet_arrays


def make_sample(rng, n=7, p=5):
    particles = rng.normal(size=(n, p, 4)).astype(np.float32)
    counts = rng.integers(1, p + 1, size=n)
    mask = np.arange(p)[None, :] < counts[:, None]
    particles[..., 3] = mask
    particles[~mask] = 0
    jets = np.stack([rng.uniform(800, 1200, n), rng.normal(size=n), rng.uniform(10, 250, n), counts], 1)
    return JetSample(particles, jets, {"process": "top"})


def test_round_trip(tmp_path, rng):
    sample = make_sample(rng)
    path = write_jets(tmp_path / "jets.h5", sample, attrs={"seed": 4})
    back = read_jets(path)
    np.testing.assert_array_equal(back.particles, sample.particles)
    np.testing.assert_array_equal(back.jets, sample.jets)
    assert back.attrs["process"] == "top" and back.attrs["seed"] == 4 and back.attrs["energy_unit"] == "GeV"
    assert back.particles.dtype == np.float32 and back.max_particles == 5
    np.testing.assert_array_equal(back.mask.sum(1), sample.jets[:, 3])


def test_reads_a_bare_jetnet_file(tmp_path, rng):
    # JetNet's own files: the two datasets, no attributes, float64 is fine too.
    sample = make_sample(rng)
    path = tmp_path / "jetnet.hdf5"
    with h5py.File(path, "w") as f:
        f["particle_features"] = sample.particles.astype(np.float64)
        f["jet_features"] = sample.jets.astype(np.float64)
    back = read_jets(path)
    np.testing.assert_allclose(back.jets, sample.jets)


def write_raw(path, **datasets):
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f[key] = value
    return path


@pytest.mark.parametrize(
    "datasets, message",
    [
        ({"particle_features": np.zeros((3, 5, 4))}, "missing dataset 'jet_features'"),
        (
            {"particle_features": np.zeros((3, 5, 3)), "jet_features": np.zeros((3, 4))},
            "'particle_features' has shape",
        ),
        ({"particle_features": np.zeros((3, 5, 4)), "jet_features": np.zeros((2, 4))}, r"expected \(3, 4\)"),
        ({"particle_features": np.full((3, 5, 4), 0.5), "jet_features": np.zeros((3, 4))}, "0/1 mask"),
        ({"particle_features": np.zeros((3, 5, 4)), "jet_features": np.full((3, 4), 1e6)}, "expected GeV"),
    ],
)
def test_reader_errors_name_file_and_key(tmp_path, datasets, message):
    path = write_raw(tmp_path / "bad.h5", **datasets)
    with pytest.raises(ValueError, match=message) as err:
        read_jets(path)
    assert "bad.h5" in str(err.value)


def test_unit_attribute_mismatch(tmp_path, rng):
    path = write_jets(tmp_path / "jets.h5", make_sample(rng))
    with h5py.File(path, "a") as f:
        f["jet_features"].attrs["unit"] = "MeV"
    with pytest.raises(ValueError, match="'jet_features' is in MeV, expected GeV"):
        read_jets(path)


def test_missing_file_and_not_hdf5(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.h5"):
        read_jets(tmp_path / "nope.h5")
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match="text.h5: not a readable HDF5 file"):
        read_jets(tmp_path / "text.h5")


def test_sample_checks_shapes():
    with pytest.raises(ValueError, match="particles"):
        JetSample(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="jets"):
        JetSample(np.zeros((2, 3, 4)), np.zeros((3, 4)))


def p4(pt, eta, phi, m=0.0):
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    return np.array([px, py, pz, np.sqrt(px**2 + py**2 + pz**2 + m**2)])


def test_jetnet_arrays_relative_features_ordering_and_padding():
    # Jet 0: three constituents given out of pT order, straddling phi = pi; jet 1: one.
    constituents = np.array([p4(10, 0.1, 3.1), p4(300, 0.0, -3.1), p4(50, -0.2, 3.0), p4(40, 1.0, 0.5)])
    counts = np.array([3, 1])
    jets = np.array([constituents[:3].sum(0), constituents[3]])
    particles, features = jetnet_arrays(jets, constituents, counts, max_particles=2)
    assert particles.shape == (2, 2, 4) and features.shape == (2, 4)
    jet_pt = np.hypot(*jets[0, :2])
    np.testing.assert_allclose(particles[0, :, 2], [300 / jet_pt, 50 / jet_pt], rtol=1e-5)
    # phi_rel is wrapped: constituents at -3.1 and 3.0 are close to the jet axis near +-pi.
    assert np.all(np.abs(particles[0, :, 1]) < 0.3)
    np.testing.assert_array_equal(particles[:, :, 3], [[1, 1], [1, 0]])
    np.testing.assert_array_equal(particles[1, 1], 0)
    np.testing.assert_allclose(particles[1, 0, :3], [0, 0, 1], atol=1e-6)
    # n_particles counts the kept constituents; mass is the whole jet's.
    np.testing.assert_array_equal(features[:, 3], [2, 1])
    m2 = jets[0, 3] ** 2 - np.sum(jets[0, :3] ** 2)
    np.testing.assert_allclose(features[0, 2], np.sqrt(m2), rtol=1e-4)
    np.testing.assert_allclose(features[1, :2], [40, 1.0], rtol=1e-5)
