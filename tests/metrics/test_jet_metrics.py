"""Behaviour of the jet metrics (hepgen.metrics.jets); jetnet's own numbers: test_jetnet_known_answers.py.

Toy jets in the JetNet layout: a Gaussian cloud in (η_rel, φ_rel) with Dirichlet pT
fractions and 10-30 real particles. Samples are small (300 jets, 3 resamples) to keep
the tests fast; the full metrics (EFPs, FPD, KPD) are computed once per module.
"""

import sys

import numpy as np
import pytest

pytest.importorskip("scipy", reason="the jet metrics need the eval extra (scipy)")

from hepgen.metrics.jets import jet_metrics

N = 300
P = 30
FAST = dict(batches=3, fpd_batches=5, kpd_batches=10, seed=0)


def toy_jets(n=N, seed=0, width=0.1):
    rng = np.random.default_rng(seed)
    n_real = rng.integers(10, P + 1, n)
    mask = (np.arange(P)[None] < n_real[:, None]).astype(np.float64)
    pt = rng.dirichlet(np.full(P, 0.7), size=n)
    pt = -np.sort(-pt * mask, axis=1)  # pT-ordered, real particles first
    eta, phi = rng.normal(0, width, (n, P)), rng.normal(0, width, (n, P))
    particles = np.stack([eta, phi, pt, mask], -1) * mask[..., None]
    jets = np.stack([rng.normal(1000, 50, n), rng.normal(0, 1, n), rng.normal(175, 15, n), n_real], -1)
    return particles, jets


@pytest.fixture(scope="module")
def reference():
    return toy_jets(seed=1)


@pytest.fixture(scope="module")
def identical(reference):
    return jet_metrics(reference, reference, **FAST)


@pytest.fixture(scope="module")
def wider(reference):
    # Every constituent 1.5× further from the axis: the relative mass grows by 1.5.
    particles, jets = reference
    wide = particles.copy()
    wide[..., :2] *= 1.5
    return jet_metrics((wide, jets), reference, **FAST)


@pytest.fixture(scope="module")
def independent(reference):
    # Two independent samples of one distribution: the floor every W1 sits on.
    return jet_metrics(toy_jets(seed=2), reference, fpd_kpd=False, **FAST)


def test_identical_samples_give_zero_within_errors(identical, independent):
    # FPD (extrapolated to infinite samples) and KPD (unbiased) sit at 0 within errors.
    for name in ("fpd", "kpd"):
        m = identical[name]
        assert abs(m.value) < 3 * m.error + 1e-6, (name, m)
    # W1 is positive: resampling with replacement leaves a floor of order spread/sqrt(n)
    # under it even for identical inputs, so "zero" means: no larger than the W1 of two
    # independent samples of the same distribution.
    for name in ("w1m", "w1p", "w1efp", "w1p_pt_rel", "w1_jet_mass"):
        m, floor = identical[name], independent[name]
        assert 0 <= m.value < floor.value + 3 * floor.error, (name, m, floor)


def test_wider_jets_raise_mass_efp_and_fpd(identical, wider):
    for name in ("w1m", "w1efp", "w1p_eta_rel", "w1p_phi_rel"):
        floor = identical[name].value + 3 * identical[name].error
        assert wider[name].value > 5 * floor, (name, wider[name], identical[name])
    assert wider["fpd"].value > 3 * wider["fpd"].error
    # KPD's spread over 300-jet batches is wide; the shift still stands far above the
    # identical-sample value.
    assert wider["kpd"].value > max(wider["kpd"].error, identical["kpd"].value + 10 * identical["kpd"].error)
    # pT fractions and the stored jet features were not touched.
    assert wider["w1p_pt_rel"].value < identical["w1p_pt_rel"].value + 4 * identical["w1p_pt_rel"].error + 1e-9
    assert wider["w1_jet_mass"].value == pytest.approx(identical["w1_jet_mass"].value)


def test_shifted_particle_pt_raises_w1p_pt_only(reference):
    particles, jets = reference
    shifted = particles.copy()
    shifted[..., 2] *= 1.2
    same = jet_metrics(reference, reference, efp=False, fpd_kpd=False, **FAST)
    moved = jet_metrics((shifted, jets), reference, efp=False, fpd_kpd=False, **FAST)
    assert moved["w1p_pt_rel"].value > 5 * (same["w1p_pt_rel"].value + 3 * same["w1p_pt_rel"].error)
    assert moved["w1p_eta_rel"].value == pytest.approx(same["w1p_eta_rel"].value)
    assert "w1efp" not in moved.metrics and "fpd" not in moved.metrics


def test_smeared_stored_mass_shows_in_w1_jet_mass_not_w1m(reference):
    particles, jets = reference
    smeared = jets.copy()
    smeared[:, 2] += np.random.default_rng(5).normal(0, 30, len(jets))
    same = jet_metrics(reference, reference, efp=False, fpd_kpd=False, **FAST)
    moved = jet_metrics((particles, smeared), reference, efp=False, fpd_kpd=False, **FAST)
    assert moved["w1_jet_mass"].value > 3 * (same["w1_jet_mass"].value + 3 * same["w1_jet_mass"].error)
    assert moved["w1m"].value == pytest.approx(same["w1m"].value)


def test_padding_content_is_ignored(reference):
    # A generator may leave anything in padded slots; the metrics see JetNet's zeros.
    particles, jets = reference
    noisy = particles.copy()
    pad = noisy[..., 3] == 0
    noisy[pad, :3] = 7.0
    a = jet_metrics(reference, reference, efp=False, fpd_kpd=False, **FAST)
    b = jet_metrics((noisy, jets), reference, efp=False, fpd_kpd=False, **FAST)
    assert b["w1m"].value == pytest.approx(a["w1m"].value)
    assert b["w1p"].value == pytest.approx(a["w1p"].value)


def test_results_are_reproducible_and_serialisable(reference):
    a = jet_metrics(reference, reference, efp=False, fpd_kpd=False, **FAST)
    b = jet_metrics(reference, reference, efp=False, fpd_kpd=False, **FAST)
    assert a.to_dict() == b.to_dict()
    assert "W1M" in a.markdown_table()


@pytest.mark.parametrize(
    "bad, match",
    [
        (np.zeros((10, 30, 3)), r"generated: expected particles of shape \(N, P, 4\)"),
        (np.full((10, 30, 4), 0.5), r"generated: particles\[\.\.\., 3\] must be a 0/1 mask"),
        (np.zeros((1, 30, 4)), "generated: need at least 2 jets"),
    ],
)
def test_bad_input_names_the_argument(reference, bad, match):
    with pytest.raises(ValueError, match=match):
        jet_metrics(bad, reference, efp=False, fpd_kpd=False)


def test_bad_jets_shape(reference):
    particles, jets = reference
    with pytest.raises(ValueError, match=r"reference: expected jets of shape"):
        jet_metrics(reference, (particles, jets[:, :3]), efp=False, fpd_kpd=False)


def test_missing_scipy_names_the_extra(monkeypatch, reference):
    monkeypatch.setitem(sys.modules, "scipy.stats", None)
    with pytest.raises(ImportError, match=r"hepgen\[eval\]"):
        jet_metrics(reference, reference)


def test_efp_jobs_is_deprecated_and_changes_nothing(reference):
    # efp_jobs was energyflow's process count; the EFPs now run in this process.
    fast = dict(FAST, fpd_kpd=False)
    with pytest.warns(DeprecationWarning, match="efp_jobs"):
        parallel = jet_metrics(reference, reference, efp_jobs=4, **fast)
    assert parallel["w1efp"] == jet_metrics(reference, reference, **fast)["w1efp"]
