"""Truth vs generated histograms of the standard observables with Bayesian uncertainty
bands and ratio panels (matplotlib, mplhep style where installed). Figures are
``matplotlib.figure.Figure`` objects saved directly: no pyplot, no backend switched.

A generated file may hold an ensemble (dataset 'member'): the band is the per-bin spread
(standard deviation) of the normalised histograms of the members, i.e. the uncertainty of
the Bayesian network; the line is the histogram of all members together. The truth band in
the ratio panel is its Poisson error.
"""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from hepgen.metrics.events_observables import PLOTTED, bins_for, observable_values
from hepgen.metrics.plots import style
from hepgen.metrics.separation import histogram

COLORS = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf")


def member_densities(values: np.ndarray, members: np.ndarray, edges: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(pooled density [bins], per-member densities [K, bins]); densities are normalised to
    the events with the observable defined (unit area over the bins, overflow included)."""
    widths = np.diff(edges)

    def density(v):
        v = v[np.isfinite(v)]
        if len(v) == 0:
            return np.zeros(len(widths))
        return histogram(v, edges) / (len(v) * widths)

    per_member = np.stack([density(values[members == m]) for m in np.unique(members)])
    return density(values), per_member


def observable_figure(label: str, edges: np.ndarray, truth: np.ndarray, models: list, log: bool):
    """One figure: truth and each model (label, values, members) on top, ratios below."""
    widths = np.diff(edges)
    finite = truth[np.isfinite(truth)]
    counts = histogram(finite, edges)
    truth_density = counts / (len(finite) * widths)
    truth_rel = np.divide(1.0, np.sqrt(counts), out=np.zeros_like(counts), where=counts > 0)
    with style():
        fig = Figure(figsize=(7, 6.5))
        top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": (3, 1), "hspace": 0.06})
        top.stairs(truth_density, edges, color="black", lw=2, label="truth")
        bottom.stairs(1 + truth_rel, edges, baseline=1 - truth_rel, fill=True, color="black", alpha=0.15)
        bottom.axhline(1, color="black", lw=1)
        for (name, values, members), color in zip(models, COLORS):
            pooled, per_member = member_densities(values, members, edges)
            top.stairs(pooled, edges, color=color, lw=1.5, label=name)
            ratio = np.divide(pooled, truth_density, out=np.full_like(pooled, np.nan), where=truth_density > 0)
            bottom.stairs(ratio, edges, color=color, lw=1.5)
            if len(per_member) > 1:
                mean, spread = per_member.mean(0), per_member.std(0, ddof=1)
                top.stairs(mean + spread, edges, baseline=mean - spread, fill=True, color=color, alpha=0.3)
                lo = np.divide(mean - spread, truth_density, out=np.full_like(mean, np.nan), where=truth_density > 0)
                hi = np.divide(mean + spread, truth_density, out=np.full_like(mean, np.nan), where=truth_density > 0)
                bottom.stairs(hi, edges, baseline=lo, fill=True, color=color, alpha=0.3)
        if log:
            top.set_xscale("log")
        top.set_ylabel("normalised")
        top.legend(
            fontsize="small",
            title="band: Bayesian ensemble spread" if any(len(np.unique(m)) > 1 for _, _, m in models) else None,
            title_fontsize="x-small",
        )
        bottom.set_ylim(0.5, 1.5)
        bottom.set_ylabel("model / truth")
        bottom.set_xlabel(label)
        fig.subplots_adjust(left=0.14, right=0.97, top=0.97, bottom=0.11)
    return fig


def write_plots(truth, generated: dict, directory, names=PLOTTED, progress=None) -> list:
    """One PNG per observable in ``directory``: truth vs every generated sample.
    ``generated``: label -> (EventSample, members (N,) or None)."""
    from pathlib import Path

    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    truth_obs = observable_values(truth, names)
    model_obs = {
        label: (
            observable_values(sample, names),
            np.zeros(len(sample), dtype=int) if members is None else np.asarray(members),
        )
        for label, (sample, members) in generated.items()
    }
    written = []
    items = list(truth_obs.items())
    for name, (label, values, log) in items if progress is None else progress(items, "plots"):
        edges = bins_for(name, values, log)
        if edges is None:
            continue
        models = [(m, obs[name][1], members) for m, (obs, members) in model_obs.items() if name in obs]
        fig = observable_figure(label, edges, values, models, log)
        path = directory / f"{name}.png"
        fig.savefig(path, dpi=110)
        written.append(path)
    return written
