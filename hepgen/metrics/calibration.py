"""Calibration of classifier outputs, so that D/(1 − D) is a density ratio and not just a score.

A network trained with a cross-entropy loss is calibrated only at its optimum; early
stopping, dropout and finite data leave it over- or under-confident. Calibration maps
held-out outputs to probabilities that match the observed truth fraction.

- ``temperature``: D' = σ(logit(D) / T), one parameter; keeps the ranking and smoothness.
- ``isotonic``: the monotone map that best fits the held-out labels (scikit-learn);
  more flexible, piecewise constant, so the weights come in discrete steps.
- ``none``: the raw outputs.

Fits weight both classes equally, as the classifier's training does.
"""

from __future__ import annotations

import numpy as np

from hepgen.metrics._checks import as_vector, balanced_sample_weights, check_labels
from hepgen.metrics.scores import PROBABILITY_EPS

CALIBRATIONS = ("isotonic", "temperature", "none")


class Calibration:
    """Map from raw classifier probabilities to calibrated ones; fit on held-out data."""

    method = "none"

    def fit(self, probabilities, labels) -> Calibration:
        return self

    def __call__(self, probabilities) -> np.ndarray:
        return np.clip(as_vector(probabilities, "probabilities"), 0.0, 1.0)

    def describe(self) -> dict:
        return {"method": self.method}


class TemperatureCalibration(Calibration):
    """D' = σ(logit(D) / T) with T fitted by minimising the balanced cross-entropy."""

    method = "temperature"

    def __init__(self):
        self.temperature = 1.0

    def fit(self, probabilities, labels):
        z = _logit(as_vector(probabilities, "probabilities"))
        y = check_labels(labels)
        self.temperature = 1.0 / _fit_inverse_temperature(z, y, balanced_sample_weights(y))
        return self

    def __call__(self, probabilities):
        z = _logit(as_vector(probabilities, "probabilities"))
        return _sigmoid(z / self.temperature)

    def describe(self):
        return {"method": self.method, "temperature": float(self.temperature)}


class IsotonicCalibration(Calibration):
    """Monotone non-decreasing map fitted to the held-out labels (scikit-learn)."""

    method = "isotonic"

    def __init__(self):
        self._regression = None

    def fit(self, probabilities, labels):
        from sklearn.isotonic import IsotonicRegression

        p = as_vector(probabilities, "probabilities")
        y = check_labels(labels)
        regression = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        regression.fit(p, y, sample_weight=balanced_sample_weights(y))
        self._regression = regression
        return self

    def __call__(self, probabilities):
        if self._regression is None:
            raise RuntimeError("IsotonicCalibration: call fit() before applying it")
        return np.asarray(self._regression.predict(as_vector(probabilities, "probabilities")))

    def describe(self):
        n_steps = 0 if self._regression is None else len(self._regression.X_thresholds_)
        return {"method": self.method, "n_thresholds": int(n_steps)}


def make_calibration(method: str) -> Calibration:
    """A new, unfitted calibration: ``"isotonic"``, ``"temperature"`` or ``"none"``."""
    if not isinstance(method, str):
        raise TypeError(f"calibration: expected a string, got {type(method).__name__}")
    if method == "isotonic":
        return IsotonicCalibration()
    if method == "temperature":
        return TemperatureCalibration()
    if method == "none":
        return Calibration()
    raise ValueError(f"calibration: expected one of {CALIBRATIONS}, got {method!r}")


def reliability_curve(probabilities, labels, n_bins: int = 20):
    """Calibration curve: mean predicted D against the balanced truth fraction, per bin of D.

    Returns (mean predicted, observed truth fraction, number of samples) for the non-empty
    bins of equal width in D. A calibrated classifier lies on the diagonal.
    """
    p = as_vector(probabilities, "probabilities")
    y = check_labels(labels)
    if p.shape != y.shape:
        raise ValueError(f"probabilities: expected the shape of labels {y.shape}, got {p.shape}")
    w = balanced_sample_weights(y)
    index = np.clip((p * n_bins).astype(np.int64), 0, n_bins - 1)
    total = np.bincount(index, weights=w, minlength=n_bins)
    truth = np.bincount(index, weights=w * y, minlength=n_bins)
    predicted = np.bincount(index, weights=w * p, minlength=n_bins)
    counts = np.bincount(index, minlength=n_bins)
    filled = counts > 0
    return predicted[filled] / total[filled], truth[filled] / total[filled], counts[filled]


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _fit_inverse_temperature(z, y, w, iterations: int = 50) -> float:
    """β minimising Σ w [softplus(βz) − yβz], by Newton's method (the loss is convex in β)."""
    beta = 1.0
    for _ in range(iterations):
        p = _sigmoid(beta * z)
        gradient = np.sum(w * (p - y) * z)
        curvature = np.sum(w * p * (1 - p) * z * z)
        if curvature <= 1e-12:
            break
        step = gradient / curvature
        # Keep β ≥ 1e-6 (a flipped ranking is not a calibration; β → 0 means "no signal",
        # D = ½ everywhere) and damp wild steps.
        new_beta = min(max(beta - step, beta / 4, 1e-6), beta * 4)
        if abs(new_beta - beta) < 1e-10 * beta:
            beta = new_beta
            break
        beta = new_beta
    return beta
