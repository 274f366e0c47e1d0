"""Toy jets in the JetNet layout for the EPiC model tests (tiny, fast, deterministic)."""

import numpy as np

P = 8


def toy_jets(n=96, seed=0, P=P):
    """JetNet-layout toy jets: N in 2..P, two-prong-ish particles, pT_rel summing to ~1."""
    rng = np.random.default_rng(seed)
    mult = rng.integers(2, P + 1, n)
    mask = np.arange(P)[None] < mult[:, None]
    particles = np.zeros((n, P, 4), np.float32)
    prong = rng.choice([-0.2, 0.2], (n, P))
    particles[..., 0] = prong + rng.normal(0, 0.03, (n, P))
    particles[..., 1] = rng.normal(0, 0.05, (n, P))
    pt = rng.exponential(1.0, (n, P)) * mask
    particles[..., 2] = -np.sort(-pt / pt.sum(1, keepdims=True), axis=1)
    particles[..., 3] = 1
    particles *= mask[..., None]
    jets = np.stack([rng.uniform(500, 700, n), rng.normal(0, 1, n), rng.uniform(120, 200, n), mult], 1)
    return particles, jets.astype(np.float32)
