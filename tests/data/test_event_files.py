"""Z+jets events: file round trip, reader checks, flat vectors and back."""

import h5py
import numpy as np
import pytest

from hepgen.data import (
    EventSample,
    absolute_vectors,
    event_vectors,
    events_from_vectors,
    read_events,
    vector_columns,
    write_events,
)


def test_round_trip(tmp_path, rng, make_events):
    sample = make_events(rng)
    back = read_events(write_events(tmp_path / "ev.h5", sample, attrs={"seed": 2}))
    np.testing.assert_array_equal(back.muons, sample.muons)
    np.testing.assert_array_equal(back.jets, sample.jets)
    np.testing.assert_array_equal(back.n_jets, sample.n_jets)
    assert back.attrs["seed"] == 2


@pytest.mark.parametrize("n_jets, dims", [(1, 9), (2, 13), (3, 17)])
def test_vector_dimensions(rng, make_events, n_jets, dims):
    sample = make_events(rng)
    vectors = event_vectors(sample, n_jets)
    assert vectors.shape == ((sample.n_jets == n_jets).sum(), dims)
    assert len(vector_columns(n_jets)) == dims
    # Relative phi: the leading muon's phi is gone, the others lie in (-pi, pi].
    phi = [i for i, name in enumerate(vector_columns(n_jets)) if name.endswith("_phi")]
    assert np.all(np.abs(vectors[:, phi]) <= np.pi)


@pytest.mark.parametrize("n_jets", [1, 2, 3])
def test_vectors_back_to_events(rng, make_events, n_jets):
    sample = make_events(rng)
    chosen = sample.n_jets == n_jets
    vectors = event_vectors(sample, n_jets)
    back = events_from_vectors(vectors, n_jets, phi_leading=sample.muons[chosen, 0, 2])
    np.testing.assert_allclose(back.muons, sample.muons[chosen], atol=2e-6)
    np.testing.assert_allclose(back.jets, sample.jets[chosen], atol=2e-6)
    assert np.all(back.n_jets == n_jets)
    np.testing.assert_allclose(absolute_vectors(back, n_jets), absolute_vectors(sample, n_jets), atol=2e-6)


def test_dimuon_mass_of_back_to_back_muons():
    muons = np.array([[[45.0, 0.0, 0.0, 0.0], [45.0, 0.0, np.pi, 0.0]]])
    sample = EventSample(muons, np.zeros((1, 3, 4)), [0])
    np.testing.assert_allclose(sample.dimuon_mass(), [90.0], rtol=1e-6)


def test_reader_errors(tmp_path):
    path = tmp_path / "bad.h5"
    with h5py.File(path, "w") as f:
        f["muons"] = np.zeros((2, 2, 4))
        f["jets"] = np.zeros((2, 2, 4))
        f["n_jets"] = np.zeros(2, int)
    with pytest.raises(ValueError, match=r"bad.h5: 'jets' has shape \(2, 2, 4\), expected \(2, 3, 4\)"):
        read_events(path)
    with h5py.File(path, "w") as f:
        f["muons"] = np.zeros((2, 2, 4))
        f["jets"] = np.zeros((2, 3, 4))
        f["n_jets"] = np.array([1, 5])
    with pytest.raises(ValueError, match="'n_jets' must be in 0..3"):
        read_events(path)
    with h5py.File(path, "w") as f:
        f["muons"] = np.full((2, 2, 4), 4.5e4)
        f["jets"] = np.zeros((2, 3, 4))
        f["n_jets"] = np.array([1, 1])
    with pytest.raises(ValueError, match="'muons' pT reaches .* expected GeV"):
        read_events(path)


def test_bad_n_jets_argument(rng, make_events):
    with pytest.raises(ValueError, match="n_jets"):
        event_vectors(make_events(rng), 4)
