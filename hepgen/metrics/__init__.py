"""Evaluation of generative models: classifier weights, AUC/JSD and separation powers.

The method of "How to Understand Limitations of Generative Networks" (Das, Favaro,
Heimel, Krause, Plehn, Shih): a classifier D(x) trained to tell truth (label 1) from
generated samples (label 0) gives w(x) = D/(1 − D) ≈ p_truth(x)/p_generated(x). The
distribution of w on held-out samples, and where its tails sit, say what the generator
gets wrong.

- :func:`classifier_weights` — two arrays in, held-out weights, AUC and JSD out.
- :func:`evaluate` — a truth and a generated sample of one kind (events, jets, showers).
- :func:`write_report` — Markdown + PNG + JSON report of an evaluation.
- :func:`separation_power`, :func:`auc`, :func:`jsd` — the scores on their own.

Names are imported on first use (scientific-python's ``lazy_loader``), so ``hepgen --help``
and ``import hepgen.metrics`` load neither torch, sklearn nor matplotlib.
"""

import lazy_loader

# name -> the submodule that defines it
_EXPORTS = {
    "CALIBRATIONS": "calibration",
    "make_calibration": "calibration",
    "reliability_curve": "calibration",
    "HeldOutResult": "classify",
    "InputGroup": "classify",
    "classifier_weights": "classify",
    "classify": "classify",
    "ClassifierEnsemble": "ensemble",
    "fit_ensemble": "ensemble",
    "Evaluation": "evaluate",
    "evaluate": "evaluate",
    "detect_kind": "features",
    "write_report": "report",
    "auc": "scores",
    "auc_null_std": "scores",
    "balanced_bce": "scores",
    "jsd": "scores",
    "common_bins": "separation",
    "histogram_separation": "separation",
    "separation_power": "separation",
    "ClassifierConfig": "training",
    "tail_fractions": "weights",
    "weight_slices": "weights",
    "weights_from_probabilities": "weights",
}

_SUBMODULE_ATTRS: dict[str, list[str]] = {}
for _name, _module in _EXPORTS.items():
    _SUBMODULE_ATTRS.setdefault(_module, []).append(_name)

__getattr__, __dir__, __all__ = lazy_loader.attach(__name__, submod_attrs=_SUBMODULE_ATTRS)
del _name, _module
