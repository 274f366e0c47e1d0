"""Held-out classifier weights for two samples, with one classifier per input group.

A group is a subset of samples sharing one feature set, such as the events with a given
jet multiplicity. Where the samples split into groups g, the weight factorises exactly,

    p_truth(g, x) / p_generated(g, x) = [f_truth(g) / f_generated(g)] · w_g(x),

with f the fraction of each sample in group g (counted on the training and validation
parts) and w_g the weight of the group's own classifier. Kinds without groups have a
single group, and the factor is 1.

Each sample is split into training, validation and test parts within every group; the
classifiers learn on the training part, choose their best epoch and their calibration
on the validation part, and every number reported comes from the test part.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hepgen.metrics._checks import as_feature_matrix, check_fraction
from hepgen.metrics.calibration import reliability_curve
from hepgen.metrics.ensemble import ClassifierEnsemble, fit_ensemble
from hepgen.metrics.scores import auc, auc_null_std, jsd
from hepgen.metrics.training import ClassifierConfig
from hepgen.metrics.weights import (
    MAX_WEIGHT,
    probabilities_from_weights,
    weights_from_probabilities,
)

# Fewest samples of each class a group needs for a train/validation/test split that
# leaves the validation and test parts more than a handful of samples (30/10/10 at the
# default fractions).
MIN_GROUP_SIZE = 50


@dataclass(frozen=True)
class InputGroup:
    """Classifier inputs of one group: ``values`` (n, F) for the sample rows ``rows``."""

    name: str
    feature_names: tuple[str, ...]
    values: np.ndarray
    rows: np.ndarray

    def __post_init__(self):
        values = as_feature_matrix(self.values, f"{self.name}: values")
        rows = np.asarray(self.rows)
        if rows.ndim != 1 or rows.shape[0] != values.shape[0]:
            raise ValueError(f"{self.name}: rows: expected shape ({values.shape[0]},), got {rows.shape}")
        if len(self.feature_names) != values.shape[1]:
            raise ValueError(
                f"{self.name}: feature_names: expected {values.shape[1]} names, got {len(self.feature_names)}"
            )
        object.__setattr__(self, "values", values)
        object.__setattr__(self, "rows", rows.astype(np.int64))
        object.__setattr__(self, "feature_names", tuple(self.feature_names))


@dataclass
class GroupResult:
    """What happened in one group: sizes, the count ratio, and its classifier's scores."""

    name: str
    n_truth: int
    n_generated: int
    count_ratio: float
    classified: bool
    note: str = ""
    feature_names: tuple[str, ...] = ()
    ensemble: ClassifierEnsemble | None = None
    auc: float | None = None
    jsd: float | None = None

    def as_dict(self) -> dict:
        out = {
            "name": self.name,
            "n_truth": self.n_truth,
            "n_generated": self.n_generated,
            "count_ratio": self.count_ratio,
            "classified": self.classified,
            "n_features": len(self.feature_names),
        }
        if self.note:
            out["note"] = self.note
        if self.classified:
            out.update(
                auc=self.auc,
                jsd=self.jsd,
                calibration=self.ensemble.calibration.describe(),
                best_epochs=[h.best_epoch + 1 for h in self.ensemble.histories],
            )
        return out


@dataclass
class HeldOutResult:
    """Probabilities and weights of the test samples, and the scores computed from them.

    ``truth_rows``/``generated_rows`` index the samples; ``*_probabilities`` are the full
    D = w/(1 + w) including group count ratios; ``calibration_*`` hold the within-group
    raw and calibrated outputs of the classified groups for the calibration curve.
    """

    truth_rows: np.ndarray
    generated_rows: np.ndarray
    truth_weights: np.ndarray
    generated_weights: np.ndarray
    auc: float
    jsd: float
    auc_null_std: float
    groups: list[GroupResult]
    calibration_raw: np.ndarray = field(default_factory=lambda: np.zeros(0))
    calibration_calibrated: np.ndarray = field(default_factory=lambda: np.zeros(0))
    calibration_labels: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @property
    def truth_probabilities(self) -> np.ndarray:
        return probabilities_from_weights(self.truth_weights)

    @property
    def generated_probabilities(self) -> np.ndarray:
        return probabilities_from_weights(self.generated_weights)

    def reliability(self, calibrated: bool = True, n_bins: int = 20):
        """Calibration curve (mean D, truth fraction, counts) of the classified groups' tests."""
        p = self.calibration_calibrated if calibrated else self.calibration_raw
        return reliability_curve(p, self.calibration_labels, n_bins)


