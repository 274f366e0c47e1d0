"""Pythia 8 + FastJet jets: physics sanity on small samples, reproducibility, files."""

import numpy as np
import pytest

pytest.importorskip("pythia8mc")
pytest.importorskip("fastjet")

from hepgen.data import generate_jets, read_jets
from hepgen.data.pythia_jets import PythiaJets


@pytest.fixture(scope="module")
def top_jets():
    return PythiaJets(process="top", max_particles=30)(1234, 60)


@pytest.fixture(scope="module")
def qcd_jets():
    return PythiaJets(process="qcd", max_particles=30)(1234, 60)


def test_top_jet_mass_peaks_near_the_top_mass(top_jets):
    mass = top_jets["jet_features"][:, 2]
    # Measured here on 1500 jets: median 185 GeV, 64 % in 150-200 GeV (the underlying
    # event adds a little mass); W-only and b-only jets make a tail below.
    assert 160 < np.median(mass) < 200
    assert np.mean((mass > 150) & (mass < 210)) > 0.4


def test_qcd_jets_are_lighter(top_jets, qcd_jets):
    top, qcd = top_jets["jet_features"][:, 2], qcd_jets["jet_features"][:, 2]
    assert np.median(qcd) < np.median(top) - 30
    assert np.mean((qcd > 150) & (qcd < 210)) < np.mean((top > 150) & (top < 210))


@pytest.mark.parametrize("name", ["top_jets", "qcd_jets"])
def test_jets_in_window_and_jetnet_conventions(request, name):
    out = request.getfixturevalue(name)
    particles, jets = out["particle_features"], out["jet_features"]
    assert particles.shape == (60, 30, 4) and jets.shape == (60, 4)
    assert np.all((jets[:, 0] > 800) & (jets[:, 0] < 1200)) and np.all(np.abs(jets[:, 1]) < 2.5)
    mask = particles[..., 3]
    np.testing.assert_array_equal(mask.sum(1), jets[:, 3])
    # Constituents sorted by pT, carrying most of the jet's pT, within R = 0.8 of the axis:
    # FastJet clusters in rapidity, JetNet's eta_rel is in pseudorapidity, which differs
    # for soft massive hadrons (a 0.5 GeV proton), so only hard constituents are checked.
    pt_rel = particles[..., 2]
    assert np.all(np.diff(pt_rel, axis=1) <= 1e-7)
    delta_r = np.hypot(particles[..., 0], particles[..., 1])
    assert np.all(delta_r[pt_rel > 0.01] < 0.82) and np.quantile(delta_r[mask > 0], 0.95) < 0.8
    assert 0.6 < np.median(pt_rel.sum(1)) <= 1.0


def test_same_seed_same_jets_different_seed_different():
    task = PythiaJets(process="qcd")
    a, b, c = task(7, 5), task(7, 5), task(8, 5)
    np.testing.assert_array_equal(a["particle_features"], b["particle_features"])
    assert not np.array_equal(a["jet_features"], c["jet_features"])


def test_file_is_the_same_for_one_or_two_workers(tmp_path):
    one = read_jets(generate_jets(tmp_path / "a.h5", 12, process="top", particles=150, seed=3, chunk_size=6))
    two = read_jets(generate_jets(tmp_path / "b.h5", 12, process="top", particles=150, seed=3, workers=2, chunk_size=6))
    np.testing.assert_array_equal(one.particles, two.particles)
    assert one.particles.shape == (12, 150, 4)
    attrs = one.attrs
    assert attrs["process"] == "top" and attrs["seed"] == 3 and attrs["complete"]
    assert "Top:gg2ttbar = on" in attrs["pythia_settings"] and attrs["pythia8mc_version"]
    assert attrs["jet_radius"] == 0.8
