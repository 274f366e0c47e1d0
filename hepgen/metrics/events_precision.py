"""Precision of generated events against held-out truth: the 1-Wasserstein distance of the
dimuon mass and of Delta R_j1j2 (per ensemble member: mean and spread), next to the same
distance between two halves of the truth (the statistical floor of the comparison).

Values are first clipped to the truth's 0.1-99.9% quantile range, as the histograms' outer
bins collect overflow: W1 is linear in outliers, and a handful of wild events (1e8 GeV from a
poorly trained tail) would otherwise be the whole number.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

from hepgen.metrics.events_observables import PRECISION, observable_values

QUANTILE = 0.001


def _finite(v):
    return v[np.isfinite(v)]


def precision(truth, sample, members=None, names=PRECISION) -> dict:
    """name -> {"w1": pooled W1, "w1_members": [per member], "floor": truth-half W1}."""
    truth_obs = observable_values(truth, names)
    gen_obs = observable_values(sample, names)
    members = np.zeros(len(sample), dtype=int) if members is None else np.asarray(members)
    out = {}
    for name in names:
        if name not in truth_obs or name not in gen_obs:
            continue
        t = _finite(truth_obs[name][1])
        if len(t) < 10:
            continue
        low, high = np.quantile(t, [QUANTILE, 1 - QUANTILE])
        t = np.clip(t, low, high)
        g = np.clip(gen_obs[name][1], low, high)  # NaN (undefined) stays NaN
        if len(_finite(g)) == 0:
            continue
        per_member = [
            wasserstein_distance(_finite(g[members == m]), t)
            for m in np.unique(members)
            if len(_finite(g[members == m]))
        ]
        half = len(t) // 2
        out[name] = {
            "w1": float(wasserstein_distance(_finite(g), t)),
            "w1_members": [float(v) for v in per_member],
            "floor": float(wasserstein_distance(t[:half], t[half:])),
        }
    return out


def precision_table(results: dict, info: dict | None = None) -> str:
    """Markdown table: per model, W1 of each observable (ensembles: mean +- std over the
    members), and where ``info[label]`` gives them (see :func:`hepgen.models.events.files.run_info`)
    the training time and epochs, the final validation loss and the sampling time per 10^5 events."""
    info = info or {}
    names = [n for n in PRECISION if any(n in r for r in results.values())]
    timing = any(info.values())
    columns = (
        ["training: epochs, wall (CPU)", "val. loss", "sampling per 1e5 events: wall (CPU)"] if timing else []
    ) + [f"W1 {UNITS.get(n, n)}" for n in names]
    header = "| model | " + " | ".join(columns) + " |\n" + "|---|" + "---|" * len(columns) + "\n"
    rows = []
    for label, result in results.items():
        cells = []
        if timing:
            i = info.get(label) or {}
            cells.append(
                f"{i['epochs']}, {_seconds(i, 'train_seconds', 'train_cpu_seconds')}" if "train_seconds" in i else "-"
            )
            cells.append(f"{i['val_loss']:.4g}" if "val_loss" in i else "-")
            cells.append(_seconds(i, "seconds_per_1e5", "cpu_seconds_per_1e5") if "seconds_per_1e5" in i else "-")
        for n in names:
            r = result.get(n)
            if r is None:
                cells.append("-")
            elif len(r["w1_members"]) > 1:
                m = np.asarray(r["w1_members"])
                cells.append(f"{m.mean():.3g} ± {m.std(ddof=1):.2g} ({len(m)} members)")
            else:
                cells.append(f"{r['w1']:.3g}")
        rows.append(f"| {label} | " + " | ".join(cells) + " |\n")
    floor = next(iter(results.values()), {})
    rows.append(
        "| truth: half vs half (floor) | "
        + " | ".join(["-"] * (3 if timing else 0) + [f"{floor[n]['floor']:.3g}" if n in floor else "-" for n in names])
        + " |\n"
    )
    return header + "".join(rows)


def _seconds(info: dict, wall: str, cpu: str) -> str:
    text = f"{info[wall]:.3g} s"
    return text + (f" ({info[cpu]:.3g} s)" if cpu in info else "")


UNITS = {"m_mumu": "M_μμ [GeV]", "dr_j1j2": "ΔR_j1j2"}
