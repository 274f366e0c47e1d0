"""The field's jet metrics (JetNet, EPiC-FM papers), as jetnet and energyflow define them.

:func:`jet_metrics` compares generated jets with reference jets in the JetNet layout
(particles [η_rel, φ_rel, pT_rel, mask], jets [pT, η, mass, n]) and returns, each with
jetnet's own error estimate:

- ``w1m``   W1 of the relative jet mass, computed from the constituents;
- ``w1p``   W1 of the particle features (η_rel, φ_rel, pT_rel of real particles), their mean
            and each feature (``w1p_eta_rel``, ``w1p_phi_rel``, ``w1p_pt_rel``);
- ``w1efp`` W1 of the energy-flow polynomials jetnet uses by default (n = 4, d = 4,
            prime), averaged over the EFPs;
- ``fpd``   Fréchet physics distance on jetnet's recommended EFP features (d ≤ 4),
            extrapolated to infinite sample size, with the fit's error;
- ``kpd``   kernel physics distance on the same features: median and half the 68% spread;
- ``w1_jet_mass`` W1 of the stored jet mass [GeV] (the ``jet_features`` column; for a
            conditional model this is the conditioning, so it tests the multiplicity/
            conditioning sampler, not the particles), with the same bootstrap as jetnet.

The W1 errors are jetnet's: the standard deviation over ``batches`` resamples of
``n_eval`` jets (with replacement) from each sample. jetnet draws these from a
module-level generator with no seed argument; we draw them, in jetnet's order, from one
generator seeded with ``seed``, so that results are reproducible.

The computation is jetnet 0.2.5's and energyflow 1.4.0's, rewritten in numpy and scipy
(:mod:`hepgen.metrics.jet_distances`, :mod:`hepgen.metrics.efps`) because importing them
needs numpy < 2 (energyflow imports ``wasserstein``); known-answer tests hold the numbers
jetnet itself gives on fixed inputs. scipy comes with ``pip install 'hepgen[eval]'``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from hepgen.metrics import jet_distances

EXTRA_HINT = "the jet metrics need scipy: pip install 'hepgen[eval]'"

# How the field prints each metric (value × scale).
SCALES = {
    "w1m": 1e3,
    "w1p": 1e3,
    "w1efp": 1e5,
    "fpd": 1e4,
    "kpd": 1e4,
    "w1_jet_mass": 1.0,
    "w1p_eta_rel": 1e3,
    "w1p_phi_rel": 1e3,
    "w1p_pt_rel": 1e3,
}
LABELS = {
    "w1m": "W1 relative jet mass (W1M)",
    "w1p": "W1 particle features, mean of η_rel, φ_rel, pT_rel (W1P)",
    "w1p_eta_rel": "W1 particle η_rel",
    "w1p_phi_rel": "W1 particle φ_rel",
    "w1p_pt_rel": "W1 particle pT_rel",
    "w1efp": "W1 of EFPs (n=4, d=4, prime), mean (W1EFP)",
    "fpd": "Fréchet physics distance on EFPs d≤4 (FPD)",
    "kpd": "kernel physics distance on EFPs d≤4 (KPD)",
    "w1_jet_mass": "W1 stored jet mass [GeV]",
}
_PARTICLE_FEATURES = ("eta_rel", "phi_rel", "pt_rel")


def require_eval_extra() -> None:
    """Raise an ImportError that says how to get them when the metrics' dependencies are missing."""
    try:
        import scipy.optimize
        import scipy.stats  # noqa: F401
    except ImportError as err:
        raise ImportError(f"{EXTRA_HINT} ({type(err).__name__}: {err})") from err


@dataclass
class Metric:
    """One metric: value and jetnet's error estimate (both unscaled)."""

    value: float
    error: float

    def scaled(self, name: str) -> tuple[float, float]:
        s = SCALES.get(name, 1.0)
        return self.value * s, self.error * s