def classify(
    truth_groups,
    generated_groups,
    n_truth: int,
    n_generated: int,
    *,
    config: ClassifierConfig | None = None,
    n_members: int = 1,
    calibration: str = "temperature",
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    progress: bool = False,
    min_group_size: int = MIN_GROUP_SIZE,
) -> HeldOutResult:
    """Train the groups' classifiers and return the held-out weights of both samples.

    ``truth_groups``/``generated_groups`` list :class:`InputGroup` s whose rows partition
    ``range(n_truth)``/``range(n_generated)``. Groups are matched by name; a group present
    in both with ``min_group_size`` samples of each gets a classifier, a smaller one only
    its count ratio. Raises ValueError for mismatched feature sets or too few samples.
    """
    validation_fraction = check_fraction(validation_fraction, "validation_fraction", 0.0, 0.5)
    test_fraction = check_fraction(test_fraction, "test_fraction", 0.0, 0.5)
    if validation_fraction + test_fraction > 0.8:
        raise ValueError(
            "validation_fraction + test_fraction: expected at most 0.8, leaving 20% to train, "
            f"got {validation_fraction + test_fraction:.3g}"
        )
    truth_by_name = _by_name(truth_groups, n_truth, "truth")
    generated_by_name = _by_name(generated_groups, n_generated, "generated")
    for sample, n in (("truth", n_truth), ("generated", n_generated)):
        if n < min_group_size:
            raise ValueError(
                f"{sample}: too few samples for a train/validation/test split: got {n}, need at least {min_group_size}"
            )
    for name in truth_by_name.keys() & generated_by_name.keys():
        t, g = truth_by_name[name].feature_names, generated_by_name[name].feature_names
        if t != g:
            raise ValueError(
                f"mismatched feature sets in group {name!r}: truth has {len(t)} features "
                f"{_preview(t)}, generated {len(g)} {_preview(g)}"
            )

    rng = np.random.default_rng(seed)
    split_truth = {n: _split(len(gr.rows), validation_fraction, test_fraction, rng) for n, gr in truth_by_name.items()}
    split_generated = {
        n: _split(len(gr.rows), validation_fraction, test_fraction, rng) for n, gr in generated_by_name.items()
    }
    fit_truth = sum(len(s[0]) + len(s[1]) for s in split_truth.values())
    fit_generated = sum(len(s[0]) + len(s[1]) for s in split_generated.values())

    names = list(truth_by_name) + [n for n in generated_by_name if n not in truth_by_name]
    if not any(
        n in truth_by_name
        and n in generated_by_name
        and len(truth_by_name[n].rows) >= min_group_size
        and len(generated_by_name[n].rows) >= min_group_size
        for n in names
    ):
        sizes = ", ".join(
            f"{n}: {len(truth_by_name[n].rows) if n in truth_by_name else 0} truth / "
            f"{len(generated_by_name[n].rows) if n in generated_by_name else 0} generated"
            for n in names
        )
        raise ValueError(
            "too few samples for a train/validation/test split: no group has at least "
            f"{min_group_size} samples in both ({sizes})"
        )

    truth_rows, truth_weights, generated_rows, generated_weights = [], [], [], []
    cal_raw, cal_calibrated, cal_labels = [], [], []
    results = []
    for index, name in enumerate(names):
        t, g = truth_by_name.get(name), generated_by_name.get(name)
        t_fit = 0 if t is None else len(split_truth[name][0]) + len(split_truth[name][1])
        g_fit = 0 if g is None else len(split_generated[name][0]) + len(split_generated[name][1])
        # The count ratio f_truth/f_generated; inf where the generator never produces the
        # group (only truth samples, never weighted, carry it) and 0 where truth never does.
        ratio = (t_fit / fit_truth) / (g_fit / fit_generated) if g_fit else np.inf
        result = GroupResult(
            name, 0 if t is None else len(t.rows), 0 if g is None else len(g.rows), float(ratio), classified=False
        )
        results.append(result)
        t_test = None if t is None else t.values[split_truth[name][2]]
        g_test = None if g is None else g.values[split_generated[name][2]]
        within_t = None if t is None else np.ones(len(t_test))
        within_g = None if g is None else np.ones(len(g_test))
        if t is None or g is None:
            result.note = "only in the " + ("generated" if t is None else "truth") + " sample"
        elif result.n_truth < min_group_size or result.n_generated < min_group_size:
            result.note = f"fewer than {min_group_size} samples in one sample: weighted by the count ratio only"
        else:
            result.classified = True
            result.feature_names = t.feature_names
            tr_t, va_t, _ = split_truth[name]
            tr_g, va_g, _ = split_generated[name]
            x_train = np.concatenate([t.values[tr_t], g.values[tr_g]])
            y_train = np.concatenate([np.ones(len(tr_t)), np.zeros(len(tr_g))]).astype(np.int64)
            x_val = np.concatenate([t.values[va_t], g.values[va_g]])
            y_val = np.concatenate([np.ones(len(va_t)), np.zeros(len(va_g))]).astype(np.int64)
            label = "classifier" if len(names) == 1 else f"classifier {name}"
            ensemble = fit_ensemble(
                x_train,
                y_train,
                x_val,
                y_val,
                config,
                n_members,
                calibration,
                seed=seed + 1000 * index,
                progress=progress,
                description=label,
            )
            result.ensemble = ensemble
            raw = ensemble.raw_probabilities(np.concatenate([t_test, g_test]))
            calibrated = ensemble.calibration(raw)
            labels = np.concatenate([np.ones(len(t_test)), np.zeros(len(g_test))]).astype(np.int64)
            result.auc = auc(calibrated, labels)
            result.jsd = jsd(calibrated, labels)
            cal_raw.append(raw)
            cal_calibrated.append(calibrated)
            cal_labels.append(labels)
            within = weights_from_probabilities(calibrated)
            within_t, within_g = within[: len(t_test)], within[len(t_test) :]
        if t is not None:
            truth_rows.append(t.rows[split_truth[name][2]])
            truth_weights.append(_times(ratio, within_t))
        if g is not None:
            generated_rows.append(g.rows[split_generated[name][2]])
            generated_weights.append(_times(ratio, within_g))

    truth_w = np.concatenate(truth_weights)
    generated_w = np.concatenate(generated_weights)
    probabilities = probabilities_from_weights(np.concatenate([truth_w, generated_w]))
    labels = np.concatenate([np.ones(len(truth_w)), np.zeros(len(generated_w))]).astype(np.int64)
    return HeldOutResult(
        truth_rows=np.concatenate(truth_rows),
        generated_rows=np.concatenate(generated_rows),
        truth_weights=truth_w,
        generated_weights=generated_w,
        auc=auc(probabilities, labels),
        jsd=jsd(probabilities, labels),
        auc_null_std=auc_null_std(len(truth_w), len(generated_w)),
        groups=results,
        calibration_raw=np.concatenate(cal_raw),
        calibration_calibrated=np.concatenate(cal_calibrated),
        calibration_labels=np.concatenate(cal_labels),
    )


