"""Precision of generated events against held-out truth: the 1-Wasserstein distance of the
dimuon mass and of Delta R_j1j2 (per ensemble member: mean and spread), next to the same
distance between two halves of the truth (the statistical floor of the comparison)."""

from __future__ import annotations

import numpy as np
from scipy.stats import wasserstein_distance

from hepgen.models.events.observables import PRECISION, observable_values


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
        g = gen_obs[name][1]
        if len(t) < 10 or len(_finite(g)) == 0:
            continue
        per_member = [wasserstein_distance(_finite(g[members == m]), t) for m in np.unique(members)
                      if len(_finite(g[members == m]))]
        half = len(t) // 2
        out[name] = {"w1": float(wasserstein_distance(_finite(g), t)),
                     "w1_members": [float(v) for v in per_member],
                     "floor": float(wasserstein_distance(t[:half], t[half:]))}
    return out


def precision_table(results: dict, info: dict | None = None) -> str:
    """Markdown table: per model, W1 of each observable (ensembles: mean +- std over the
    members), and where ``info[label]`` gives them (see :func:`hepgen.models.events.files.run_info`)
    the training time and epochs, the final validation loss and the sampling time per 10^5 events."""
    info = info or {}
    names = [n for n in PRECISION if any(n in r for r in results.values())]
    timing = any(info.values())
    columns = (["training", "val. loss", "sampling [s / 1e5 events]"] if timing else []) + \
        [f"W1 {UNITS.get(n, n)}" for n in names]
    header = "| model | " + " | ".join(columns) + " |\n" + "|---|" + "---|" * len(columns) + "\n"
    rows = []
    for label, result in results.items():
        cells = []
        if timing:
            i = info.get(label) or {}
            cells.append(f"{i['train_seconds']:.3g} s, {i['epochs']} epochs" if "train_seconds" in i else "-")
            cells.append(f"{i['val_loss']:.4g}" if "val_loss" in i else "-")
            cells.append(f"{i['seconds_per_1e5']:.1f}" if "seconds_per_1e5" in i else "-")
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
    rows.append("| truth: half vs half (floor) | " + " | ".join(
        ["-"] * (3 if timing else 0) + [f"{floor[n]['floor']:.3g}" if n in floor else "-" for n in names]) + " |\n")
    return header + "".join(rows)


UNITS = {"m_mumu": "M_μμ [GeV]", "dr_j1j2": "ΔR_j1j2"}
