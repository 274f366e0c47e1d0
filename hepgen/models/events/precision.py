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


def precision_table(results: dict) -> str:
    """Markdown table: per model, W1 of each observable (ensembles: mean +- std over members)."""
    names = [n for n in PRECISION if any(n in r for r in results.values())]
    header = "| model | " + " | ".join(f"W1 {n}" for n in names) + " |\n"
    header += "|---|" + "---|" * len(names) + "\n"
    rows = []
    for label, result in results.items():
        cells = []
        for n in names:
            r = result.get(n)
            if r is None:
                cells.append("-")
            elif len(r["w1_members"]) > 1:
                m = np.asarray(r["w1_members"])
                cells.append(f"{m.mean():.4f} ± {m.std(ddof=1):.4f} ({len(m)} members)")
            else:
                cells.append(f"{r['w1']:.4f}")
        rows.append(f"| {label} | " + " | ".join(cells) + " |\n")
    floor = next(iter(results.values()), {})
    rows.append("| truth half vs half (floor) | " + " | ".join(
        f"{floor[n]['floor']:.4f}" if n in floor else "-" for n in names) + " |\n")
    return header + "".join(rows)
