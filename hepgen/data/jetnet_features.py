"""From clustered jets and their constituents' four-momenta to JetNet-layout arrays."""

from __future__ import annotations

import numpy as np

from hepgen.data.kinematics import pt_eta_phi_m, wrap_phi


def jetnet_arrays(
    jet_p4: np.ndarray, constituent_p4: np.ndarray, counts: np.ndarray, max_particles: int
) -> tuple[np.ndarray, np.ndarray]:
    """JetNet ``(particle_features (J, P, 4), jet_features (J, 4))`` as float32.

    ``jet_p4`` (J, 4) and ``constituent_p4`` (C, 4) are (px, py, pz, E); the constituents
    of jet j are the ``counts[j]`` rows after those of jets 0..j-1. Each jet keeps its
    ``max_particles`` highest-pT constituents; jet pT, eta and mass are the whole jet's.
    """
    jet_p4 = np.asarray(jet_p4, dtype=np.float64).reshape(-1, 4)
    constituent_p4 = np.asarray(constituent_p4, dtype=np.float64).reshape(-1, 4)
    counts = np.asarray(counts, dtype=np.int64)
    if counts.shape != (len(jet_p4),) or counts.sum() != len(constituent_p4):
        raise ValueError("counts: expected one count per jet, summing to the constituents")
    n_jets = len(jet_p4)
    jet_pt, jet_eta, jet_phi, jet_mass = pt_eta_phi_m(*jet_p4.T)
    pt, eta, phi, _ = pt_eta_phi_m(*constituent_p4.T)

    owner = np.repeat(np.arange(n_jets), counts)
    order = np.lexsort((-pt, owner))  # by jet, then by decreasing pT
    starts = np.cumsum(counts) - counts
    rank = np.arange(len(order)) - np.repeat(starts, counts)
    kept = order[rank < max_particles]
    rows, cols = owner[kept], rank[rank < max_particles]

    particles = np.zeros((n_jets, max_particles, 4), dtype=np.float32)
    particles[rows, cols, 0] = eta[kept] - jet_eta[rows]
    particles[rows, cols, 1] = wrap_phi(phi[kept] - jet_phi[rows])
    particles[rows, cols, 2] = pt[kept] / jet_pt[rows]
    particles[rows, cols, 3] = 1.0
    n_particles = np.minimum(counts, max_particles)
    jets = np.stack([jet_pt, jet_eta, jet_mass, n_particles], axis=1).astype(np.float32)
    return particles, jets
