"""jetnet 0.2.5's generative-model metrics (Kansal et al., arXiv:2106.11535, 2211.10295), in numpy.

W1M, W1P, W1EFP, FPD and KPD as ``jetnet.evaluation`` defines and computes them, step for
step (the same resampling calls in the same order, so a seeded generator gives jetnet's
numbers): tests/metrics/test_jetnet_known_answers.py holds values computed by jetnet
0.2.5 + energyflow 1.4.0 and checks these functions against them.

Why not import jetnet: ``jetnet.evaluation`` imports the whole of jetnet (coffea, its
datasets) and energyflow, whose package ``__init__`` imports ``wasserstein``, whose
releases need numpy < 2 (1.1.0 declares it; 1.0.1 fails to import under numpy 2). Only
numpy and scipy are needed here, so the metrics work on the numpy-2 stack.

Inputs are jets in jetnet's order [eta, phi, pt] per particle (N, P, 3), padded particles
all zero. ``rng`` is the generator the W1 resamples draw from (jetnet: its module-level
``gen_metrics.rng``); FPD and KPD take a seed, as jetnet's do.
"""

from __future__ import annotations

import warnings

import numpy as np

from hepgen.metrics.efps import EFP_GRAPHS_D_LE_4, EFP_GRAPHS_N4_D4_PRIME, efps


def relative_jet_mass(particles: np.ndarray) -> np.ndarray:
    """Invariant mass of the sum of massless constituents (N,), as jetnet's ``jet_features``."""
    eta, phi, pt = particles[..., 0], particles[..., 1], particles[..., 2]
    e = (pt * np.cosh(eta)).sum(-1)
    px = (pt * np.cos(phi)).sum(-1)
    py = (pt * np.sin(phi)).sum(-1)
    pz = (pt * np.sinh(eta)).sum(-1)
    mass2 = e**2 - px**2 - py**2 - pz**2
    # Rounding can leave m^2 slightly below 0 for (nearly) collinear jets; jetnet (through
    # coffea's vector) then returns NaN and zeroes it with nan_to_num, as we do.
    return np.sqrt(np.clip(mass2, 0.0, None))


