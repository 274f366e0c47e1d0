"""The report's figures: weight distributions, calibration, weight slices, reweighting.

Every function returns a :class:`matplotlib.figure.Figure` on an Agg canvas, made without
pyplot: no display, no global figure registry, and no switch of the backend that would
change how a user's own plots are shown. The caller saves it (:func:`save`); it is freed
with its last reference. mplhep's style is used where installed.
"""

from __future__ import annotations

import matplotlib.style
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from hepgen.metrics.separation import histogram

TRUTH_COLOR = "black"
GENERATED_COLOR = "#d62728"
REWEIGHTED_COLOR = "#1f77b4"
# Over-populated (w < 0.5), about right, under-populated (w ≥ 2).
SLICE_COLORS = ("#d95f02", "#bbbbbb", "#1b9e77", "#7570b3", "#e7298a")


# Font sizes for figures of ~7 inches: mplhep's styles are made for 10-inch figures,
# whose labels would not fit here. Mathtext in DejaVu avoids a search for a cursive font.
_SIZES = {
    "font.size": 12,
    "axes.labelsize": 13,
    "axes.titlesize": 13,
    "legend.fontsize": 10,
    "xtick.labelsize": 11,
    "ytick.labelsize": 11,
    "mathtext.fontset": "dejavusans",
}


def style():
    """Context with mplhep's ROOT-like style (if installed) at sizes fit for these figures."""
    styles = []
    try:
        import mplhep

        styles.append(mplhep.style.ROOT)
    except ImportError:
        pass
    return matplotlib.style.context([*styles, _SIZES])


def subplots(nrows: int = 1, ncols: int = 1, **kwargs):
    """(figure, axes) like ``pyplot.subplots``, on an Agg canvas of its own (no pyplot state).

    ``figsize`` goes to the figure, everything else to :meth:`Figure.subplots`.
    """
    fig = Figure(figsize=kwargs.pop("figsize", None))
    FigureCanvasAgg(fig)
    return fig, fig.subplots(nrows, ncols, **kwargs)


def weight_histograms(generated_weights, truth_weights=None):
    """w of the held-out samples, on a linear axis (0 to 3) and on a log axis."""
    with style():
        fig, (lin, log) = subplots(1, 2, figsize=(12, 5))
        _margins(fig, wspace=0.25)
        samples = [("generated", generated_weights, GENERATED_COLOR)]
        if truth_weights is not None:
            samples.append(("truth", truth_weights, TRUTH_COLOR))
        for name, w, color in samples:
            lin.hist(
                np.clip(w, 0, 3),
                bins=np.linspace(0, 3, 61),
                histtype="step",
                lw=2,
                color=color,
                label=f"{name} (mean {np.mean(w):.3g})",
            )
            log_w = np.log10(np.clip(w, 1e-4, 1e4))
            log.hist(log_w, bins=np.linspace(-4, 4, 81), histtype="step", lw=2, color=color, label=name)
        lin.axvline(1, color="grey", ls="--", lw=1)
        log.axvline(0, color="grey", ls="--", lw=1)
        lin.set_xlabel(r"weight $w = D/(1-D)$ (last bin: $w \geq 3$)")
        log.set_xlabel(r"$\log_{10} w$ (clipped to $\pm 4$)")
        log.set_yscale("log")
        for ax in (lin, log):
            ax.set_ylabel("held-out samples")
            ax.legend(fontsize="small")
    return fig


def calibration_curve(raw_curve, calibrated_curve, probabilities, labels, min_count=20):
    """Reliability curves before and after calibration, and the held-out D distributions.

    Bins with fewer than ``min_count`` samples are left out; error bars are binomial.
    """
    with style():
        fig, (curve, dist) = subplots(1, 2, figsize=(12, 5))
        _margins(fig, wspace=0.25)
        curve.plot([0, 1], [0, 1], color="grey", ls="--", lw=1, label="perfectly calibrated")
        for (predicted, observed, counts), name, color in (
            (raw_curve, "network output", GENERATED_COLOR),
            (calibrated_curve, "after calibration", REWEIGHTED_COLOR),
        ):
            keep = counts >= min_count
            error = np.sqrt(observed[keep] * (1 - observed[keep]) / counts[keep])
            curve.errorbar(
                predicted[keep], observed[keep], yerr=error, fmt="o-", color=color, label=name, ms=4, capsize=2
            )
        curve.set_xlabel("predicted D = P(truth)")
        curve.set_ylabel("truth fraction (classes balanced)")
        curve.set_xlim(0, 1)
        curve.set_ylim(0, 1)
        curve.legend(fontsize="small")
        edges = np.linspace(0, 1, 51)
        for label, name, color in ((1, "truth", TRUTH_COLOR), (0, "generated", GENERATED_COLOR)):
            dist.hist(
                probabilities[labels == label], bins=edges, histtype="step", lw=2, color=color, label=name, density=True
            )
        dist.set_xlabel("calibrated D on held-out samples")
        dist.set_ylabel("density")
        dist.legend(fontsize="small")
    return fig


