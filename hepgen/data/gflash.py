"""A fast parametrized electromagnetic shower simulator in the CaloChallenge geometry.

This is a parametrization in the style of GFlash (Grindhammer and Peters,
hep-ex/0001020), not Geant4, and it is not tuned to the ATLAS showers of the
CaloChallenge: it makes showers with the right layout and plausible physics for
testing and benchmarking generators when the real files are not at hand.

Per shower, with E the incident energy and y = E / E_c:
- longitudinal profile: a Gamma distribution in depth t (radiation lengths),
  dE/dt ~ t^(alpha-1) exp(-beta t), whose ln T and ln alpha (T = (alpha-1)/beta, the
  depth of the maximum) are drawn from correlated Gaussians with the homogeneous-medium
  means, widths and correlation of GFlash; a photon first travels an exponential
  conversion depth (mean 9/7 X0);
- radial profile: GFlash's core + tail, f(r) = p f_C(r) + (1-p) f_T(r) with
  f_i(r) = 2 r R_i^2 / (r^2 + R_i^2)^2, R_C, R_T and p depending on tau = t / T and ln E,
  evaluated on a few depth slices per layer;
- layers: the energy deposited in each layer's depth range (dead material in front
  and between the barrel and the tile keeps its share); energy beyond the outermost
  radial edge is lost;
- sampling fluctuations: each voxel's energy is a compound Poisson sum of spots with
  exponentially distributed energies, sized so that a layer of energy E_l fluctuates by
  a / sqrt(E_l / GeV); angular bins are filled independently, the shower centred at r = 0.
Layer energies are correlated through the shared profile fluctuations.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from hepgen.data.calo_geometry import CaloGeometry
from hepgen.data.showers import DATASET1_ENERGIES_MEV, ShowerSample

# Depth ranges (radiation lengths from the front of the material in front of the
# calorimeter) of the ATLAS barrel layers at |eta| ~ 0.2, rounded; the gaps are dead
# material (inner detector and cryostat, between presampler and strips, cryostat
# before the tile calorimeter). Hand-set, not taken from the ATLAS geometry.
ATLAS_BARREL_DEPTHS_X0: dict[int, tuple[float, float]] = {
    0: (2.0, 2.3),
    1: (2.6, 7.0),
    2: (7.0, 23.0),
    3: (23.0, 25.0),
    12: (26.0, 60.0),
    13: (60.0, 110.0),
    14: (110.0, 130.0),
}

_PHOTON_CONVERSION_X0 = 9.0 / 7.0
# Beyond this beta * t the Gamma CDF equals 1 to double precision for alpha <= 60.
_MAX_GAMMA_ARGUMENT = 200.0


@dataclass(frozen=True)
class GFlashMedium:
    """Effective parameters of the calorimeter medium (lead-liquid argon, hand-set)."""

    z_eff: float = 50.0
    critical_energy_mev: float = 10.0
    moliere_radius_mm: float = 30.0
    # Sampling term a of sigma_E / E = a / sqrt(E / GeV).
    stochastic_term: float = 0.10


@dataclass(frozen=True)
class GFlashSimulator:
    """Simulates photon (or electron) showers voxelised in ``geometry``."""

    geometry: CaloGeometry = field(default_factory=CaloGeometry.photons)
    medium: GFlashMedium = field(default_factory=GFlashMedium)
    depths_x0: Mapping[int, tuple[float, float]] = field(default_factory=lambda: dict(ATLAS_BARREL_DEPTHS_X0))
    photon: bool = True
    slices_per_layer: int = 4

    def __post_init__(self) -> None:
        missing = [i for i in self.geometry.layer_ids if i not in self.depths_x0]
        if missing:
            raise ValueError(f"depths_x0: no depth range for layers {missing}")

    @property
    def min_energy_mev(self) -> float:
        """Lowest incident energy the parametrization covers (ln y >= 2)."""
        return self.medium.critical_energy_mev * math.e**2

    def simulate(self, incident_energies_mev: Sequence[float] | np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """(N, n_voxels) float32 voxel energies in MeV for incident energies (N,) in MeV."""
        energy = np.asarray(incident_energies_mev, dtype=np.float64).reshape(-1)
        if np.any(~np.isfinite(energy)) or np.any(energy < self.min_energy_mev):
            raise ValueError(f"incident_energies_mev: expected finite values >= {self.min_energy_mev:.0f} MeV")
        alpha, beta, t0 = self._longitudinal_parameters(energy, rng)
        showers = np.empty((len(energy), self.geometry.n_voxels), dtype=np.float32)
        for index, layer in enumerate(self.geometry.layers):
            expected = self._expected_radial_energy(energy, alpha, beta, t0, index)
            # Spread each radial bin's energy evenly over its angular bins.
            per_voxel = np.tile(expected / layer.n_alpha, (1, layer.n_alpha))
            showers[:, self.geometry.layer_slices[index]] = self._fluctuate(per_voxel, rng)
        return showers

    def sample(
        self,
        n: int,
        rng: np.random.Generator,
        energies_mev: Sequence[float] = DATASET1_ENERGIES_MEV,
    ) -> ShowerSample:
        """``n`` showers with incident energies drawn uniformly from ``energies_mev``."""
        incident = rng.choice(np.asarray(energies_mev, dtype=np.float64), size=n)
        return ShowerSample(incident[:, None], self.simulate(incident, rng))

    def _longitudinal_parameters(self, energy: np.ndarray, rng: np.random.Generator):
        """Per shower: Gamma shape alpha, rate beta (1/X0), start depth t0 (X0)."""
        z = self.medium.z_eff
        ln_y = np.log(energy / self.medium.critical_energy_mev)
        mean_ln_t = np.log(ln_y - 0.812)
        sigma_ln_t = 1.0 / (-1.4 + 1.26 * ln_y)
        mean_ln_alpha = np.log(0.81 + (0.458 + 2.26 / z) * ln_y)
        sigma_ln_alpha = 1.0 / (-0.58 + 0.86 * ln_y)
        rho = np.clip(0.705 + 0.023 * ln_y, -0.99, 0.99)
        g1, g2 = rng.standard_normal((2, len(energy)))
        ln_t = mean_ln_t + sigma_ln_t * g1
        ln_alpha = mean_ln_alpha + sigma_ln_alpha * (rho * g1 + np.sqrt(1 - rho**2) * g2)
        # alpha <= 1 has no maximum (T undefined); keep a rising profile.
        alpha = np.maximum(np.exp(ln_alpha), 1.1)
        beta = (alpha - 1.0) / np.exp(ln_t)
        t0 = rng.exponential(_PHOTON_CONVERSION_X0, len(energy)) if self.photon else np.zeros(len(energy))
        return alpha, beta, t0

    def _expected_radial_energy(self, energy, alpha, beta, t0, index: int) -> np.ndarray:
        """(N, n_radial) expected energy (MeV) per radial bin of layer ``index``."""
        layer = self.geometry.layers[index]
        start, stop = self.depths_x0[layer.layer_id]
        edges = np.linspace(start, stop, self.slices_per_layer + 1)
        # Energy fraction per depth slice, from the Gamma CDF in shower depth t - t0.
        shower_depth = np.clip(edges[None, :] - t0[:, None], 0.0, None)
        cdf = _gamma_cdf(alpha[:, None], beta[:, None] * shower_depth)
        slice_fraction = np.diff(cdf, axis=1)  # (N, S)
        middle = np.clip(0.5 * (edges[1:] + edges[:-1])[None, :] - t0[:, None], 0.0, None)
        tau = middle * beta[:, None] / (alpha[:, None] - 1.0)  # t / T
        r_edges = np.asarray(layer.r_edges) / self.medium.moliere_radius_mm
        radial = self._radial_bin_fractions(np.log(energy / 1000.0)[:, None], tau, r_edges)  # (N, S, R)
        return energy[:, None] * np.einsum("ns,nsr->nr", slice_fraction, radial)

    def _radial_bin_fractions(self, ln_e_gev, tau, r_edges) -> np.ndarray:
        """(N, S, R) fraction of a slice's energy per radial bin (GFlash, homogeneous)."""
        z = self.medium.z_eff
        core_radius = (0.0251 + 0.00319 * ln_e_gev) + (0.1162 - 0.000381 * z) * tau
        k4 = 0.3585 + 0.0421 * ln_e_gev
        tail_radius = (0.659 - 0.00309 * z) * (np.exp(-2.59 * (tau - 0.645)) + np.exp(k4 * (tau - 0.645)))
        p3 = 1.313 - 0.0686 * ln_e_gev
        u = (0.401 + 0.00187 * z - tau) / p3
        core_share = np.clip((2.632 - 0.00094 * z) * np.exp(u - np.exp(u)), 0.0, 1.0)
        r2 = (r_edges**2)[None, None, :]

        def cumulative(radius):  # integral of f(r) from 0 to each edge
            return r2 / (r2 + radius[..., None] ** 2)

        cdf = core_share[..., None] * cumulative(core_radius) + (1 - core_share[..., None]) * cumulative(tail_radius)
        return np.diff(cdf, axis=-1)

    def _fluctuate(self, expected: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Compound Poisson voxel energies with mean ``expected`` (MeV): a Poisson number of
        spots with exponential energies of mean eps, eps = a^2 / 2 GeV, so that an energy E
        fluctuates by a / sqrt(E / GeV)."""
        spot_mev = 0.5 * self.medium.stochastic_term**2 * 1000.0
        counts = rng.poisson(np.clip(expected, 0.0, None) / spot_mev)
        return rng.gamma(counts.astype(np.float64), spot_mev)


def _gamma_cdf(shape: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Regularized lower incomplete gamma P(shape, x) by its power series, vectorised.

    P(a, x) = x^a e^-x / Gamma(a + 1) * sum_n x^n / ((a + 1) ... (a + n)); all terms are
    positive, so the sum is accurate; x is capped where P is 1 in double precision.
    """
    shape, x = np.broadcast_arrays(np.asarray(shape, dtype=np.float64), np.asarray(x, dtype=np.float64))
    x = np.clip(x, 0.0, _MAX_GAMMA_ARGUMENT)
    log_gamma = np.vectorize(math.lgamma, otypes=[np.float64])(shape + 1.0)
    with np.errstate(divide="ignore"):
        prefactor = np.exp(shape * np.log(x) - x - log_gamma)
    term = np.ones_like(x)
    total = np.ones_like(x)
    # Terms peak near n = x - a and fall fast beyond; 2 * max(x) + 50 terms suffice.
    for n in range(1, int(2 * _MAX_GAMMA_ARGUMENT) + 50):
        term = term * x / (shape + n)
        total += term
        if np.all(term <= 1e-17 * total):
            break
    return np.clip(prefactor * total, 0.0, 1.0)


@dataclass(frozen=True)
class GFlashShowers:
    """Chunk task for :mod:`hepgen.data.streaming`: ``task(seed, n)`` -> CaloChallenge arrays."""

    simulator: GFlashSimulator = field(default_factory=GFlashSimulator)
    energies_mev: tuple[float, ...] = DATASET1_ENERGIES_MEV

    @property
    def layout(self):
        return {
            "incident_energies": ((1,), np.float32, "MeV"),
            "showers": ((self.simulator.geometry.n_voxels,), np.float32, "MeV"),
        }

    def provenance(self) -> dict:
        """File attributes describing how the showers were made."""
        medium = self.simulator.medium
        return {
            "generator": "hepgen GFlash-style parametrized EM showers (not Geant4)",
            "geometry": self.simulator.geometry.name,
            "particle": "photon" if self.simulator.photon else "electron",
            "incident_energies_mev": list(self.energies_mev),
            "z_eff": medium.z_eff,
            "critical_energy_mev": medium.critical_energy_mev,
            "moliere_radius_mm": medium.moliere_radius_mm,
            "stochastic_term": medium.stochastic_term,
            "layer_depths_x0": [
                f"{i}: {self.simulator.depths_x0[i][0]}-{self.simulator.depths_x0[i][1]}"
                for i in self.simulator.geometry.layer_ids
            ],
        }

    def __call__(self, seed: int, n: int) -> dict[str, np.ndarray]:
        sample = self.simulator.sample(n, np.random.default_rng(seed), self.energies_mev)
        return {"incident_energies": sample.incident_energies, "showers": sample.showers}
