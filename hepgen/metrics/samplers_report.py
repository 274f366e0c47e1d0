"""The sampler study's report (``hepgen metrics samplers``): report.md, results.json,
figures/w1m_vs_nfe.png and baseline/ (the full jet report of the 200-NFE midpoint
baseline), written all or nothing like every report of hepgen.metrics."""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

from hepgen.metrics.jets_report import write_jet_report
from hepgen.metrics.report import _move_into_place, check_output
from hepgen.metrics.samplers import BASELINE, equal_quality, markdown_table


def write_sampler_report(
    results,
    base_full,
    reference,
    floor,
    out_dir,
    *,
    model: str,
    reference_path: str,
    n: int,
    seed: int,
    command: str,
    overwrite: bool = False,
) -> tuple[Path, str]:
    """Write the study into ``out_dir``; returns it and the Markdown table of the samplers.

    ``results``: :func:`hepgen.metrics.samplers.run_study`'s (baseline first); ``base_full``:
    every metric of the baseline against ``reference``; ``floor``: the metrics of a second
    truth sample against ``reference``, or None."""
    out_dir = check_output(out_dir, overwrite)
    base = results[0]
    if base.sampler != BASELINE:
        raise ValueError(f"results: the first must be the baseline {BASELINE.name}, got {base.sampler.name}")
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        write_jet_report(
            base_full,
            base.jets,
            reference,
            staging / "baseline",
            inputs={"generated": f"{model}, {BASELINE.name}, seed {seed}", "reference": str(reference_path)},
        )
        (staging / "figures").mkdir()
        _w1m_figure(results, floor, staging / "figures" / "w1m_vs_nfe.png")
        table = markdown_table(results, floor)
        data = {
            "command": command,
            "model": str(model),
            "reference": str(reference_path),
            "n": n,
            "seed": seed,
            "floor": None if floor is None else floor.to_dict(),
            "baseline_full": base_full.to_dict(),
            "samplers": [
                {
                    "sampler": r.sampler.name,
                    "method": r.sampler.method,
                    "steps": r.sampler.steps,
                    "rtol": r.sampler.rtol,
                    "atol": r.sampler.atol,
                    "nfe": r.nfe,
                    "seconds": r.seconds,
                    "rms_to_baseline": r.rms_to_baseline,
                    **r.metrics.to_dict(),
                }
                for r in results
            ],
        }
        (staging / "results.json").write_text(json.dumps(data, indent=2) + "\n")
        (staging / "report.md").write_text(
            _markdown(results, base_full, table, command, model, reference_path, n, seed)
        )
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir, table


def _markdown(results, base_full, table, command, model, reference_path, n, seed) -> str:
    base = results[0]
    cheap = [r for r in results[1:] if equal_quality(r, base) and base.nfe / r.nfe >= 3]
    verdict = (
        "Samplers with W1M within the baseline's error at ≥ 3× fewer NFE: "
        + ", ".join(f"{r.sampler.name} ({r.nfe} NFE, {base.nfe / r.nfe:.1f}×)" for r in cheap)
        if cheap
        else "No sampler reached the baseline's W1M (within its error) at ≥ 3× fewer NFE."
    )
    return "\n".join(
        [
            "# Sampler study",
            "",
            f"- model: `{model}`; reference: `{reference_path}`; {n} jets per sampler, seed {seed}",
            "- every sampler integrates the same noise with the same drawn jet features; NFE counted by a hook "
            "on the network (per batch of jets)",
            "",
            "Reproduce with:",
            "",
            "```bash",
            command,
            "```",
            "",
            table,
            "",
            verdict,
            "",
            "![W1M vs NFE](figures/w1m_vs_nfe.png)",
            "",
            "## Baseline (midpoint, 100 steps) against the reference, all metrics",
            "",
            base_full.markdown_table(),
            "",
            "Figures: [baseline/report.md](baseline/report.md).",
            "",
        ]
    )


def _w1m_figure(results, floor, path) -> None:
    from matplotlib.figure import Figure

    from hepgen.metrics.plots import style

    with style():
        fig = Figure(figsize=(7, 5))
        ax = fig.subplots()
        fig.subplots_adjust(left=0.14, right=0.97, top=0.95, bottom=0.13)
        for method in sorted({r.sampler.method for r in results}):
            rows = sorted((r for r in results if r.sampler.method == method), key=lambda r: r.nfe)
            ax.errorbar(
                [r.nfe for r in rows],
                [r.metrics["w1m"].value * 1e3 for r in rows],
                yerr=[r.metrics["w1m"].error * 1e3 for r in rows],
                marker="o",
                capsize=3,
                label=method,
            )
        base = results[0].metrics["w1m"]
        ax.axhspan(
            (base.value - base.error) * 1e3,
            (base.value + base.error) * 1e3,
            color="grey",
            alpha=0.25,
            label="midpoint 200 NFE ± error",
        )
        if floor is not None:
            ax.axhline(floor["w1m"].value * 1e3, color="black", ls="--", lw=1, label="Pythia vs Pythia")
        ax.set_xscale("log")
        ax.set_xlabel("network evaluations (NFE)")
        ax.set_ylabel(r"W1M $\times 10^3$")
        ax.legend(fontsize="small")
        fig.savefig(path, dpi=110)
