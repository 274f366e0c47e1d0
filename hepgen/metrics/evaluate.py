"""The whole evaluation of a generated sample against a truth sample of one kind."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hepgen.metrics.classify import HeldOutResult, classify
from hepgen.metrics.features import kind_module
from hepgen.metrics.features.observable import Observable
from hepgen.metrics.separation import common_bins, histogram_separation
from hepgen.metrics.training import ClassifierConfig


@dataclass
class Evaluation:
    """Held-out classifier results plus the observables of both samples.

    ``separation`` maps each observable to its separation power between the full
    samples, the test parts, and the test parts with the generated one reweighted by w;
    ``floor``/``floor_test`` are what samples of the full/test sizes drawn from one
    distribution would show on average (:func:`separation_floor`).
    """

    kind: str
    n_truth: int
    n_generated: int
    held_out: HeldOutResult
    truth_observables: list[Observable]
    generated_observables: list[Observable]
    bins: dict[str, np.ndarray]
    separation: dict[str, dict[str, float]]
    settings: dict = field(default_factory=dict)


def evaluate(
    truth,
    generated,
    kind: str,
    *,
    config: ClassifierConfig | None = None,
    n_members: int = 1,
    calibration: str = "temperature",
    validation_fraction: float = 0.2,
    test_fraction: float = 0.2,
    seed: int = 0,
    progress: bool = False,
    particles: bool = False,
    n_bins: int = 50,
    observables=None,
) -> Evaluation:
    """Classify ``truth`` against ``generated`` samples of ``kind`` and collect everything.

    ``config`` defaults to the kind's classifier; ``particles`` (jets only) adds the
    particle slots to the classifier inputs; ``observables`` (names) restricts the
    histogrammed observables, not the classifier inputs. Everything is checked before
    training.
    """
    module = kind_module(kind)
    options = {"particles": particles} if kind == "jets" else {}
    if particles and kind != "jets":
        raise ValueError(f"particles: only for kind 'jets', not {kind!r}")
    module.check_compatible(truth, generated, **options)
    truth_groups = module.classifier_inputs(truth, **options)
    generated_groups = module.classifier_inputs(generated, **options)
    truth_observables = _chosen(module.observables(truth), observables, kind)
    generated_observables = _chosen(module.observables(generated), observables, kind)
    n_truth = sum(len(g.rows) for g in truth_groups)
    n_generated = sum(len(g.rows) for g in generated_groups)
    config = config or module.CLASSIFIER
    held_out = classify(
        truth_groups,
        generated_groups,
        n_truth,
        n_generated,
        config=config,
        n_members=n_members,
        calibration=calibration,
        validation_fraction=validation_fraction,
        test_fraction=test_fraction,
        seed=seed,
        progress=progress,
    )
    bins, separation = {}, {}
    for t_obs, g_obs in zip(truth_observables, generated_observables):
        t_all, _ = t_obs.defined()
        g_all, _ = g_obs.defined()
        t_test, _ = t_obs.defined(held_out.truth_rows)
        g_test, g_pos = g_obs.defined(held_out.generated_rows)
        if min(len(t_all), len(g_all), len(t_test), len(g_test)) == 0:
            continue  # e.g. no third jet in either sample
        edges = observable_bins(t_obs, t_all, n_bins)
        bins[t_obs.name] = edges
        n_used = len(edges) - 1
        separation[t_obs.name] = {
            "full": histogram_separation(t_all, g_all, edges),
            "test": histogram_separation(t_test, g_test, edges),
            "test_reweighted": histogram_separation(
                t_test, g_test, edges, generated_weights=held_out.generated_weights[g_pos]
            ),
            "floor": separation_floor(n_used, len(t_all), len(g_all)),
            "floor_test": separation_floor(n_used, len(t_test), len(g_test)),
        }
    settings = {
        "classifier": config.as_dict(),
        "ensemble_members": n_members,
        "calibration": calibration,
        "validation_fraction": validation_fraction,
        "test_fraction": test_fraction,
        "seed": seed,
        "particles": particles,
        "bins": n_bins,
        "observables": [o.name for o in truth_observables],
    }
    return Evaluation(
        kind, n_truth, n_generated, held_out, truth_observables, generated_observables, bins, separation, settings
    )


def separation_floor(n_bins: int, n_truth: int, n_generated: int) -> float:
    """Expected separation power of two samples of one distribution: B (1/N₁ + 1/N₂) / 4.

    Per bin, (h₁ − h₂)² averages p (1/N₁ + 1/N₂) and h₁ + h₂ ≈ 2p; the ½ in front and
    the sum over B bins give the rest (bins with few entries make it an approximation).
    """
    return n_bins * (1 / n_truth + 1 / n_generated) / 4


def observable_bins(observable: Observable, truth_values: np.ndarray, n_bins: int) -> np.ndarray:
    """Edges for ``observable`` from the truth values: integers, log or linear bins."""
    if observable.discrete:
        low, high = np.floor(truth_values.min()), np.ceil(truth_values.max())
        return np.arange(low - 0.5, high + 1.0, 1.0)
    return common_bins(truth_values, n_bins, log=observable.log and (truth_values > 0).any())


def _chosen(all_observables: list[Observable], names, kind: str) -> list[Observable]:
    if names is None:
        return all_observables
    if isinstance(names, str):
        raise TypeError("observables: expected a list of names, got a string")
    by_name = {o.name: o for o in all_observables}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(
            f"observables: {kind} have no {', '.join(map(repr, unknown))}; expected some of {', '.join(by_name)}"
        )
    return [by_name[n] for n in names]
