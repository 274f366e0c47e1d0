"""Input checks shared by the metrics: one place that says what a valid input is."""

from __future__ import annotations

import numpy as np


def as_feature_matrix(values, name: str) -> np.ndarray:
    """``values`` as a finite float64 array of shape (N, F); raise naming ``name`` otherwise."""
    if isinstance(values, (str, bytes)) or values is None:
        raise TypeError(f"{name}: expected an array of shape (N, F), got {type(values).__name__}")
    array = np.asarray(values)
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise TypeError(f"{name}: expected a numeric array, got dtype {array.dtype}")
    if array.ndim != 2:
        raise ValueError(f"{name}: expected shape (N, F), got shape {array.shape}")
    array = array.astype(np.float64, copy=False)
    check_finite(array, name)
    return array


def as_vector(values, name: str) -> np.ndarray:
    """``values`` as a finite float64 array of shape (N,)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected shape (N,), got shape {array.shape}")
    check_finite(array, name)
    return array


def check_finite(array: np.ndarray, name: str) -> None:
    """Raise a ValueError that counts the NaN/inf entries of ``array``, if there are any."""
    bad = ~np.isfinite(array)
    if bad.any():
        n_nan = int(np.isnan(array).sum())
        n_inf = int(bad.sum()) - n_nan
        first = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name}: expected finite values, found {n_nan} NaN and {n_inf} inf (first at index {first})")


def check_labels(labels: np.ndarray, name: str = "labels") -> np.ndarray:
    """``labels`` as an int array of 0 (generated) and 1 (truth) with both classes present."""
    array = np.asarray(labels)
    if array.ndim != 1:
        raise ValueError(f"{name}: expected shape (N,), got shape {array.shape}")
    if not np.isin(array, (0, 1)).all():
        raise ValueError(f"{name}: expected only 0 (generated) and 1 (truth)")
    array = array.astype(np.int64)
    if array.min(initial=1) == array.max(initial=0):
        raise ValueError(f"{name}: expected both classes, 0 (generated) and 1 (truth)")
    return array


def check_fraction(value: float, name: str, low: float = 0.0, high: float = 1.0) -> float:
    """``value`` as a float strictly between ``low`` and ``high``."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not low < float(value) < high:
        raise ValueError(f"{name}: expected a value in ({low}, {high}), got {value}")
    return float(value)


def balanced_sample_weights(labels: np.ndarray) -> np.ndarray:
    """Per-sample weights giving both classes the same total weight, with mean 1.

    With these weights the optimal classifier sees equal priors, so D/(1-D) estimates
    p_truth/p_generated whatever the two sample sizes are.
    """
    labels = np.asarray(labels)
    n = labels.size
    n_truth = int((labels == 1).sum())
    n_generated = n - n_truth
    return np.where(labels == 1, n / (2.0 * n_truth), n / (2.0 * n_generated))
