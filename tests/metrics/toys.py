"""Small, physically shaped samples for the metrics tests, and HDF5 writers in the agreed
layouts (written with h5py directly, so these tests do not depend on hepgen.data's writers).

No real LHC data can be fetched in CI, so the "real samples" of the distortion tests are
a Z(→μμ) + jets toy with the features that matter (a Breit–Wigner dimuon mass peak from a
genuine two-body decay, falling jet pT spectra), top-like particle clouds, and showers of
hepgen's GFlash-style simulator.
"""

from __future__ import annotations

from types import SimpleNamespace

import h5py
import numpy as np

Z_MASS, Z_WIDTH = 91.19, 2.50
MUON_MASS = 0.10566


def z_events(n: int, rng, muon_pt_resolution: float = 0.0):
    """``n`` Z(→μμ) + 1..3 jets events as a namespace with muons, jets (N, 3, 4), n_jets."""
    mass = np.clip(Z_MASS + 0.5 * Z_WIDTH * rng.standard_cauchy(n), 70.0, 110.0)
    z_pt = rng.exponential(25.0, n) + 5.0
    z_y = rng.normal(0.0, 1.2, n)
    z_phi = rng.uniform(-np.pi, np.pi, n)
    mt = np.sqrt(mass**2 + z_pt**2)
    z = np.stack([mt * np.cosh(z_y), z_pt * np.cos(z_phi), z_pt * np.sin(z_phi), mt * np.sinh(z_y)], 1)
    # Isotropic decay in the Z rest frame, boosted to the lab.
    cos_t = rng.uniform(-1, 1, n)
    phi = rng.uniform(-np.pi, np.pi, n)
    p = np.sqrt(np.maximum((mass / 2) ** 2 - MUON_MASS**2, 0))
    sin_t = np.sqrt(1 - cos_t**2)
    rest = np.stack([mass / 2, p * sin_t * np.cos(phi), p * sin_t * np.sin(phi), p * cos_t], 1)
    mu_a = _boost(rest, z)
    mu_b = _boost(rest * np.array([1, -1, -1, -1]), z)
    muons = np.stack([_pt_eta_phi_m(mu_a), _pt_eta_phi_m(mu_b)], 1)
    if muon_pt_resolution:
        muons[..., 0] *= 1 + muon_pt_resolution * rng.standard_normal((n, 2))
    order = np.argsort(-muons[..., 0], axis=1)
    muons = np.take_along_axis(muons, order[..., None], axis=1)

    n_jets = rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1])
    jets = np.zeros((n, 3, 4))
    for k in range(3):
        pt = 20.0 + rng.exponential(30.0 / (k + 1), n)
        jets[:, k] = np.stack(
            [pt, rng.normal(0, 1.8, n), rng.uniform(-np.pi, np.pi, n), pt * rng.uniform(0.05, 0.2, n)], 1
        )
    jets[:, :, 0] = -np.sort(-jets[:, :, 0], axis=1)
    jets[np.arange(3)[None, :] >= n_jets[:, None]] = 0.0
    return SimpleNamespace(muons=muons, jets=jets, n_jets=n_jets)


def dimuon_mass(events) -> np.ndarray:
    def four(v):
        pt, eta, phi, m = v[:, 0], v[:, 1], v[:, 2], v[:, 3]
        return np.stack(
            [np.sqrt((pt * np.cosh(eta)) ** 2 + m**2), pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)], 1
        )

    s = four(events.muons[:, 0]) + four(events.muons[:, 1])
    return np.sqrt(np.maximum(s[:, 0] ** 2 - (s[:, 1:] ** 2).sum(1), 0))


def select(events, keep):
    return SimpleNamespace(muons=events.muons[keep], jets=events.jets[keep], n_jets=events.n_jets[keep])


def top_jets(n: int, rng, n_slots: int = 30, mass_resolution: float = 0.0):
    """Jet-like particle clouds with a top-mass peak: particles (N, P, 4), jets (N, 4)."""
    mass = np.clip(172.5 + 8.0 * rng.standard_normal(n), 120, 230)
    if mass_resolution:
        mass = mass * (1 + mass_resolution * rng.standard_normal(n))
    pt = rng.uniform(500, 1000, n)
    n_particles = rng.integers(10, n_slots + 1, n)
    particles = np.zeros((n, n_slots, 4))
    for i in range(n):
        k = n_particles[i]
        share = np.sort(rng.dirichlet(np.full(k, 0.7)))[::-1]
        spread = 2.0 * mass[i] / pt[i] / 3.0
        particles[i, :k] = np.stack([rng.normal(0, spread, k), rng.normal(0, spread, k), share, np.ones(k)], 1)
    jets = np.stack([pt, rng.normal(0, 1.0, n), mass, n_particles.astype(float)], 1)
    return SimpleNamespace(particles=particles, jets=jets)