@dataclass
class JetMetrics:
    """The metrics of one generated sample against one reference sample."""

    metrics: dict[str, Metric]
    n_generated: int
    n_reference: int
    settings: dict = field(default_factory=dict)

    def __getitem__(self, name: str) -> Metric:
        return self.metrics[name]

    def to_dict(self) -> dict:
        return {
            "n_generated": self.n_generated,
            "n_reference": self.n_reference,
            "settings": dict(self.settings),
            "metrics": {
                k: {"value": float(m.value), "error": float(m.error), "scale": SCALES.get(k, 1.0)}
                for k, m in self.metrics.items()
            },
        }

    def markdown_table(self) -> str:
        lines = ["| metric | value ± error | × scale |", "|---|---|---|"]
        for name, m in self.metrics.items():
            v, e = m.scaled(name)
            lines.append(f"| {LABELS.get(name, name)} | {v:.3f} ± {e:.3f} | ×{SCALES.get(name, 1.0):g} |")
        return "\n".join(lines)


def _split(sample, role: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(particles (N, P, 4), jets (N, 4) or None) from a JetSample, a tuple or an array."""
    if hasattr(sample, "particles") and hasattr(sample, "jets"):
        particles, jets = sample.particles, sample.jets
    elif isinstance(sample, tuple) and len(sample) == 2:
        particles, jets = sample
    else:
        particles, jets = sample, None
    particles = np.asarray(particles, dtype=np.float64)
    if particles.ndim != 3 or particles.shape[2] != 4:
        raise ValueError(
            f"{role}: expected particles of shape (N, P, 4) = [eta_rel, phi_rel, pt_rel, mask], got {particles.shape}"
        )
    if len(particles) < 2:
        raise ValueError(f"{role}: need at least 2 jets, got {len(particles)}")
    mask = particles[..., 3]
    if not np.all((mask == 0) | (mask == 1)):
        raise ValueError(f"{role}: particles[..., 3] must be a 0/1 mask")
    if not np.all(np.isfinite(particles)):
        raise ValueError(f"{role}: particles hold NaN or infinite values")
    if jets is not None:
        jets = np.asarray(jets, dtype=np.float64)
        if jets.shape != (len(particles), 4):
            raise ValueError(
                f"{role}: expected jets of shape ({len(particles)}, 4) = [pt, eta, mass, n], got {jets.shape}"
            )
        if not np.all(np.isfinite(jets)):
            raise ValueError(f"{role}: jets hold NaN or infinite values")
    # JetNet's convention: padded particles are all zero (jetnet's W1P drops all-zero
    # particles, its mass and EFPs sum over every slot), whatever a generator left there.
    particles = particles * mask[..., None]
    return particles, jets


def _bootstrap_w1(a: np.ndarray, b: np.ndarray, n_eval: int, batches: int, seed: int) -> Metric:
    """W1 between two 1-D samples, resampled as jetnet resamples (mean and std over batches)."""
    from scipy.stats import wasserstein_distance

    rng = np.random.default_rng(seed)
    w = [wasserstein_distance(a[rng.choice(len(a), n_eval)], b[rng.choice(len(b), n_eval)]) for _ in range(batches)]
    return Metric(float(np.mean(w)), float(np.std(w)))


def jet_metrics(
    generated,
    reference,
    *,
    n_eval: int | None = None,
    batches: int = 5,
    efp: bool = True,
    fpd_kpd: bool = True,
    fpd_batches: int = 20,
    kpd_batches: int = 10,
    efp_jobs: int | None = 1,
    seed: int = 0,
    progress: bool = False,
) -> JetMetrics:
    """W1M, W1P, W1EFP, FPD and KPD of ``generated`` against ``reference``, with errors.

    ``generated`` / ``reference``: a :class:`hepgen.data.JetSample`, a tuple
    ``(particles, jets)`` or the particles array alone, in the JetNet layout.
    ``n_eval``: jets per W1 resample (default: jetnet's 50 000, or the smaller sample's
    size); ``batches``: resamples (jetnet's default 5). FPD uses jetnet's defaults (batch
    sizes 20 000 … 50 000, 20 batches per size), each scaled down to the smaller sample
    when it holds fewer jets; KPD likewise (batches of 5000). ``efp=False`` skips W1EFP,
    ``fpd_kpd=False`` skips FPD and KPD (both need the EFPs, the slow part).
    ``efp_jobs`` is deprecated and has no effect: it was the number of energyflow
    processes; the EFPs are now computed in this process (numpy's einsum, faster here
    than energyflow's pool).
    """
    if efp_jobs not in (None, 1):
        warnings.warn(
            "jet_metrics: efp_jobs is deprecated and ignored (the EFPs no longer run in energyflow's process pool)",
            DeprecationWarning,
            stacklevel=2,
        )
    require_eval_extra()
    gen_particles, gen_jets = _split(generated, "generated")
    ref_particles, ref_jets = _split(reference, "reference")
    for name, value in (("batches", batches), ("fpd_batches", fpd_batches), ("kpd_batches", kpd_batches)):
        if int(value) < 2:
            raise ValueError(f"{name}: expected an integer >= 2 (errors need resamples), got {value}")
    n_min = min(len(gen_particles), len(ref_particles))
    if n_eval is None:
        n_eval = min(50_000, n_min)
    if n_eval < 2:
        raise ValueError(f"n_eval: expected an integer >= 2, got {n_eval}")
    steps = ["w1m", "w1p"] + (["w1efp"] if efp else []) + (["fpd/kpd"] if fpd_kpd else [])
    if gen_jets is not None and ref_jets is not None:
        steps.append("w1_jet_mass")
    from tqdm.auto import tqdm

    bar = tqdm(total=len(steps), desc="jet metrics", unit="metric", disable=not progress)
    # jetnet reads [eta, phi, pt, (mass)]: a 4th column would be taken for particle masses,
    # so the mask column is dropped (padding is zero, see _split).
    gen3, ref3 = gen_particles[..., :3], ref_particles[..., :3]
    results: dict[str, Metric] = {}
    settings = {"n_eval": int(n_eval), "batches": int(batches), "seed": int(seed)}
    rng = np.random.default_rng(seed)  # jetnet's module-level generator, seeded
    bar.set_postfix_str("w1m")
    results["w1m"] = Metric(*jet_distances.w1m(ref3, gen3, n_eval=n_eval, batches=batches, rng=rng))
    bar.update()
    bar.set_postfix_str("w1p")
    means, stds = jet_distances.w1p(
        ref3, gen3, ref_particles[..., 3], gen_particles[..., 3], n_eval=n_eval, batches=batches, rng=rng
    )
    # The mean over features is what the papers quote; its error is the mean of the
    # features' errors (they come from the same resamples, so they are correlated: this
    # is the fully-correlated bound, not a quadrature sum).
    results["w1p"] = Metric(float(np.mean(means)), float(np.mean(stds)))
    for k, f in enumerate(_PARTICLE_FEATURES):
        results[f"w1p_{f}"] = Metric(float(means[k]), float(stds[k]))
    bar.update()
    if efp:
        bar.set_postfix_str("w1efp")
        means, stds = jet_distances.w1efp(ref3, gen3, n_eval=n_eval, batches=batches, rng=rng)
        results["w1efp"] = Metric(float(np.mean(means)), float(np.mean(stds)))
        settings["efp_set"] = "n==4, d==4, p==1 (jetnet default)"
        bar.update()
    if fpd_kpd:
        bar.set_postfix_str("fpd/kpd features")
        ref_features = jet_distances.fpd_kpd_features(ref3)
        gen_features = jet_distances.fpd_kpd_features(gen3)
        # jetnet's batch sizes (20k … 50k, 5k) shrink to what the samples hold; the FPD
        # is still extrapolated to infinite size, only with a shorter lever arm.
        max_samples = min(50_000, n_min)
        min_samples = min(20_000, max(2, (2 * max_samples) // 5))
        kpd_size = min(5_000, n_min)
        bar.set_postfix_str("fpd")
        results["fpd"] = Metric(
            *jet_distances.fpd(
                ref_features,
                gen_features,
                min_samples=min_samples,
                max_samples=max_samples,
                num_batches=fpd_batches,
                seed=seed,
            )
        )
        bar.set_postfix_str("kpd")
        results["kpd"] = Metric(
            *jet_distances.kpd(ref_features, gen_features, num_batches=kpd_batches, batch_size=kpd_size, seed=seed)
        )
        settings.update(
            fpd_min_samples=int(min_samples),
            fpd_max_samples=int(max_samples),
            fpd_batches=int(fpd_batches),
            kpd_batch_size=int(kpd_size),
            kpd_batches=int(kpd_batches),
            fpd_kpd_features="jetnet EFPs d<=4",
        )
        bar.update()
    if gen_jets is not None and ref_jets is not None:
        results["w1_jet_mass"] = _bootstrap_w1(gen_jets[:, 2], ref_jets[:, 2], n_eval, batches, seed)
        bar.update()
    bar.close()
    return JetMetrics(results, len(gen_particles), len(ref_particles), settings)
