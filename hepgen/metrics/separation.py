"""Histogram separation power ½ Σ (h₁ − h₂)² / (h₁ + h₂), as in the CaloChallenge."""

from __future__ import annotations

import numpy as np

from hepgen.metrics._checks import as_vector


def separation_power(h1, h2) -> float:
    """½ Σ (h₁ − h₂)² / (h₁ + h₂) of two histograms, each normalised to unit sum first.

    0 for identical shapes, 1 for histograms with no bin in common. Bins empty in both
    are skipped.
    """
    h1 = as_vector(h1, "h1")
    h2 = as_vector(h2, "h2")
    if h1.shape != h2.shape:
        raise ValueError(f"h2: expected the shape of h1 {h1.shape}, got {h2.shape}")
    for name, h in (("h1", h1), ("h2", h2)):
        if h.min(initial=0) < 0:
            raise ValueError(f"{name}: expected non-negative bin contents")
        if h.sum() <= 0:
            raise ValueError(f"{name}: expected a histogram with positive total")
    h1 = h1 / h1.sum()
    h2 = h2 / h2.sum()
    total = h1 + h2
    filled = total > 0
    return float(0.5 * np.sum((h1[filled] - h2[filled]) ** 2 / total[filled]))


def common_bins(reference, n_bins: int = 50, log: bool = False, coverage: float = 0.999):
    """Bin edges spanning the central ``coverage`` of ``reference`` (equal width, or in log).

    The edges come from the reference (truth) sample only, so a generator cannot move
    them; values outside are counted in the first and last bins by :func:`histogram`.
    """
    x = as_vector(reference, "reference")
    if log:
        x = x[x > 0]
    if x.size == 0:
        raise ValueError("reference: expected at least one (positive, for log bins) value")
    tail = (1.0 - coverage) / 2.0
    low, high = np.quantile(x, [tail, 1.0 - tail])
    if log:
        low, high = np.log10(low), np.log10(high)
    if high <= low:
        # A (nearly) constant observable: one unit-wide window around it.
        low, high = low - 0.5, high + 0.5
    edges = np.linspace(low, high, n_bins + 1)
    return 10.0**edges if log else edges


def histogram(values, edges, weights=None) -> np.ndarray:
    """Counts (or summed ``weights``) of ``values`` in ``edges``, overflow in the outer bins.

    Non-positive values go to the first bin of a log binning, where they belong.
    """
    x = as_vector(values, "values")
    edges = np.asarray(edges, dtype=np.float64)
    x = np.clip(x, edges[0], edges[-1])
    counts, _ = np.histogram(x, bins=edges, weights=weights)
    return counts.astype(np.float64)


def histogram_separation(truth, generated, edges, generated_weights=None) -> float:
    """Separation power of ``truth`` and (optionally reweighted) ``generated`` in ``edges``."""
    return separation_power(histogram(truth, edges), histogram(generated, edges, weights=generated_weights))
