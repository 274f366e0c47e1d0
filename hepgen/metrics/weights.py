"""Classifier weights w = D/(1 − D) ≈ p_truth/p_generated and summaries of their distribution."""

from __future__ import annotations

import numpy as np

from hepgen.metrics._checks import as_vector
from hepgen.metrics.scores import PROBABILITY_EPS

# The largest weight, that of D = 1 − ε.
MAX_WEIGHT = (1 - PROBABILITY_EPS) / PROBABILITY_EPS

# Tails of the weight distribution reported by default: a weight below 1/t marks a sample
# the generator puts where the truth has t times fewer, above t where it has t times more.
DEFAULT_TAIL_THRESHOLDS = (2.0, 5.0, 10.0)

# Weight slices for the observables plots: overpopulated (w < 0.5), about right, and
# underpopulated (w > 2) by the generator.
DEFAULT_SLICE_EDGES = (0.5, 2.0)


def weights_from_probabilities(probabilities) -> np.ndarray:
    """w = D/(1 − D) for classifier outputs D, with D kept inside [ε, 1 − ε] (ε = 1e-7)."""
    d = as_vector(probabilities, "probabilities")
    if d.size and (d.min() < 0 or d.max() > 1):
        raise ValueError("probabilities: expected values in [0, 1]")
    d = np.clip(d, PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    return d / (1.0 - d)


def probabilities_from_weights(weights) -> np.ndarray:
    """D = w/(1 + w), the inverse of :func:`weights_from_probabilities`."""
    w = as_vector(weights, "weights")
    if w.size and w.min() < 0:
        raise ValueError("weights: expected non-negative values")
    return w / (1.0 + w)


def tail_fractions(weights, thresholds=DEFAULT_TAIL_THRESHOLDS) -> dict[str, float]:
    """Fractions of samples with w < 1/t and with w > t, for each threshold t > 1.

    Keys read ``"w<0.5"``, ``"w>2"`` and so on.
    """
    w = as_vector(weights, "weights")
    if w.size == 0:
        raise ValueError("weights: expected at least one weight")
    fractions = {}
    for t in thresholds:
        if not t > 1:
            raise ValueError(f"thresholds: expected values above 1, got {t}")
        fractions[f"w<{_format_number(1.0 / t)}"] = float(np.mean(w < 1.0 / t))
        fractions[f"w>{_format_number(t)}"] = float(np.mean(w > t))
    return fractions


def weight_slice_labels(edges=DEFAULT_SLICE_EDGES) -> list[str]:
    """Human-readable names of the slices cut at ``edges``: ``w<0.5``, ``0.5≤w<2``, ``w≥2``."""
    edges = _check_edges(edges)
    names = [f"w<{_format_number(edges[0])}"]
    names += [f"{_format_number(a)}≤w<{_format_number(b)}" for a, b in zip(edges[:-1], edges[1:])]
    names.append(f"w≥{_format_number(edges[-1])}")
    return names


def weight_slices(weights, edges=DEFAULT_SLICE_EDGES) -> np.ndarray:
    """Index of the slice each weight falls into: 0 for w < edges[0], … len(edges) for the last."""
    w = as_vector(weights, "weights")
    return np.searchsorted(np.asarray(_check_edges(edges)), w, side="right")


def weight_summary(weights) -> dict[str, float]:
    """Mean (≈ 1 when the weights are right and applied to generated samples), std, quantiles."""
    w = as_vector(weights, "weights")
    q = np.quantile(w, [0.01, 0.16, 0.5, 0.84, 0.99])
    return {
        "mean": float(w.mean()),
        "std": float(w.std()),
        "q01": float(q[0]),
        "q16": float(q[1]),
        "median": float(q[2]),
        "q84": float(q[3]),
        "q99": float(q[4]),
        "min": float(w.min()),
        "max": float(w.max()),
    }


def _check_edges(edges) -> tuple[float, ...]:
    edges = tuple(float(e) for e in edges)
    if not edges or any(e <= 0 for e in edges) or any(b <= a for a, b in zip(edges, edges[1:])):
        raise ValueError(f"edges: expected increasing positive weights, got {edges}")
    return edges


def _format_number(x: float) -> str:
    return f"{x:.3g}"
