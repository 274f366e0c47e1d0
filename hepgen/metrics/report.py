"""The evaluation report: Markdown + PNG figures + JSON numbers, written all or nothing.

Everything goes into a temporary directory beside the target, which is renamed into
place at the end; a failure leaves no trace, and an existing report is replaced only
with ``overwrite`` and only once the new one is complete.
"""

from __future__ import annotations

import json
import math
import os
import platform
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from hepgen.metrics.evaluate import Evaluation
from hepgen.metrics.weights import (
    DEFAULT_SLICE_EDGES,
    tail_fractions,
    weight_slice_labels,
    weight_slices,
    weight_summary,
)

REPORT_NAME = "report.md"
NUMBERS_NAME = "metrics.json"
FIGURES = "figures"


def check_output(out_dir, overwrite: bool = False) -> Path:
    """``out_dir`` as a Path, checked before any work: FileExistsError if taken."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise FileExistsError(f"{out_dir} exists and is not empty; pass --force to replace it")
    if not out_dir.parent.is_dir():
        raise FileNotFoundError(f"{out_dir}: directory {out_dir.parent} does not exist")
    return out_dir


def numbers(evaluation: Evaluation, inputs: dict | None = None) -> dict:
    """The report's JSON: scores, weight summaries, tail fractions, separation powers."""
    held = evaluation.held_out
    from hepgen import __version__

    return {
        "kind": evaluation.kind,
        "inputs": inputs or {},
        "n_truth": evaluation.n_truth,
        "n_generated": evaluation.n_generated,
        "n_test_truth": int(len(held.truth_rows)),
        "n_test_generated": int(len(held.generated_rows)),
        "auc": held.auc,
        "auc_null_std": held.auc_null_std,
        "jsd": held.jsd,
        "weights": {
            "generated": weight_summary(held.generated_weights),
            "truth": weight_summary(held.truth_weights),
        },
        "tail_fractions": {
            "generated": tail_fractions(held.generated_weights),
            "truth": tail_fractions(held.truth_weights),
        },
        "groups": [g.as_dict() for g in held.groups],
        "separation_power": evaluation.separation,
        "settings": evaluation.settings,
        "versions": {"hepgen": __version__, "python": platform.python_version()},
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def write_report(
    evaluation: Evaluation, out_dir, overwrite: bool = False, inputs: dict | None = None, command: str | None = None
) -> Path:
    """Write ``report.md``, ``metrics.json`` and ``figures/*.png`` into ``out_dir``."""
    out_dir = check_output(out_dir, overwrite)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        data = numbers(evaluation, inputs)
        figures = _write_figures(evaluation, staging / FIGURES)
        (staging / NUMBERS_NAME).write_text(json.dumps(_jsonable(data), indent=2) + "\n")
        (staging / REPORT_NAME).write_text(_markdown(evaluation, data, figures, command))
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _move_into_place(staging: Path, out_dir: Path) -> None:
    if out_dir.exists():
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
        os.replace(out_dir, old / "report")
        os.replace(staging, out_dir)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(staging, out_dir)


def _write_figures(evaluation: Evaluation, folder: Path) -> dict:
    from hepgen.metrics import plots

    folder.mkdir()
    held = evaluation.held_out
    written = {"weights": f"{FIGURES}/weights.png", "calibration": None, "observables": []}
    plots.save(plots.weight_histograms(held.generated_weights, held.truth_weights), folder / "weights.png")
    if len(held.calibration_labels):
        fig = plots.calibration_curve(
            held.reliability(calibrated=False),
            held.reliability(calibrated=True),
            held.calibration_calibrated,
            held.calibration_labels,
        )
        plots.save(fig, folder / "calibration.png")
        written["calibration"] = f"{FIGURES}/calibration.png"
    slices = weight_slices(held.generated_weights, DEFAULT_SLICE_EDGES)
    slice_names = weight_slice_labels(DEFAULT_SLICE_EDGES)
    for t_obs, g_obs in zip(evaluation.truth_observables, evaluation.generated_observables):
        if t_obs.name not in evaluation.bins:
            continue
        edges = evaluation.bins[t_obs.name]
        t_values, _ = t_obs.defined(held.truth_rows)
        g_values, g_pos = g_obs.defined(held.generated_rows)
        log = t_obs.log and edges[0] > 0
        plots.save(
            plots.weight_slices(t_obs.label, edges, t_values, g_values, slices[g_pos], slice_names, log=log),
            folder / f"slices_{t_obs.name}.png",
        )
        plots.save(
            plots.reweighted_histogram(t_obs.label, edges, t_values, g_values, held.generated_weights[g_pos], log=log),
            folder / f"reweighted_{t_obs.name}.png",
        )
        written["observables"].append(
            (t_obs.name, f"{FIGURES}/slices_{t_obs.name}.png", f"{FIGURES}/reweighted_{t_obs.name}.png")
        )
    return written


def _markdown(evaluation: Evaluation, data: dict, figures: dict, command: str | None) -> str:
    held = evaluation.held_out
    tails_g = data["tail_fractions"]["generated"]
    tails_t = data["tail_fractions"]["truth"]
    wg, wt = data["weights"]["generated"], data["weights"]["truth"]
    inputs = data["inputs"]
    lines = [
        f"# Classifier evaluation: {evaluation.kind}",
        "",
        f"Truth: `{inputs.get('truth', '-')}` ({evaluation.n_truth} samples); "
        f"generated: `{inputs.get('generated', '-')}` ({evaluation.n_generated} samples). "
        f"Held out for every number below: {data['n_test_truth']} truth, "
        f"{data['n_test_generated']} generated.",
        "",
    ]
    if command:
        lines += ["Command:", "", "```", command, "```", ""]
    lines += [
        "A classifier trained to tell truth (label 1) from generated samples (label 0) gives "
        "D(x); w = D/(1 − D) estimates p_truth(x)/p_generated(x). A perfect generator gives "
        "AUC 0.5, JSD 0 and w = 1 everywhere; w < 1 marks regions the generator "
        "over-populates, w > 1 regions it under-populates.",
        "",
        "## Scores",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| AUC | {held.auc:.4f} (identical samples: 0.5 ± {held.auc_null_std:.4f}) |",
        f"| JSD = (ln 2 − BCE)/ln 2 | {held.jsd:.4f} |",
        f"| mean w on generated (≈ 1 if w is right) | {wg['mean']:.3f} |",
        f"| w on generated: 16/50/84% quantiles | {wg['q16']:.3g} / {wg['median']:.3g} / {wg['q84']:.3g} |",
        f"| w on truth: 16/50/84% quantiles | {wt['q16']:.3g} / {wt['median']:.3g} / {wt['q84']:.3g} |",
        "",
        "Tail fractions of the held-out weights:",
        "",
        "| sample | " + " | ".join(tails_g) + " |",
        "|---|" + "---|" * len(tails_g),
        "| generated | " + " | ".join(f"{v:.4f}" for v in tails_g.values()) + " |",
        "| truth | " + " | ".join(f"{v:.4f}" for v in tails_t.values()) + " |",
        "",
    ]
    if len(held.groups) > 1 or not held.groups[0].classified:
        lines += [
            "## Groups",
            "",
            "One classifier per group; the count ratio f_truth/f_generated multiplies its weights.",
            "",
            "| group | truth | generated | count ratio | AUC | JSD | note |",
            "|---|---|---|---|---|---|---|",
        ]
        for g in held.groups:
            scores = f"{g.auc:.4f} | {g.jsd:.4f}" if g.classified else "– | –"
            lines.append(f"| {g.name} | {g.n_truth} | {g.n_generated} | {g.count_ratio:.4g} | {scores} | {g.note} |")
        lines.append("")
    lines += ["## Weights", "", f"![weights]({figures['weights']})", ""]
    if figures["calibration"]:
        lines += [
            "## Calibration",
            "",
            f"Calibration: {evaluation.settings['calibration']}, fitted on the validation part. "
            "Left: truth fraction against predicted D on the test part (diagonal = "
            "calibrated); right: the calibrated D of test samples.",
            "",
            f"![calibration]({figures['calibration']})",
            "",
        ]
    lines += [
        "## Separation power",
        "",
        "½ Σ (h₁ − h₂)² / (h₁ + h₂) of normalised histograms (bins from the truth sample). "
        "'floor' is its expectation for two samples of these sizes drawn from one distribution.",
        "",
        "| observable | full samples | floor | test | test, generated × w | floor (test) |",
        "|---|---|---|---|---|---|",
    ]
    for name, sp in evaluation.separation.items():
        lines.append(
            f"| {name} | {sp['full']:.2e} | {sp['floor']:.1e} | {sp['test']:.2e} | "
            f"{sp['test_reweighted']:.2e} | {sp['floor_test']:.1e} |"
        )
    lines += [
        "",
        "## Observables",
        "",
        "Left: held-out generated samples stacked by weight slice (w < 0.5: over-populated by "
        "the generator; w ≥ 2: under-populated), truth as a line. Right: truth, generated, and "
        "generated reweighted by w; if the classifier has learned the density ratio, the "
        "reweighted histogram matches truth within the grey statistical band.",
        "",
    ]
    for name, slices, reweighted in figures["observables"]:
        lines += [f"### {name}", "", f"![{name} slices]({slices}) ![{name} reweighted]({reweighted})", ""]
    settings = json.dumps(_jsonable(evaluation.settings), indent=2)
    lines += ["## Settings", "", "```json", settings, "```", ""]
    return "\n".join(lines)


def _jsonable(value):
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else str(value)
    if isinstance(value, np.integer):
        return int(value)
    return value
