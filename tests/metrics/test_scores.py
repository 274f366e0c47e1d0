"""Scores, weights, separation power and calibration on hand-computable inputs."""

import math

import numpy as np
import pytest

from hepgen.metrics.calibration import make_calibration, reliability_curve
from hepgen.metrics.classify import HeldOutResult
from hepgen.metrics.scores import auc, auc_null_std, balanced_bce, jsd
from hepgen.metrics.separation import common_bins, histogram, separation_power
from hepgen.metrics.weights import (
    tail_fractions,
    weight_slice_labels,
    weight_slices,
    weights_from_probabilities,
)


def test_auc_perfect_reversed_and_tied():
    labels = np.array([0, 0, 1, 1])
    assert auc([0.1, 0.2, 0.8, 0.9], labels) == 1.0
    assert auc([0.9, 0.8, 0.2, 0.1], labels) == 0.0
    assert auc([0.5, 0.5, 0.5, 0.5], labels) == 0.5


def test_auc_null_std_matches_mann_whitney():
    # n1 = n2 = 1000: sqrt(2001 / (12 · 10⁶)).
    assert auc_null_std(1000, 1000) == pytest.approx(math.sqrt(2001 / 12e6))


def test_jsd_is_zero_for_uninformative_and_one_for_perfect_classifier():
    labels = np.array([0] * 30 + [1] * 10)  # unbalanced on purpose: BCE is balanced
    assert balanced_bce(np.full(40, 0.5), labels) == pytest.approx(math.log(2))
    assert jsd(np.full(40, 0.5), labels) == pytest.approx(0.0, abs=1e-12)
    assert jsd(labels.astype(float), labels) == pytest.approx(1.0, abs=1e-5)


def test_jsd_of_optimal_classifier_is_the_true_jsd():
    # Two discrete distributions on 3 points; D* = p/(p+q) gives JSD(p, q) in bits.
    p, q = np.array([0.5, 0.3, 0.2]), np.array([0.2, 0.3, 0.5])
    m = (p + q) / 2
    true_jsd = 0.5 * np.sum(p * np.log2(p / m)) + 0.5 * np.sum(q * np.log2(q / m))
    # Samples with exact frequencies: 1000 of each class.
    counts_p, counts_q = (p * 1000).astype(int), (q * 1000).astype(int)
    d_star = p / (p + q)
    probabilities = np.concatenate([np.repeat(d_star, counts_p), np.repeat(d_star, counts_q)])
    labels = np.concatenate([np.ones(1000), np.zeros(1000)]).astype(int)
    assert jsd(probabilities, labels) == pytest.approx(true_jsd, rel=1e-9)


def test_weights_and_tails():
    w = weights_from_probabilities([0.5, 0.8, 0.2, 1.0, 0.0])
    assert w[:3] == pytest.approx([1.0, 4.0, 0.25])
    assert np.isfinite(w).all() and w[3] > 1e6 and w[4] < 1e-6
    fractions = tail_fractions([0.1, 0.4, 1.0, 1.0, 3.0, 20.0], thresholds=(2, 10))
    assert fractions == {
        "w<0.5": pytest.approx(2 / 6),
        "w>2": pytest.approx(2 / 6),
        "w<0.1": 0.0,
        "w>10": pytest.approx(1 / 6),
    }
    assert list(weight_slices([0.1, 0.5, 1.9, 2.0, 5.0])) == [0, 1, 1, 2, 2]
    assert weight_slice_labels() == ["w<0.5", "0.5≤w<2", "w≥2"]
    with pytest.raises(ValueError, match="probabilities"):
        weights_from_probabilities([0.5, 1.5])


def test_held_out_probabilities_invert_the_weights():
    # D = w / (1 + w): the classifier output each held-out weight came from.
    held = HeldOutResult(
        truth_rows=np.array([0, 1]),
        generated_rows=np.array([0, 1]),
        truth_weights=np.array([1.0, 4.0]),
        generated_weights=np.array([0.25, 0.0]),
        auc=0.5,
        jsd=0.0,
        auc_null_std=0.0,
        groups=[],
    )
    assert held.truth_probabilities == pytest.approx([0.5, 0.8])
    assert held.generated_probabilities == pytest.approx([0.2, 0.0])


def test_separation_power_known_values():
    assert separation_power([1, 2, 3], [2, 4, 6]) == pytest.approx(0.0)  # same shape
    assert separation_power([1, 0], [0, 1]) == pytest.approx(1.0)  # disjoint
    # h1 = (0.5, 0.5), h2 = (1, 0): ½ [(0.5)²/1.5 + (0.5)²/0.5] = 1/3.
    assert separation_power([1, 1], [1, 0]) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="h2"):
        separation_power([1, 2], [1, 2, 3])


def test_bins_and_overflow():
    edges = common_bins(np.linspace(0, 1, 1001), n_bins=10, coverage=1.0)
    assert edges[0] == pytest.approx(0) and edges[-1] == pytest.approx(1) and len(edges) == 11
    counts = histogram([-5.0, 0.05, 0.5, 7.0], edges)
    assert counts[0] == 2 and counts[-1] == 1 and counts.sum() == 4  # overflow kept
    log_edges = common_bins(10.0 ** np.linspace(0, 3, 100), n_bins=3, log=True, coverage=1.0)
    assert log_edges == pytest.approx([1, 10, 100, 1000])


def test_temperature_calibration_recovers_the_temperature():
    rng = np.random.default_rng(0)
    z = rng.normal(0, 2, 40000)
    true_temperature = 2.5
    labels = (rng.uniform(size=z.size) < 1 / (1 + np.exp(-z / true_temperature))).astype(int)
    raw = 1 / (1 + np.exp(-z))  # over-confident by a factor 2.5 in the logit
    calibration = make_calibration("temperature").fit(raw, labels)
    # 40000 samples: the fitted temperature is known to a few per cent.
    assert calibration.temperature == pytest.approx(true_temperature, rel=0.05)
    predicted, observed, _ = reliability_curve(calibration(raw), labels, n_bins=10)
    assert np.max(np.abs(predicted - observed)) < 0.05


def test_isotonic_calibration_is_monotone_and_fixes_a_distortion():
    rng = np.random.default_rng(1)
    true_p = rng.uniform(0, 1, 40000)
    labels = (rng.uniform(size=true_p.size) < true_p).astype(int)
    raw = true_p**3  # monotone distortion
    calibration = make_calibration("isotonic").fit(raw, labels)
    grid = np.linspace(0, 1, 101)
    assert np.all(np.diff(calibration(grid)) >= 0)
    predicted, observed, _ = reliability_curve(calibration(raw), labels, n_bins=10)
    assert np.max(np.abs(predicted - observed)) < 0.05
    with pytest.raises(ValueError, match="calibration"):
        make_calibration("platt")


def test_separation_floor_matches_samples_of_one_distribution():
    from hepgen.metrics.evaluate import separation_floor

    rng = np.random.default_rng(5)
    edges = np.linspace(-3, 3, 31)
    powers = [
        separation_power(histogram(rng.normal(size=2000), edges), histogram(rng.normal(size=3000), edges))
        for _ in range(200)
    ]
    # 200 repetitions: the mean is known to a few per cent; the formula neglects the
    # sparsely filled outer bins, hence 15%.
    assert np.mean(powers) == pytest.approx(separation_floor(30, 2000, 3000), rel=0.15)
