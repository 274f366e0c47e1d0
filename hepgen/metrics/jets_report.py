"""Report of the jet metrics: ``report.md``, ``metrics.json`` and ``figures/*.png``.

Figures show generated against reference jets with a ratio panel: the relative jet
mass (what W1M measures), the stored jet mass, particle pT_rel, η_rel, φ_rel (what W1P
measures) and the multiplicity. The directory is written in a staging folder and moved
into place at the end, so a failure leaves nothing half-written.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from pathlib import Path

import numpy as np

from hepgen.metrics.jets import LABELS, SCALES, JetMetrics
from hepgen.metrics.report import _move_into_place, check_output

REFERENCE_COLOR = "black"
GENERATED_COLOR = "#d62728"


def distributions(particles: np.ndarray, jets: np.ndarray | None) -> dict[str, tuple[str, np.ndarray, bool]]:
    """name → (axis label, values, log x) of the plotted observables."""
    from hepgen.metrics.features.jets import substructure

    particles = np.asarray(particles, dtype=np.float64)
    mask = particles[..., 3] > 0.5
    sub = substructure(particles)
    out = {
        "mass_rel": (r"relative jet mass $m/p_T$ (constituents)", sub["mass_rel"], False),
        "pt_rel": (r"particle $p_T^\mathrm{rel}$", particles[..., 2][mask], True),
        "eta_rel": (r"particle $\eta^\mathrm{rel}$", particles[..., 0][mask], False),
        "phi_rel": (r"particle $\phi^\mathrm{rel}$", particles[..., 1][mask], False),
        "multiplicity": ("particle multiplicity", mask.sum(1).astype(np.float64), False),
    }
    if jets is not None:
        out["jet_mass"] = ("jet mass [GeV] (stored)", np.asarray(jets, dtype=np.float64)[:, 2], False)
    return out


def _edges(reference: np.ndarray, generated: np.ndarray, log: bool, discrete: bool, bins: int = 50):
    if discrete:
        lo = min(reference.min(), generated.min())
        hi = max(reference.max(), generated.max())
        return np.arange(np.floor(lo) - 0.5, np.ceil(hi) + 1.5)
    if log:
        ref = reference[reference > 0]
        lo, hi = np.quantile(ref, [0.001, 0.999]) if len(ref) else (1e-4, 1.0)
        return np.geomspace(max(lo, 1e-6), hi, bins + 1)
    lo, hi = np.quantile(reference, [0.001, 0.999])
    if hi <= lo:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1)


def comparison_figure(label, reference, generated, log=False, discrete=False, names=("reference", "generated")):
    """Normalised histograms of both samples, generated/reference below with the
    reference's statistical band."""
    from hepgen.metrics.plots import _margins, style, subplots

    edges = _edges(reference, generated, log, discrete)
    with style():
        fig, (main, ratio) = subplots(2, 1, figsize=(7, 6.5), sharex=True, gridspec_kw={"height_ratios": (3, 1)})
        _margins(fig, hspace=0.06)
        # Values outside the range are clipped into the outer bins so nothing vanishes.
        ref_counts, _ = np.histogram(np.clip(reference, edges[0], edges[-1]), edges)
        gen_counts, _ = np.histogram(np.clip(generated, edges[0], edges[-1]), edges)
        ref_norm = ref_counts / max(ref_counts.sum(), 1)
        gen_norm = gen_counts / max(gen_counts.sum(), 1)
        main.stairs(ref_norm, edges, color=REFERENCE_COLOR, lw=2, label=f"{names[0]} ({len(reference)})")
        main.stairs(gen_norm, edges, color=GENERATED_COLOR, lw=2, label=f"{names[1]} ({len(generated)})")
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio.stairs(gen_norm / ref_norm, edges, color=GENERATED_COLOR, lw=2)
            rel = np.where(ref_counts > 0, 1 / np.sqrt(ref_counts), np.nan)
        ratio.stairs(1 + rel, edges, baseline=1 - rel, fill=True, color="grey", alpha=0.3)
        ratio.axhline(1, color="grey", lw=1)
        ratio.set_ylim(0.5, 1.5)
        ratio.set_ylabel(f"{names[1]} / {names[0]}", fontsize="small")
        ratio.set_xlabel(label)
        main.set_ylabel("fraction per bin")
        main.legend(fontsize="small")
        if log:
            main.set_xscale("log")
    return fig


def write_jet_report(
    result: JetMetrics,
    generated,
    reference,
    out_dir,
    *,
    overwrite: bool = False,
    inputs: dict | None = None,
    command: str | None = None,
) -> Path:
    """Write the metrics table (Markdown and JSON) and the comparison figures."""
    from hepgen import __version__
    from hepgen.metrics.jets import _split

    out_dir = check_output(out_dir, overwrite)
    gen_particles, gen_jets = _split(generated, "generated")
    ref_particles, ref_jets = _split(reference, "reference")
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        (staging / "figures").mkdir()
        gen_d = distributions(gen_particles, gen_jets)
        ref_d = distributions(ref_particles, ref_jets)
        figures = {}
        for name, (label, ref_values, log) in ref_d.items():
            if name not in gen_d:
                continue
            fig = comparison_figure(label, ref_values, gen_d[name][1], log=log, discrete=(name == "multiplicity"))
            path = Path("figures") / f"{name}.png"
            fig.savefig(staging / path, dpi=110)
            figures[name] = str(path)
        data = {
            "hepgen_version": __version__,
            "inputs": inputs or {},
            "command": command,
            **result.to_dict(),
            "figures": figures,
        }
        (staging / "metrics.json").write_text(json.dumps(data, indent=2) + "\n")
        (staging / "report.md").write_text(_markdown(result, figures, inputs or {}, command))
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return out_dir


def _markdown(result: JetMetrics, figures: dict, inputs: dict, command: str | None) -> str:
    lines = ["# Jet metrics: generated vs reference", ""]
    for role, path in inputs.items():
        lines.append(f"- {role}: `{path}`")
    lines += [
        f"- jets: {result.n_generated} generated, {result.n_reference} reference",
        f"- settings: {', '.join(f'{k}={v}' for k, v in result.settings.items())}",
        "",
    ]
    if command:
        lines += ["Reproduce with:", "", "```bash", command, "```", ""]
    lines += [
        result.markdown_table(),
        "",
        "Errors are jetnet's: the standard deviation over resamples for the W1 metrics, the "
        "fit error of the extrapolation to infinite sample size for FPD, half the 68% "
        "spread over batches for KPD. Values are multiplied by the scale shown (the "
        "papers' convention). W1 has a positive floor of order spread/√n even for "
        "identical samples; jetnet recommends 50 000 jets per sample.",
        "",
    ]
    if result.n_generated < 50_000 or result.n_reference < 50_000:
        lines += [
            f"Note: fewer than jetnet's recommended 50 000 jets per sample; W1 resamples of "
            f"{result.settings.get('n_eval')} jets.",
            "",
        ]
    for name, path in figures.items():
        lines += [f"![{name}]({path})", ""]
    return "\n".join(lines)


__all__ = ["LABELS", "SCALES", "comparison_figure", "distributions", "write_jet_report"]
