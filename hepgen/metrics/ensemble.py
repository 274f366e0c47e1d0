"""An ensemble of classifiers with a calibration: the density-ratio estimate w(x)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hepgen.metrics._checks import as_feature_matrix
from hepgen.metrics.calibration import Calibration, make_calibration
from hepgen.metrics.training import (
    ClassifierConfig,
    TrainingHistory,
    predict_probabilities,
    train_classifier,
)
from hepgen.metrics.weights import weights_from_probabilities


@dataclass
class ClassifierEnsemble:
    """Members trained with different seeds; D is their mean output, then calibrated."""

    members: list
    calibration: Calibration
    histories: list[TrainingHistory] = field(default_factory=list)
    n_features: int = 0

    def raw_probabilities(self, x) -> np.ndarray:
        """Mean of the members' D on ``x`` (N, F), before calibration."""
        x = as_feature_matrix(x, "x")
        if x.shape[1] != self.n_features:
            raise ValueError(f"x: expected {self.n_features} features, got {x.shape[1]}")
        return np.mean([predict_probabilities(m, x) for m in self.members], axis=0)

    def probabilities(self, x) -> np.ndarray:
        """Calibrated D = P(truth | x) on ``x`` (N, F)."""
        return self.calibration(self.raw_probabilities(x))

    def weights(self, x) -> np.ndarray:
        """w(x) = D/(1 − D) ≈ p_truth(x)/p_generated(x)."""
        return weights_from_probabilities(self.probabilities(x))


def fit_ensemble(
    x_train,
    y_train,
    x_val,
    y_val,
    config: ClassifierConfig | None = None,
    n_members: int = 1,
    calibration: str = "temperature",
    seed: int = 0,
    progress: bool = False,
    description: str = "classifier",
) -> ClassifierEnsemble:
    """Train ``n_members`` classifiers on the training data; fit ``calibration`` on validation.

    The validation data also choose each member's best epoch. The calibration sees only
    validation outputs, so test data stay untouched for the reported numbers.
    """
    if isinstance(n_members, bool) or not isinstance(n_members, int) or n_members < 1:
        raise ValueError(f"n_members: expected a positive integer, got {n_members!r}")
    config = config or ClassifierConfig()
    x_train = as_feature_matrix(x_train, "x_train")
    x_val = as_feature_matrix(x_val, "x_val")
    if x_val.shape[1] != x_train.shape[1]:
        raise ValueError(f"x_val: expected {x_train.shape[1]} features like x_train, got {x_val.shape[1]}")
    calibrator = make_calibration(calibration)
    members, histories = [], []
    for k in range(n_members):
        label = description if n_members == 1 else f"{description} [{k + 1}/{n_members}]"
        model, history = train_classifier(
            x_train, y_train, x_val, y_val, config, seed=seed + k, progress=progress, description=label
        )
        members.append(model)
        histories.append(history)
    ensemble = ClassifierEnsemble(members, calibrator, histories, x_train.shape[1])
    calibrator.fit(ensemble.raw_probabilities(x_val), y_val)
    return ensemble