def photon_showers(n: int, rng):
    """Toy showers in the dataset-1 photon voxelisation (368 voxels), MeV: cheap and
    independent of hepgen.data's simulator, for the input and CLI tests."""
    from hepgen.data.calo_geometry import CaloGeometry

    geometry = CaloGeometry.photons()
    e_inc = 2.0 ** rng.integers(10, 16, n).astype(float)
    fractions = rng.dirichlet([2.0, 8.0, 30.0, 1.0, 0.3], n)
    deposited = e_inc * rng.uniform(0.85, 0.95, n)
    showers = np.zeros((n, geometry.n_voxels))
    for k in range(len(geometry.layers)):
        sl = geometry.layer_slices[k]
        r = geometry.voxel_r[sl]
        profile = np.exp(-r[None, :] / rng.uniform(10, 40, (n, 1)))
        profile *= rng.gamma(4.0, 0.25, profile.shape)
        profile /= profile.sum(1, keepdims=True)
        showers[:, sl] = profile * (fractions[:, k] * deposited)[:, None]
    return SimpleNamespace(incident_energies=e_inc[:, None], showers=showers)


def write_h5(path, **datasets) -> None:
    with h5py.File(path, "w") as f:
        for key, value in datasets.items():
            f.create_dataset(key, data=value)


def write_events(path, events):
    write_h5(
        path,
        muons=events.muons.astype(np.float32),
        jets=events.jets.astype(np.float32),
        n_jets=events.n_jets.astype(np.int64),
    )


def write_jets(path, jets):
    write_h5(path, particle_features=jets.particles.astype(np.float32), jet_features=jets.jets.astype(np.float32))


def write_showers(path, showers):
    write_h5(
        path, incident_energies=showers.incident_energies.astype(np.float32), showers=showers.showers.astype(np.float32)
    )


def _boost(p, frame):
    """Boost four-vectors ``p`` (rest frame) into the lab where ``frame`` is the parent."""
    m = np.sqrt(np.maximum(frame[:, 0] ** 2 - (frame[:, 1:] ** 2).sum(1), 1e-12))
    beta = frame[:, 1:] / frame[:, :1]
    gamma = frame[:, 0] / m
    b2 = (beta**2).sum(1)
    bp = (beta * p[:, 1:]).sum(1)
    factor = np.where(b2 > 0, (gamma - 1) * bp / np.maximum(b2, 1e-12), 0.0)
    e = gamma * (p[:, 0] + bp)
    space = p[:, 1:] + (factor + gamma * p[:, 0])[:, None] * beta
    return np.concatenate([e[:, None], space], 1)


def _pt_eta_phi_m(v):
    pt = np.hypot(v[:, 1], v[:, 2])
    eta = np.arcsinh(v[:, 3] / np.maximum(pt, 1e-12))
    phi = np.arctan2(v[:, 2], v[:, 1])
    m = np.sqrt(np.maximum(v[:, 0] ** 2 - (v[:, 1:] ** 2).sum(1), 0))
    return np.stack([pt, eta, phi, m], 1)


def gflash_showers(n: int, seed: int):
    """``n`` photon showers of hepgen's GFlash-style simulator (dataset-1 photon layout)."""
    from hepgen.data.gflash import GFlashShowers

    arrays = GFlashShowers()(seed, n)
    return SimpleNamespace(
        incident_energies=arrays["incident_energies"].astype(np.float64), showers=arrays["showers"].astype(np.float64)
    )


def scale_layer(sample, factor: float, layer: int = 1):
    """A copy of ``sample`` with every voxel of layer index ``layer`` times ``factor``
    (a wrong energy scale in one layer)."""
    from hepgen.data.calo_geometry import CaloGeometry

    showers = sample.showers.copy()
    showers[:, CaloGeometry.photons().layer_slices[layer]] *= factor
    return SimpleNamespace(incident_energies=sample.incident_energies, showers=showers)