def classifier_weights(truth, generated, feature_names=None, **options) -> HeldOutResult:
    """:func:`classify` for two plain arrays (N, F) with one classifier and no groups.

    ``options`` are those of :func:`classify`. The classifier is in
    ``result.groups[0].ensemble``; its ``weights(x)`` evaluates w anywhere.
    """
    truth = as_feature_matrix(truth, "truth")
    generated = as_feature_matrix(generated, "generated")
    if truth.shape[1] != generated.shape[1]:
        raise ValueError(
            f"mismatched feature sets: truth has {truth.shape[1]} features, generated {generated.shape[1]}"
        )
    names = tuple(feature_names or (f"x{i}" for i in range(truth.shape[1])))
    return classify(
        [InputGroup("all", names, truth, np.arange(len(truth)))],
        [InputGroup("all", names, generated, np.arange(len(generated)))],
        len(truth),
        len(generated),
        **options,
    )


def _by_name(groups, n_rows: int, sample: str) -> dict[str, InputGroup]:
    groups = list(groups)
    if not groups or not all(isinstance(g, InputGroup) for g in groups):
        raise TypeError(f"{sample} groups: expected a non-empty list of InputGroup")
    by_name = {}
    for group in groups:
        if group.name in by_name:
            raise ValueError(f"{sample} groups: group name {group.name!r} appears twice")
        by_name[group.name] = group
    rows = np.sort(np.concatenate([g.rows for g in groups]))
    if rows.shape[0] != n_rows or not np.array_equal(rows, np.arange(n_rows)):
        raise ValueError(f"{sample} groups: expected rows that partition range({n_rows})")
    return by_name


def _split(n: int, validation_fraction: float, test_fraction: float, rng):
    """Random (train, validation, test) positions of n items; each part non-empty if n ≥ 3."""
    order = rng.permutation(n)
    n_test = max(1, int(round(n * test_fraction))) if n >= 3 else 0
    n_val = max(1, int(round(n * validation_fraction))) if n >= 3 else 0
    return order[n_test + n_val :], order[n_test : n_test + n_val], order[:n_test]


def _times(ratio: float, within: np.ndarray) -> np.ndarray:
    # A group the generator never produces has an infinite ratio: its truth samples get
    # the largest weight a probability can express, D = 1 − ε.
    return np.minimum(ratio * within, MAX_WEIGHT)


def _preview(names, k: int = 4) -> str:
    names = list(names)
    return "(" + ", ".join(names[:k]) + (", …" if len(names) > k else "") + ")"
