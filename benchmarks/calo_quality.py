"""Per-incident-energy quality table of generated showers against truth showers.

For each incident energy present in both files: E_tot / E_inc (mean ± std), each layer's
share of the deposited energy, the fraction of showers with an empty layer 0, and the
CaloChallenge separation power (½ Σ (h₁ − h₂)² / (h₁ + h₂), 30 bins from the truth) of
E_tot / E_inc, of each layer's energy and of the x width of layers 1 and 2.

    python benchmarks/calo_quality.py --truth truth.h5 --generated gen.h5 [--markdown out.md]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from hepgen.data import CaloGeometry, read_showers
from hepgen.metrics.separation import common_bins, histogram, separation_power


def _separation(truth, generated, log=False):
    log = log and (truth > 0).mean() > 0.5  # mostly-empty layers: linear bins
    edges = common_bins(truth, 30, log=log)
    return separation_power(histogram(truth, edges), histogram(generated, edges))


def table(truth_path, generated_path) -> str:
    truth, gen = read_showers(truth_path), read_showers(generated_path)
    geometry = CaloGeometry.photons()
    if truth.showers.shape[1] != geometry.n_voxels or gen.showers.shape[1] != geometry.n_voxels:
        raise ValueError(f"both files must hold dataset-1 photon showers ({geometry.n_voxels} voxels)")
    et, eg = truth.incident_energies[:, 0], gen.incident_energies[:, 0]
    energies = sorted(set(np.unique(et)) & set(np.unique(eg)))
    if not energies:
        raise ValueError("the two files share no incident energy")
    ids = geometry.layer_ids
    head = (
        "| E_inc (MeV) | n truth / gen | E_tot/E_inc truth | E_tot/E_inc gen | layer shares truth | "
        "layer shares gen | layer 0 empty t / g | sep E_tot/E_inc | sep layer energies "
        f"({', '.join(map(str, ids))}) | sep width x layer 1, 2 |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for e in energies:
        t, g = truth.showers[et == e].astype(np.float64), gen.showers[eg == e].astype(np.float64)
        lt, lg = geometry.layer_energies(t), geometry.layer_energies(g)
        rt, rg = t.sum(1) / e, g.sum(1) / e
        wt, wg = geometry.widths(t)[0], geometry.widths(g)[0]
        seps = [_separation(lt[:, k], lg[:, k], log=True) for k in range(len(ids))]
        lines.append(
            f"| {e:.0f} | {len(t)} / {len(g)} | {rt.mean():.3f} ± {rt.std():.3f} | {rg.mean():.3f} ± {rg.std():.3f} | "
            f"{' '.join(f'{v:.3f}' for v in lt.sum(0) / lt.sum())} | {' '.join(f'{v:.3f}' for v in lg.sum(0) / lg.sum())} | "  # noqa: E501 (a table row / log line reads better whole)
            f"{(lt[:, 0] <= 0).mean():.2f} / {(lg[:, 0] <= 0).mean():.2f} | {_separation(rt, rg):.3f} | "
            f"{' '.join(f'{v:.3f}' for v in seps)} | "
            f"{_separation(wt[:, 1], wg[:, 1]):.3f} {_separation(wt[:, 2], wg[:, 2]):.3f} |"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--truth", required=True, help="CaloChallenge-layout HDF5 file (reference)")
    parser.add_argument("--generated", required=True, help="CaloChallenge-layout HDF5 file (model)")
    parser.add_argument("--markdown", help="also write the table to this file")
    args = parser.parse_args(argv)
    text = table(args.truth, args.generated)
    print(text)
    if args.markdown:
        with open(args.markdown, "w") as f:
            f.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
