"""Z(→μμ) + jets events: classifier inputs per jet multiplicity, and observables.

Inputs follow the paper's event classifier: pT (as log pT) and η of every object, Δφ to
the leading muon, the jet masses, M_μμ, and min(1/ΔR_jj, 20) for each jet pair.

One classifier per jet multiplicity, as in the paper, rather than the multiplicity as an
input: absent jets have no kinematics, and zero padding would put spikes into the inputs
from which the classifier learns the multiplicity instead of the shapes. The
multiplicity distribution itself enters exactly, through the count ratio of each group
(see :mod:`hepgen.metrics.classify`).
"""

from __future__ import annotations

import numpy as np

from hepgen.metrics._checks import check_finite
from hepgen.metrics.classify import InputGroup
from hepgen.metrics.features.observable import Observable
from hepgen.metrics.training import ClassifierConfig

KEYS = ("muons", "jets", "n_jets")
CLASSIFIER = ClassifierConfig(hidden_layers=5, hidden_units=256)

# 1/ΔR_jj is capped: jets are at least ΔR ≈ 0.4 apart, and a cap keeps a rare collinear
# pair from dominating the input's standardisation.
INVERSE_DELTA_R_CAP = 20.0


def read(path):
    from hepgen.data.events import read_events

    return read_events(path)


def arrays(sample):
    """(muons (N, 2, 4), jets (N, J, 4), n_jets (N,)) as float64/int64, checked."""
    muons = np.asarray(sample.muons, dtype=np.float64)
    jets = np.asarray(sample.jets, dtype=np.float64)
    n_jets = np.asarray(sample.n_jets)
    if muons.ndim != 3 or muons.shape[1:] != (2, 4):
        raise ValueError(f"muons: expected shape (N, 2, 4), got {muons.shape}")
    if jets.ndim != 3 or jets.shape[0] != muons.shape[0] or jets.shape[2] != 4:
        raise ValueError(f"jets: expected shape ({muons.shape[0]}, J, 4), got {jets.shape}")
    if n_jets.shape != (muons.shape[0],):
        raise ValueError(f"n_jets: expected shape ({muons.shape[0]},), got {n_jets.shape}")
    check_finite(muons, "muons")
    check_finite(jets, "jets")
    check_finite(n_jets.astype(np.float64), "n_jets")
    if np.any(n_jets != np.round(n_jets)) or n_jets.min(initial=0) < 0 or n_jets.max(initial=0) > jets.shape[1]:
        raise ValueError(f"n_jets: expected integers in [0, {jets.shape[1]}]")
    return muons, jets, n_jets.astype(np.int64)


def check_compatible(truth, generated) -> None:
    """Nothing to check beyond the kind: multiplicities are matched group by group."""
    arrays(truth)
    arrays(generated)


def group_name(n_jets: int) -> str:
    return f"{n_jets} jet" if n_jets == 1 else f"{n_jets} jets"


def classifier_inputs(sample) -> list[InputGroup]:
    """One :class:`InputGroup` per jet multiplicity present in ``sample``."""
    muons, jets, n_jets = arrays(sample)
    groups = []
    for n in np.unique(n_jets):
        rows = np.flatnonzero(n_jets == n)
        objects = np.concatenate([muons[rows], jets[rows, :n]], axis=1)
        names = ["mu1", "mu2"] + [f"j{k + 1}" for k in range(n)]
        columns, labels = [], []
        for i, name in enumerate(names):
            columns += [np.log(np.maximum(objects[:, i, 0], 1e-3)), objects[:, i, 1]]
            labels += [f"log_pt_{name}", f"eta_{name}"]
            if i > 0:
                columns.append(_delta_phi(objects[:, i, 2], objects[:, 0, 2]))
                labels.append(f"dphi_{name}_mu1")
        for k in range(n):
            columns.append(objects[:, 2 + k, 3])
            labels.append(f"m_j{k + 1}")
        columns.append(_invariant_mass(objects[:, 0], objects[:, 1]))
        labels.append("m_mumu")
        for a in range(n):
            for b in range(a + 1, n):
                dr = _delta_r(objects[:, 2 + a], objects[:, 2 + b])
                columns.append(np.minimum(1.0 / np.maximum(dr, 1e-12), INVERSE_DELTA_R_CAP))
                labels.append(f"inv_dr_j{a + 1}j{b + 1}")
        groups.append(InputGroup(group_name(int(n)), tuple(labels), np.stack(columns, 1), rows))
    return groups


def observables(sample) -> list[Observable]:
    """Muon and jet kinematics, M_μμ, the jet count and the jet-pair distances."""
    muons, jets, n_jets = arrays(sample)
    out = []
    for i in range(2):
        out.append(Observable(f"pt_mu{i + 1}", rf"$p_{{T,\mu_{i + 1}}}$ [GeV]", muons[:, i, 0], log=True))
        out.append(Observable(f"eta_mu{i + 1}", rf"$\eta_{{\mu_{i + 1}}}$", muons[:, i, 1]))
    out.append(Observable("m_mumu", r"$M_{\mu\mu}$ [GeV]", _invariant_mass(muons[:, 0], muons[:, 1])))
    out.append(Observable("n_jets", r"$n_\mathrm{jets}$", n_jets.astype(np.float64), discrete=True))
    n_slots = jets.shape[1]
    for k in range(n_slots):
        present = n_jets > k

        def masked(values):
            return np.where(present, values, np.nan)

        out.append(Observable(f"pt_j{k + 1}", rf"$p_{{T,j_{k + 1}}}$ [GeV]", masked(jets[:, k, 0]), log=True))
        out.append(Observable(f"eta_j{k + 1}", rf"$\eta_{{j_{k + 1}}}$", masked(jets[:, k, 1])))
        out.append(Observable(f"m_j{k + 1}", rf"$m_{{j_{k + 1}}}$ [GeV]", masked(jets[:, k, 3])))
    for a in range(n_slots):
        for b in range(a + 1, n_slots):
            dr = np.where(n_jets > b, _delta_r(jets[:, a], jets[:, b]), np.nan)
            out.append(Observable(f"dr_j{a + 1}j{b + 1}", rf"$\Delta R_{{j_{a + 1} j_{b + 1}}}$", dr))
    return out


def _delta_phi(phi_a, phi_b):
    """φ_a − φ_b wrapped into [−π, π)."""
    return np.mod(phi_a - phi_b + np.pi, 2 * np.pi) - np.pi


def _delta_r(a, b):
    return np.hypot(a[..., 1] - b[..., 1], _delta_phi(a[..., 2], b[..., 2]))


def _invariant_mass(a, b):
    """Mass of the sum of two (pT, η, φ, m) four-vectors."""

    def four_vector(v):
        pt, eta, phi, m = v[..., 0], v[..., 1], v[..., 2], v[..., 3]
        px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
        return np.sqrt(px**2 + py**2 + pz**2 + m**2), px, py, pz

    ea, xa, ya, za = four_vector(a)
    eb, xb, yb, zb = four_vector(b)
    m2 = (ea + eb) ** 2 - (xa + xb) ** 2 - (ya + yb) ** 2 - (za + zb) ** 2
    return np.sqrt(np.maximum(m2, 0.0))
