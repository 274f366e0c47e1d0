"""Jets as particle clouds (JetNet layout): classifier inputs and observables.

The classifier sees high-level features of each jet: the stored jet (pT, η, mass,
multiplicity) and what the constituents say (relative mass, girth, p_T^D, leading and
summed pT_rel, the multiplicity of unmasked particles). With ``particles=True`` it also
sees every particle slot, ordered by pT_rel: (η_rel, φ_rel, log pT_rel, mask), zeros in
empty slots.

The multiplicity is an input, not a grouping: it takes tens of values, too many for a
classifier each, and every jet has the same high-level features whatever its
multiplicity.
"""

from __future__ import annotations

import numpy as np

from hepgen.metrics._checks import check_finite
from hepgen.metrics.classify import InputGroup
from hepgen.metrics.features.observable import Observable
from hepgen.metrics.training import ClassifierConfig

KEYS = ("particle_features", "jet_features")
CLASSIFIER = ClassifierConfig(hidden_layers=5, hidden_units=256)


def read(path):
    from hepgen.data.jets import read_jets

    return read_jets(path)


def arrays(sample):
    """(particles (N, P, 4), jets (N, 4)) as float64, checked."""
    particles = np.asarray(sample.particles, dtype=np.float64)
    jets = np.asarray(sample.jets, dtype=np.float64)
    if particles.ndim != 3 or particles.shape[2] != 4:
        raise ValueError(f"particles: expected shape (N, P, 4), got {particles.shape}")
    if jets.shape != (particles.shape[0], 4):
        raise ValueError(f"jets: expected shape ({particles.shape[0]}, 4), got {jets.shape}")
    check_finite(particles, "particles")
    check_finite(jets, "jets")
    return particles, jets


def check_compatible(truth, generated, particles: bool = False) -> None:
    """With ``particles``, both samples need the same number of particle slots."""
    p_truth, _ = arrays(truth)
    p_generated, _ = arrays(generated)
    if particles and p_truth.shape[1] != p_generated.shape[1]:
        raise ValueError(
            f"mismatched feature sets: truth jets have {p_truth.shape[1]} particle slots, "
            f"generated {p_generated.shape[1]}; compare high-level features only (no particles)"
        )


def substructure(particles) -> dict[str, np.ndarray]:
    """Per-jet quantities from the constituents (masked slots ignored)."""
    mask = particles[..., 3] > 0.5
    eta, phi = particles[..., 0], particles[..., 1]
    pt = np.where(mask, particles[..., 2], 0.0)
    # Massless constituents in relative coordinates: the mass of their sum is m/pT of
    # the jet to first order, the "relative mass" of the JetNet metrics.
    px, py = pt * np.cos(phi), pt * np.sin(phi)
    pz, e = pt * np.sinh(eta), pt * np.cosh(eta)
    m2 = e.sum(1) ** 2 - px.sum(1) ** 2 - py.sum(1) ** 2 - pz.sum(1) ** 2
    pt_sum = pt.sum(1)
    safe_sum = np.where(pt_sum > 0, pt_sum, 1.0)
    return {
        "mass_rel": np.sqrt(np.maximum(m2, 0.0)),
        "girth": (pt * np.hypot(eta, phi)).sum(1) / safe_sum,
        "ptd": np.sqrt((pt**2).sum(1)) / safe_sum,
        "pt_rel_leading": pt.max(1, initial=0.0),
        "pt_rel_sum": pt_sum,
        "n_constituents": mask.sum(1).astype(np.float64),
    }


def classifier_inputs(sample, particles: bool = False) -> list[InputGroup]:
    """One group of high-level features (and, with ``particles``, the particle slots)."""
    parts, jets = arrays(sample)
    sub = substructure(parts)
    columns = [np.log(np.maximum(jets[:, 0], 1e-3)), jets[:, 1], jets[:, 2], jets[:, 3]]
    names = ["log_pt", "eta", "mass", "n_particles"]
    columns += list(sub.values())
    names += list(sub)
    if particles:
        mask = parts[..., 3] > 0.5
        order = np.argsort(-np.where(mask, parts[..., 2], -np.inf), axis=1, kind="stable")
        ordered = np.take_along_axis(parts, order[..., None], axis=1)
        valid = ordered[..., 3] > 0.5
        log_pt = np.where(valid, np.log(np.maximum(ordered[..., 2], 1e-12)), 0.0)
        for k in range(parts.shape[1]):
            columns += [
                np.where(valid[:, k], ordered[:, k, 0], 0.0),
                np.where(valid[:, k], ordered[:, k, 1], 0.0),
                log_pt[:, k],
                valid[:, k].astype(np.float64),
            ]
            names += [f"p{k}_eta_rel", f"p{k}_phi_rel", f"p{k}_log_pt_rel", f"p{k}_mask"]
    return [InputGroup("all", tuple(names), np.stack(columns, 1), np.arange(len(jets)))]


def observables(sample) -> list[Observable]:
    """Jet pT, η, mass, multiplicity and the constituent-based substructure."""
    parts, jets = arrays(sample)
    sub = substructure(parts)
    return [
        Observable("pt", r"jet $p_T$ [GeV]", jets[:, 0]),
        Observable("eta", r"jet $\eta$", jets[:, 1]),
        Observable("mass", r"jet mass [GeV]", jets[:, 2]),
        Observable("n_particles", r"$n_\mathrm{particles}$", sub["n_constituents"], discrete=True),
        Observable("mass_rel", r"$m_\mathrm{rel}$ (constituents)", sub["mass_rel"]),
        Observable("girth", r"girth $\sum p_T^\mathrm{rel} \Delta R$", sub["girth"]),
        Observable("ptd", r"$p_T^D$", sub["ptd"]),
        Observable("pt_rel_leading", r"leading $p_T^\mathrm{rel}$", sub["pt_rel_leading"]),
    ]
