"""Deliberate distortions of a sample: the weights must point at the distorted region.

The undistorted samples are physically shaped toys (toys.py) for events and jets, and
hepgen's GFlash-style simulator for showers: no real data can be fetched in CI.
Thresholds sit at about half the effect measured over three seeds (numbers in
docs/evaluation.md), far outside what an uninformative classifier gives (w ≈ 1).
"""

import numpy as np
from toys import Z_MASS, dimuon_mass, gflash_showers, scale_layer, select, top_jets, z_events

from hepgen.metrics.evaluate import evaluate


def test_smeared_dimuon_mass_peak_is_found(small_classifier):
    rng = np.random.default_rng(0)
    truth = z_events(20000, rng)
    generated = z_events(20000, rng, muon_pt_resolution=0.05)  # a too-wide Z peak
    evaluation = evaluate(truth, generated, "events", config=small_classifier, seed=0)
    held = evaluation.held_out
    assert [g.name for g in held.groups] == ["1 jet", "2 jets", "3 jets"]
    distance = np.abs(dimuon_mass(generated)[held.generated_rows] - Z_MASS)
    w = held.generated_weights
    # Generated events at the peak are too few (w > 1), in the shoulders too many (w < 1).
    # Measured: mean w 2.1 within 1 GeV, 0.52 at 4–8 GeV.
    assert w[distance < 1].mean() > 1.5
    assert w[(distance > 4) & (distance < 8)].mean() < 0.75
    # And the reweighted M_μμ histogram is much closer to truth than the generated one.
    sp = evaluation.separation["m_mumu"]
    assert sp["test_reweighted"] < 0.5 * sp["test"]


def test_cut_away_jet_pt_tail_is_found(small_classifier):
    rng = np.random.default_rng(1)
    truth = z_events(12000, rng)
    generated = z_events(12000, rng)
    cut = np.quantile(truth.jets[:, 0, 0], 0.9)
    generated = select(generated, generated.jets[:, 0, 0] < cut)  # leading-jet tail missing
    held = evaluate(truth, generated, "events", config=small_classifier, seed=1).held_out
    pt = truth.jets[held.truth_rows, 0, 0]
    w = held.truth_weights
    # Truth events beyond the cut have no generated counterpart: large weights
    # (median 8.5–19.5 measured). Well below the cut, the exact ratio is 0.9 (the
    # generator puts the missing 10% there).
    assert np.median(w[pt > 1.1 * cut]) > 4
    below = pt < np.quantile(truth.jets[:, 0, 0], 0.7)
    assert abs(np.median(w[below]) - 0.9) < 0.1


def test_smeared_jet_mass_is_found(small_classifier):
    rng = np.random.default_rng(2)
    truth = top_jets(6000, rng)
    generated = top_jets(6000, rng, mass_resolution=0.1)
    evaluation = evaluate(truth, generated, "jets", config=small_classifier, seed=2)
    held = evaluation.held_out
    distance = np.abs(generated.jets[held.generated_rows, 2] - 172.5)
    w = held.generated_weights
    assert w[distance < 5].mean() > 1.5  # measured 2.2
    assert w[distance > 20].mean() < 0.3  # measured 0.04–0.08
    # The separation power names the mass as the distorted observable.
    powers = {k: v["full"] for k, v in evaluation.separation.items()}
    assert max(powers, key=powers.get) == "mass"


def test_wrong_energy_scale_in_one_shower_layer_is_found(small_classifier):
    from hepgen.data.calo_geometry import CaloGeometry

    # hepgen's GFlash-style showers (a physics parametrisation, not Geant4), with layer 1
    # of the generated sample 25% too high.
    truth = gflash_showers(6000, seed=10)
    generated = scale_layer(gflash_showers(6000, seed=20), 1.25, layer=1)
    evaluation = evaluate(truth, generated, "showers", config=small_classifier, seed=0)
    held = evaluation.held_out
    energy = generated.incident_energies[held.generated_rows, 0]
    share = CaloGeometry.photons().layer_energies(generated.showers[held.generated_rows])[:, 1] / energy
    # Quartiles of the layer-1 share at each incident energy (the share depends on it).
    low, high = np.zeros(len(share), bool), np.zeros(len(share), bool)
    for e in np.unique(energy):
        at = energy == e
        q1, q3 = np.quantile(share[at], [0.25, 0.75])
        low |= at & (share < q1)
        high |= at & (share > q3)
    w = held.generated_weights
    # Showers with too much layer-1 energy are over-populated: measured median w
    # 0.15–0.19 in the top quartile against 0.65–1.31 in the bottom one (3 seeds).
    assert np.median(w[high]) < 0.5
    assert np.median(w[high]) < 0.5 * np.median(w[low])
    powers = {k: v["full"] for k, v in evaluation.separation.items()}
    layers = {k: v for k, v in powers.items() if k.startswith("e_layer")}
    assert max(layers, key=layers.get) == "e_layer1"
    # GFlash's E_tot/E_inc is narrow, so the extra layer-1 energy shows there most.
    assert max(powers, key=powers.get) == "e_ratio"
