"""Bad input: clear errors naming what is wrong, raised before any training."""

import numpy as np
import pytest
from toys import photon_showers, top_jets, z_events

from hepgen.metrics.classify import InputGroup, classifier_weights, classify
from hepgen.metrics.evaluate import evaluate
from hepgen.metrics.training import ClassifierConfig

TINY = ClassifierConfig(hidden_layers=1, hidden_units=8, epochs=1, threads=1)


def test_nan_in_features_is_an_error():
    x = np.zeros((100, 2))
    x[17, 1] = np.nan
    with pytest.raises(ValueError, match=r"truth: expected finite values, found 1 NaN.*\(17, 1\)"):
        classifier_weights(x, np.zeros((100, 2)), config=TINY)


def test_nan_in_a_sample_is_an_error():
    rng = np.random.default_rng(0)
    events = z_events(200, rng)
    events.jets[3, 0, 1] = np.nan
    with pytest.raises(ValueError, match="jets: expected finite values"):
        evaluate(events, z_events(200, rng), "events", config=TINY)


def test_mismatched_feature_counts_are_an_error():
    with pytest.raises(ValueError, match="mismatched feature sets: truth has 2 features, generated 3"):
        classifier_weights(np.zeros((100, 2)), np.zeros((100, 3)), config=TINY)


def test_mismatched_groups_are_an_error():
    rows = np.arange(100)
    truth = [InputGroup("all", ("a", "b"), np.zeros((100, 2)), rows)]
    generated = [InputGroup("all", ("a", "c"), np.zeros((100, 2)), rows)]
    with pytest.raises(ValueError, match="mismatched feature sets in group 'all'"):
        classify(truth, generated, 100, 100, config=TINY)


def test_mismatched_geometries_and_particle_slots_are_errors():
    rng = np.random.default_rng(1)
    showers = photon_showers(100, rng)
    cut = photon_showers(100, rng)
    cut.showers = cut.showers[:, :300]
    with pytest.raises(ValueError, match="truth showers have 368 voxels, generated 300"):
        evaluate(showers, cut, "showers", config=TINY)
    jets30, jets20 = top_jets(100, rng), top_jets(100, rng, n_slots=20)
    with pytest.raises(ValueError, match="30 particle slots, generated 20"):
        evaluate(jets30, jets20, "jets", config=TINY, particles=True)


def test_unknown_voxel_count_is_an_error():
    rng = np.random.default_rng(2)
    showers = photon_showers(100, rng)
    showers.showers = showers.showers[:, :300]
    with pytest.raises(ValueError, match="no known geometry has 300 voxels"):
        evaluate(showers, showers, "showers", config=TINY)


def test_too_few_samples_for_a_split_is_an_error():
    with pytest.raises(ValueError, match="generated: too few samples .* got 20, need at least 50"):
        classifier_weights(np.zeros((100, 2)), np.zeros((20, 2)), config=TINY)
    rng = np.random.default_rng(3)
    events = z_events(120, rng)  # ~72/36/12 per multiplicity: only one group reaches 50
    few = z_events(120, rng)
    few.n_jets[:] = 3  # every generated event in a group the truth hardly has
    with pytest.raises(ValueError, match="no group has at least 50 samples in both"):
        evaluate(events, few, "events", config=TINY)


def test_bad_settings_are_errors():
    x = np.zeros((100, 2))
    with pytest.raises(ValueError, match="calibration"):
        classifier_weights(x, x, config=TINY, calibration="platt")
    with pytest.raises(ValueError, match="test_fraction"):
        classifier_weights(x, x, config=TINY, test_fraction=0.0)
    with pytest.raises(ValueError, match="hidden_units"):
        ClassifierConfig(hidden_units=0)
    with pytest.raises(ValueError, match="kind"):
        evaluate(x, x, "photons")
    with pytest.raises(ValueError, match="particles: only for kind 'jets'"):
        evaluate(
            z_events(100, np.random.default_rng(0)), z_events(100, np.random.default_rng(1)), "events", particles=True
        )


def test_multiplicity_groups_and_count_ratios():
    rng = np.random.default_rng(4)
    truth, generated = z_events(3000, rng), z_events(3000, rng)
    generated.n_jets[generated.n_jets == 3] = 2  # the generator never makes 3 jets
    generated.jets[:, 2] = 0
    held = evaluate(truth, generated, "events", config=TINY).held_out
    groups = {g.name: g for g in held.groups}
    assert groups["3 jets"].classified is False and groups["3 jets"].note == "only in the truth sample"
    assert np.isinf(groups["3 jets"].count_ratio)
    # Truth 3-jet events get the largest weight; generated 2-jet events are too many by
    # (0.3)/(0.3 + 0.1) ≈ 0.75 (counted, not learned, up to the classifier's factor).
    three = truth.n_jets[held.truth_rows] == 3
    assert np.all(held.truth_weights[three] > 1e6)
    assert groups["2 jets"].count_ratio == pytest.approx(0.75, abs=0.1)