def weight_slices(label, edges, truth_values, generated_values, generated_slices, slice_names, log=False):
    """Generated samples stacked by weight slice, against the truth histogram.

    Each slice is normalised as a share of all generated samples, so the stack adds up to
    the generated histogram and shows which slice makes up each region.
    """
    with style():
        fig, ax = subplots(figsize=(7, 5.5))
        _margins(fig)
        scale = 1.0 / max(len(generated_values), 1)
        stacked = [histogram(generated_values[generated_slices == k], edges) * scale for k in range(len(slice_names))]
        bottom = np.zeros(len(edges) - 1)
        for k, (counts, name) in enumerate(zip(stacked, slice_names)):
            ax.stairs(
                bottom + counts,
                edges,
                baseline=bottom,
                fill=True,
                alpha=0.85,
                color=SLICE_COLORS[k % len(SLICE_COLORS)],
                label=f"generated, {name}",
            )
            bottom = bottom + counts
        truth = histogram(truth_values, edges) / max(len(truth_values), 1)
        ax.stairs(truth, edges, color=TRUTH_COLOR, lw=2, label="truth")
        ax.set_xlabel(label)
        ax.set_ylabel("fraction of samples per bin")
        if log:
            _log_x(ax)
        ax.legend(fontsize="x-small")
    return fig


def reweighted_histogram(label, edges, truth_values, generated_values, generated_weights, log=False):
    """Truth, generated and generated reweighted by w, with ratios to truth below."""
    with style():
        fig, (main, ratio) = subplots(
            2,
            1,
            figsize=(7, 6.5),
            sharex=True,
            gridspec_kw={"height_ratios": (3, 1)},
        )
        _margins(fig, hspace=0.06)
        truth = histogram(truth_values, edges)
        truth_norm = truth / truth.sum()
        generated = histogram(generated_values, edges)
        reweighted = histogram(generated_values, edges, weights=generated_weights)
        main.stairs(truth_norm, edges, color=TRUTH_COLOR, lw=2, label="truth")
        for counts, name, color, ls in (
            (generated, "generated", GENERATED_COLOR, "-"),
            (reweighted, "generated × w", REWEIGHTED_COLOR, "--"),
        ):
            main.stairs(counts / counts.sum(), edges, color=color, lw=2, ls=ls, label=name)
            with np.errstate(divide="ignore", invalid="ignore"):
                ratio.stairs((counts / counts.sum()) / truth_norm, edges, color=color, lw=2, ls=ls)
        # Statistical band of the truth histogram, relative.
        with np.errstate(divide="ignore", invalid="ignore"):
            rel = np.where(truth > 0, 1 / np.sqrt(truth), np.nan)
        ratio.stairs(1 + rel, edges, baseline=1 - rel, fill=True, color="grey", alpha=0.3)
        ratio.axhline(1, color="grey", lw=1)
        ratio.set_ylim(0.5, 1.5)
        ratio.set_ylabel("ratio to truth")
        ratio.set_xlabel(label)
        main.set_ylabel("fraction of samples per bin")
        main.legend(fontsize="small")
        if log:
            _log_x(main)
    return fig


def _margins(fig, **spacing) -> None:
    # Fixed margins rather than a layout engine: constrained layout doubles the time of
    # a figure, and a report draws dozens.
    fig.subplots_adjust(left=0.12, right=0.97, top=0.96, bottom=0.12, **spacing)


def _log_x(ax) -> None:
    """Log x axis with plain numbers (50, 100, 200) rather than powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    ax.set_xscale("log")
    plain = FuncFormatter(lambda value, _: f"{value:g}")
    ax.xaxis.set_major_formatter(plain)
    low, high = ax.get_xlim()
    # Minor labels (20, 30, 50) help within a decade and crowd each other across several.
    if high / low < 15:
        ax.xaxis.set_minor_formatter(plain)
        ax.tick_params(axis="x", which="minor", labelsize="x-small")
    else:
        ax.xaxis.set_minor_formatter(NullFormatter())


def save(fig, path) -> None:
    """Write ``fig`` as PNG."""
    fig.savefig(path, dpi=100)
