"""Scores of a truth-vs-generated classifier: AUC, balanced BCE and the JSD estimate."""

from __future__ import annotations

import math

import numpy as np

from hepgen.metrics._checks import as_vector, balanced_sample_weights, check_labels

# Probabilities are kept this far from 0 and 1 so that a single confident mistake costs
# a finite log-loss (-ln 1e-7 ≈ 16) and a weight D/(1-D) stays below 1e7.
PROBABILITY_EPS = 1e-7


def _probabilities_and_labels(probabilities, labels):
    probabilities = as_vector(probabilities, "probabilities")
    labels = check_labels(labels)
    if probabilities.shape != labels.shape:
        raise ValueError(f"probabilities: expected the shape of labels {labels.shape}, got {probabilities.shape}")
    if probabilities.min() < 0 or probabilities.max() > 1:
        raise ValueError("probabilities: expected values in [0, 1]")
    return probabilities, labels


def auc(probabilities, labels) -> float:
    """Area under the ROC curve of ``probabilities`` for ``labels`` (1 = truth, 0 = generated).

    0.5 means the classifier cannot tell the samples apart; 1 means it separates them fully.
    The AUC is a rank statistic, so it does not depend on the class sizes.
    """
    from sklearn.metrics import roc_auc_score

    probabilities, labels = _probabilities_and_labels(probabilities, labels)
    return float(roc_auc_score(labels, probabilities))


def auc_null_std(n_truth: int, n_generated: int) -> float:
    """Standard deviation of the AUC of an uninformative classifier (Mann–Whitney null).

    A measured AUC within a few of these of 0.5 is consistent with identical samples.
    """
    return math.sqrt((n_truth + n_generated + 1) / (12.0 * n_truth * n_generated))


def balanced_bce(probabilities, labels) -> float:
    """Binary cross-entropy in nats with both classes weighted equally (mean over samples)."""
    probabilities, labels = _probabilities_and_labels(probabilities, labels)
    p = np.clip(probabilities, PROBABILITY_EPS, 1 - PROBABILITY_EPS)
    losses = -(labels * np.log(p) + (1 - labels) * np.log1p(-p))
    return float(np.average(losses, weights=balanced_sample_weights(labels)))


def jsd(probabilities, labels) -> float:
    """Jensen–Shannon divergence estimate (ln 2 − BCE) / ln 2, in [0, 1] for a good classifier.

    The optimal classifier's balanced BCE is ln 2 − JSD(p_truth, p_generated) (in nats), so
    this is the JSD in bits. A classifier worse than chance on held-out data gives a
    negative value; it is returned as measured, not clipped.
    """
    return (math.log(2.0) - balanced_bce(probabilities, labels)) / math.log(2.0)
