"""Physics sanity of the GFlash-style parametrized photon showers."""

import numpy as np
import pytest

from hepgen.data import CaloGeometry, GFlashSimulator, generate_showers, read_showers


@pytest.fixture(scope="module")
def simulator():
    return GFlashSimulator()


def response(simulator, energy, n=400, seed=0):
    showers = simulator.simulate(np.full(n, energy), np.random.default_rng(seed))
    return showers, showers.sum(1) / energy


def test_total_energy_scales_and_resolution_improves(simulator):
    means, resolutions = [], []
    for energy in (1024.0, 16384.0, 262144.0):
        _, ratio = response(simulator, energy)
        means.append(ratio.mean())
        resolutions.append(ratio.std() / ratio.mean())
    # Deposit proportional to E (within 15 %), most of E contained...
    assert all(0.75 < m <= 1.0 for m in means)
    assert max(means) / min(means) < 1.15
    # ... and a relative resolution that falls with E, roughly as 1/sqrt(E) (x16 in E).
    assert resolutions[1] < 0.5 * resolutions[0] and resolutions[2] < 0.6 * resolutions[1]


def test_shower_moves_deeper_with_energy(simulator):
    g = simulator.geometry
    low, _ = response(simulator, 1024.0)
    high, _ = response(simulator, 1048576.0)

    def share(showers):
        return (g.layer_energies(showers) / showers.sum(1, keepdims=True)).mean(0)

    # Strips (layer 1) dominate less, the back (3) and tile (12) get more at high energy.
    assert share(high)[1] < share(low)[1]
    assert share(high)[3] > share(low)[3] and share(high)[4] > share(low)[4]
    assert share(high)[2] > 0.6


def test_layer_energies_fluctuate_together(simulator):
    showers, _ = response(simulator, 65536.0, n=1000)
    layers = simulator.geometry.layer_energies(showers)
    # A late start moves energy from the strips to the back: anti-correlated.
    assert np.corrcoef(layers[:, 1], layers[:, 3])[0, 1] < -0.2


def test_lateral_profile_is_narrow_and_centred(simulator):
    g = simulator.geometry
    showers, _ = response(simulator, 65536.0)
    x, y = g.centers_of_energy(showers)
    wx, _ = g.widths(showers)
    assert np.abs(x[:, 2].mean()) < 1.0 and np.abs(y[:, 2].mean()) < 1.0
    assert 2.0 < np.median(wx[:, 2]) < 60.0
    # Most of the middle layer's energy within its innermost 30 mm.
    middle = g.layer_view(showers, 2).sum(1)
    inner = g.layers[2].r_centers < 30
    assert np.median(middle[:, inner].sum(1) / middle.sum(1)) > 0.7


def test_reproducible_and_validated(simulator):
    a = simulator.sample(20, np.random.default_rng(3))
    b = simulator.sample(20, np.random.default_rng(3))
    np.testing.assert_array_equal(a.showers, b.showers)
    assert set(np.unique(a.incident_energies)) <= {2.0**k for k in range(8, 23)}
    assert np.all(a.showers >= 0) and a.showers.shape == (20, 368)
    with pytest.raises(ValueError, match="incident_energies_mev"):
        simulator.simulate([10.0], np.random.default_rng(0))
    with pytest.raises(ValueError, match="depths_x0"):
        GFlashSimulator(depths_x0={0: (0, 1)})


def test_generated_file_reads_back(tmp_path):
    path = generate_showers(tmp_path / "showers.h5", 30, seed=5, chunk_size=8)
    sample = read_showers(path, CaloGeometry.photons())
    assert len(sample) == 30 and sample.attrs["complete"]
    assert "not Geant4" in sample.attrs["generator"]
