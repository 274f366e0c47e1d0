"""Pythia 8 Z(-> mu mu) + jets: physics sanity on a small sample, layout, preprocessing."""

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from hepgen.data import EventSample, event_preprocessing, event_vectors, generate_events, read_events
from hepgen.data.pythia_events import PythiaZJets


@pytest.fixture(scope="module")
def events():
    out = PythiaZJets()(99, 150)
    return EventSample(out["muons"], out["jets"], out["n_jets"])


def test_dimuon_mass_peaks_at_the_z(events):
    mass = events.dimuon_mass()
    # Measured here on 1000 events: median 90.7 GeV, 5-95 % range 72-98 GeV (the low
    # tail is photon radiation off the muons).
    assert 87 < np.median(mass) < 94
    assert np.mean(np.abs(mass - 91.2) < 10) > 0.7


def test_jets_and_muons_follow_the_layout(events):
    assert set(np.unique(events.n_jets)) <= {1, 2, 3} and np.mean(events.n_jets == 1) > 0.4
    present = np.arange(3)[None, :] < events.n_jets[:, None]
    assert np.all(events.jets[present][:, 0] > 20) and np.all(events.jets[~present] == 0)
    assert np.all(np.abs(events.jets[present][:, 1]) < 5)
    assert np.all(np.diff(events.jets[:, :, 0], axis=1)[present[:, 1:]] <= 0)  # pT ordered
    assert np.all(events.muons[:, 0, 0] >= events.muons[:, 1, 0])
    np.testing.assert_allclose(events.muons[:, :, 3], 0.10566, atol=1e-3)


def test_preprocessing_round_trips_on_generated_events(events):
    for n_jets in (1, 2):
        vectors = event_vectors(events, n_jets).astype(np.float64)
        chain = event_preprocessing(n_jets).fit(vectors)
        np.testing.assert_allclose(chain.inverse(chain.forward(vectors)), vectors, rtol=1e-7, atol=1e-6)


def test_generated_file_reads_back(tmp_path):
    path = generate_events(tmp_path / "z.h5", 20, seed=4, chunk_size=10)
    sample = read_events(path)
    assert len(sample) == 20 and sample.attrs["complete"]
    assert "23:onIfAny = 13" in sample.attrs["pythia_settings"]
