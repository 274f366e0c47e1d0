"""Collider coordinates from four-momenta (numpy, any shape)."""

from __future__ import annotations

import numpy as np


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Azimuthal angles wrapped into (-pi, pi]."""
    wrapped = np.mod(phi + np.pi, 2 * np.pi) - np.pi
    return np.where(wrapped == -np.pi, np.pi, wrapped)


def pt_eta_phi_m(px, py, pz, e) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pT, pseudorapidity, phi, mass) from (px, py, pz, E); mass is 0 where m^2 < 0."""
    px, py, pz, e = (np.asarray(a, dtype=np.float64) for a in (px, py, pz, e))
    pt = np.hypot(px, py)
    # arcsinh(pz/pT) is the pseudorapidity without the cancellation of log((p+pz)/(p-pz)).
    with np.errstate(divide="ignore", invalid="ignore"):
        eta = np.arcsinh(np.where(pt > 0, pz / pt, np.sign(pz) * np.inf))
    phi = np.arctan2(py, px)
    m2 = e**2 - px**2 - py**2 - pz**2
    mass = np.sqrt(np.clip(m2, 0.0, None))
    return pt, eta, phi, mass


def invariant_mass(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Invariant mass of pairs given as (..., 4) arrays of (pT, eta, phi, m)."""
    total = _to_cartesian(a) + _to_cartesian(b)
    m2 = total[..., 3] ** 2 - np.sum(total[..., :3] ** 2, axis=-1)
    return np.sqrt(np.clip(m2, 0.0, None))


def _to_cartesian(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=np.float64)
    pt, eta, phi, m = v[..., 0], v[..., 1], v[..., 2], v[..., 3]
    px, py, pz = pt * np.cos(phi), pt * np.sin(phi), pt * np.sinh(eta)
    e = np.sqrt(px**2 + py**2 + pz**2 + m**2)
    return np.stack([px, py, pz, e], axis=-1)