def _w1(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats import wasserstein_distance

    return float(wasserstein_distance(a, b))


def _resampled_w1(x1: np.ndarray, x2: np.ndarray, n_eval: int, batches: int, rng) -> tuple:
    """Mean and std over ``batches`` of the W1 of each column, jetnet's resampling."""
    w1s = []
    for _ in range(batches):
        rand1 = rng.choice(len(x1), size=n_eval)
        rand2 = rng.choice(len(x2), size=n_eval)
        s1, s2 = x1[rand1], x2[rand2]
        w1s.append([_w1(s1[:, i], s2[:, i]) for i in range(x1.shape[1])])
    return np.mean(w1s, axis=0), np.std(w1s, axis=0)


def w1m(jets1, jets2, *, n_eval: int, batches: int, rng) -> tuple[float, float]:
    """W1 of the relative jet mass: mean and std over resamples (jetnet's ``w1m``)."""
    m1, m2 = relative_jet_mass(jets1)[:, None], relative_jet_mass(jets2)[:, None]
    means, stds = _resampled_w1(m1, m2, n_eval, batches, rng)
    return float(means[0]), float(stds[0])


def w1p(jets1, jets2, mask1, mask2, *, n_eval: int, batches: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """W1 of each particle feature over real particles, per feature (jetnet's ``w1p``).

    A particle counts when its mask is set and its features are not all zero (jetnet's
    ``exclude_zeros``).
    """
    keep1 = mask1.astype(bool) & (np.linalg.norm(jets1, axis=2) != 0)
    keep2 = mask2.astype(bool) & (np.linalg.norm(jets2, axis=2) != 0)
    n_features = jets1.shape[2]
    w1s = []
    for _ in range(batches):
        rand1 = rng.choice(len(jets1), size=n_eval)
        rand2 = rng.choice(len(jets2), size=n_eval)
        parts1, parts2 = jets1[rand1][keep1[rand1]], jets2[rand2][keep2[rand2]]
        if len(parts1) == 0 or len(parts2) == 0:
            w1s.append([np.inf] * n_features)
        else:
            w1s.append([_w1(parts1[:, i], parts2[:, i]) for i in range(n_features)])
    return np.mean(w1s, axis=0), np.std(w1s, axis=0)


def w1efp(jets1, jets2, *, n_eval: int, batches: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """W1 of each n=4, d=4 prime EFP (jetnet's ``w1efp`` default set), per EFP."""
    e1, e2 = efps(jets1, EFP_GRAPHS_N4_D4_PRIME), efps(jets2, EFP_GRAPHS_N4_D4_PRIME)
    return _resampled_w1(e1, e2, n_eval, batches, rng)


def fpd_kpd_features(jets: np.ndarray) -> np.ndarray:
    """The 36 EFPs with d <= 4 (jetnet's ``get_fpd_kpd_jet_features``)."""
    return efps(jets, EFP_GRAPHS_D_LE_4)


def _normalise(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Both samples divided by the reference's largest |value| per feature (0 -> 1)."""
    maxes = np.max(np.abs(x), axis=0)
    maxes[maxes == 0] = 1
    return x / maxes, y / maxes


def frechet_distance(mu1, sigma1, mu2, sigma2, eps: float = 1e-6) -> float:
    """Fréchet distance of two Gaussians, as jetnet (after pytorch-fid) computes it."""
    from scipy import linalg

    diff = mu1 - mu2
    covmean = linalg.sqrtm(sigma1 @ sigma2)
    if not np.isfinite(covmean).all():  # a near-singular product: regularise, as jetnet does
        offset = np.eye(len(sigma1)) * eps
        covmean = linalg.sqrtm((sigma1 + offset) @ (sigma2 + offset))
    if np.iscomplexobj(covmean):
        imag_ok = np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3) or np.isclose(
            np.trace(covmean.imag) / np.trace(covmean.real), 0, atol=1e-3
        )
        if not imag_ok:
            warnings.warn(
                f"Large imaginary components in covariance matrix while calculating Fréchet "
                f"distance Im: {np.trace(covmean.imag):.2f} Re: {np.trace(covmean.real):.2f}",
                RuntimeWarning,
                stacklevel=2,
            )
        covmean = covmean.real
    return float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(covmean))


def fpd(
    real, gen, *, min_samples: int, max_samples: int, num_batches: int, num_points: int = 10, seed: int
) -> tuple[float, float]:
    """Fréchet physics distance extrapolated to infinite samples, and its fit error (jetnet's ``fpd``)."""
    from scipy.optimize import curve_fit

    x, y = _normalise(np.asarray(real, dtype=np.float64), np.asarray(gen, dtype=np.float64))
    # Batch sizes at regular intervals in 1/N, a straight-line fit in 1/N to its intercept.
    sizes = (1 / np.linspace(1.0 / min_samples, 1.0 / max_samples, num_points)).astype("int32")
    rng = np.random.default_rng(seed)
    values = []
    for size in sizes:
        points = []
        for _ in range(num_batches):
            s1, s2 = x[rng.choice(len(x), size=size)], y[rng.choice(len(y), size=size)]
            points.append(frechet_distance(s1.mean(0), np.cov(s1, rowvar=False), s2.mean(0), np.cov(s2, rowvar=False)))
        values.append(np.mean(points))
    params, covs = curve_fit(
        lambda n_inv, intercept, slope: intercept + slope * n_inv, 1 / sizes, values, bounds=([0, 0], [np.inf, np.inf])
    )
    return float(params[0]), float(np.sqrt(np.diag(covs)[0]))


def _mmd_poly4_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased quadratic MMD estimate with the kernel (x.y / d + 1)^4."""
    gamma = 1.0 / x.shape[-1]
    xx, yy, xy = ((a @ b.T * gamma + 1.0) ** 4 for a, b in ((x, x), (y, y), (x, y)))
    m, n = len(xx), len(yy)
    return float(
        (xx.sum() - np.trace(xx)) / (m * (m - 1)) + (yy.sum() - np.trace(yy)) / (n * (n - 1)) - 2 * np.mean(xy)
    )


def kpd(real, gen, *, num_batches: int, batch_size: int, seed: int) -> tuple[float, float]:
    """Kernel physics distance: median over batches and half the 68% spread (jetnet's ``kpd``)."""
    from scipy.stats import iqr

    x, y = _normalise(np.asarray(real, dtype=np.float64), np.asarray(gen, dtype=np.float64))
    values = []
    for i in range(num_batches):
        rng = np.random.default_rng(seed + i * 1000)  # jetnet's per-batch seeds
        values.append(
            _mmd_poly4_unbiased(x[rng.choice(len(x), size=batch_size)], y[rng.choice(len(y), size=batch_size)])
        )
    return float(np.median(values)), float(iqr(values, rng=(16.275, 83.725)) / 2)
