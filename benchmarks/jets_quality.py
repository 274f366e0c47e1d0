"""Physics check of generated jets against held-out Pythia jets (the shipped-model figures of
docs/jets.md): jet mass from the constituents, its W1 distance, particle-feature W1s, plots.

    python benchmarks/jets_quality.py HELD_OUT.h5 GENERATED.h5 [GENERATED2.h5 ...] --plot jets.png

The mass is that of the stored constituents (massless, relative coordinates) times the jet
pT, the same for both files: m = m_rel · pT. W1 (scipy.stats.wasserstein_distance) is shown
next to the W1 between two halves of the held-out set, the value a perfect model would reach
at half the sample size. jetnet's W1M/FPD/KPD come with the `eval` extra (hepgen.metrics).
"""

from __future__ import annotations

import argparse
import json

import numpy as np
from scipy.stats import wasserstein_distance

from hepgen.data import read_jets
from hepgen.models.epic import relative_mass

TOP_WINDOW = (140.0, 200.0)  # GeV, around m_t = 173 GeV


def summary(sample) -> dict:
    m = relative_mass(sample.particles) * sample.jets[:, 0]
    real = sample.mask
    return {
        "mass": m,
        "eta_rel": sample.particles[..., 0][real],
        "phi_rel": sample.particles[..., 1][real],
        "pt_rel": sample.particles[..., 2][real],
        "n": sample.mask.sum(1),
    }


def compare(truth: dict, gen: dict) -> dict:
    m = gen["mass"]
    out = {
        "jets": int(len(m)),
        "mass_median": float(np.median(m)),
        "mass_mean": float(m.mean()),
        "mass_std": float(m.std()),
        "top_window_fraction": float(np.mean((m > TOP_WINDOW[0]) & (m < TOP_WINDOW[1]))),
        "w1_mass": float(wasserstein_distance(truth["mass"], m)),
    }
    for k in ("eta_rel", "phi_rel", "pt_rel", "n"):
        out[f"w1_{k}"] = float(wasserstein_distance(truth[k], gen[k]))
    out["pt_rel_negative_fraction"] = float(np.mean(gen["pt_rel"] < 0))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("truth")
    ap.add_argument("generated", nargs="+")
    ap.add_argument("--plot", help="PNG with mass and particle-feature histograms")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    held_out = read_jets(args.truth)
    truth = summary(held_out)
    half = len(held_out) // 2
    a = summary(type(held_out)(held_out.particles[:half], held_out.jets[:half]))
    b = summary(type(held_out)(held_out.particles[half:], held_out.jets[half:]))
    results = {"held-out (half vs half)": compare(a, b), "held-out": compare(truth, truth)}
    gens = {}
    for path in args.generated:
        gens[path] = summary(read_jets(path))
        results[path] = compare(truth, gens[path])
    keys = [
        "jets",
        "mass_median",
        "mass_mean",
        "mass_std",
        "top_window_fraction",
        "w1_mass",
        "w1_eta_rel",
        "w1_phi_rel",
        "w1_pt_rel",
        "w1_n",
        "pt_rel_negative_fraction",
    ]
    print("| sample | " + " | ".join(keys) + " |")
    print("|---" * (len(keys) + 1) + "|")
    for name, r in results.items():
        print(f"| {name} | " + " | ".join(f"{r[k]:.4g}" for k in keys) + " |")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
        specs = [
            ("mass", np.linspace(0, 300, 61), "jet mass of the constituents [GeV]"),
            ("eta_rel", np.linspace(-0.8, 0.8, 65), r"$\eta^{rel}$"),
            ("phi_rel", np.linspace(-0.8, 0.8, 65), r"$\phi^{rel}$"),
            ("pt_rel", np.logspace(-4, 0, 65), r"$p_T^{rel}$"),
        ]
        for ax, (key, bins, label) in zip(axes, specs):
            ax.hist(
                truth[key],
                bins=bins,
                density=True,
                histtype="stepfilled",
                alpha=0.3,
                color="k",
                label="Pythia (held out)",
            )
            for path, g in gens.items():
                ax.hist(g[key], bins=bins, density=True, histtype="step", lw=1.5, label=path.split("/")[-1])
            ax.set_xlabel(label)
            if key == "pt_rel":
                ax.set_xscale("log")
                ax.set_yscale("log")
        axes[0].axvline(173, color="gray", ls=":", lw=1)
        axes[0].legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.plot, dpi=110)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
