"""Invertible preprocessing of Z+jets event vectors, as in "Jet Diffusion versus JetGPT".

The standard chain (:func:`event_preprocessing`) acts on the flat vectors of
:func:`hepgen.data.event_vectors`: log pT for muons, log(pT - 20 GeV + 0.01) for jets (the
threshold shift keeps jets near the 20 GeV cut from piling up at -inf), log m (here
log(m + 0.01 GeV) by default, since a particle-level jet can be massless), artanh(phi/pi)
(phi is bounded, the networks prefer an unbounded variable), then standardisation.
Every transform has ``forward`` and ``inverse`` and works on numpy arrays and torch tensors
of shape (N, D) without changing their dtype or device; none modifies its input.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from hepgen.data.events import MAX_JETS, vector_columns


def _namespace(x):
    """numpy or torch, whichever ``x`` belongs to."""
    if isinstance(x, np.ndarray):
        return np
    if type(x).__module__.startswith("torch"):
        import torch

        return torch
    raise TypeError(f"x: expected a numpy array or torch tensor, got {type(x).__name__}")


def _copy(x):
    return x.copy() if isinstance(x, np.ndarray) else x.clone()


def _check_2d(x, name: str) -> None:
    if x.ndim != 2:
        raise ValueError(f"{name}: expected shape (N, D), got {tuple(x.shape)}")


def _like(values: np.ndarray, x):
    """``values`` (numpy) as an array of the type, dtype and device of ``x``."""
    if isinstance(x, np.ndarray):
        return values.astype(x.dtype)
    import torch

    return torch.as_tensor(values, dtype=x.dtype, device=x.device)


def _wrap_phi(phi, xp):
    wrapped = xp.remainder(phi + math.pi, 2 * math.pi) - math.pi
    return xp.where(wrapped == -math.pi, math.pi * xp.ones_like(wrapped), wrapped)


class Transform:
    """An invertible map of (N, D) arrays."""

    def fit(self, x) -> Transform:
        """Set data-dependent parameters from ``x``; a no-op unless overridden."""
        return self

    def forward(self, x):
        raise NotImplementedError

    def inverse(self, y):
        raise NotImplementedError


class LogTransform(Transform):
    """y = log(x - shift) on ``columns``; x must exceed ``shift``."""

    def __init__(self, columns: Sequence[int], shift: float = 0.0):
        self.columns = list(columns)
        self.shift = float(shift)

    def forward(self, x):
        xp = _namespace(x)
        _check_2d(x, "x")
        values = x[:, self.columns]
        if bool((values <= self.shift).any()):
            raise ValueError(
                f"LogTransform: columns {self.columns} must exceed {self.shift:g} "
                f"(smallest value {float(values.min()):g})"
            )
        y = _copy(x)
        y[:, self.columns] = xp.log(values - self.shift)
        return y

    def inverse(self, y):
        xp = _namespace(y)
        _check_2d(y, "y")
        x = _copy(y)
        x[:, self.columns] = xp.exp(y[:, self.columns]) + self.shift
        return x


class ArtanhPhi(Transform):
    """y = artanh(phi / pi) on ``columns``; |phi| <= pi, with phi = +-pi mapped to the
    largest finite value of the dtype's precision."""

    def __init__(self, columns: Sequence[int]):
        self.columns = list(columns)

    def forward(self, x):
        xp = _namespace(x)
        _check_2d(x, "x")
        u = x[:, self.columns] / math.pi
        if bool((abs(u) > 1 + 1e-6).any()):
            raise ValueError(f"ArtanhPhi: columns {self.columns} must lie in [-pi, pi]")
        eps = float(np.finfo(x.dtype).eps if xp is np else xp.finfo(x.dtype).eps)
        y = _copy(x)
        y[:, self.columns] = xp.arctanh(xp.clip(u, -1 + eps, 1 - eps))
        return y

    def inverse(self, y):
        xp = _namespace(y)
        _check_2d(y, "y")
        x = _copy(y)
        x[:, self.columns] = math.pi * xp.tanh(y[:, self.columns])
        return x


class Standardize(Transform):
    """y = (x - mean) / std per column; ``fit`` sets mean and std (std 0 becomes 1)."""

    def __init__(self, mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        self.mean = None if mean is None else np.asarray(mean, dtype=np.float64)
        self.std = None if std is None else np.asarray(std, dtype=np.float64)

    def fit(self, x) -> Standardize:
        _check_2d(x, "x")
        if len(x) == 0:
            raise ValueError("Standardize.fit: x is empty")
        values = np.asarray(x.detach().cpu() if hasattr(x, "detach") else x, dtype=np.float64)
        self.mean = values.mean(axis=0)
        std = values.std(axis=0)
        self.std = np.where(std > 0, std, 1.0)
        return self

    def _params(self, x):
        if self.mean is None or self.std is None:
            raise ValueError("Standardize: call fit(x) or pass mean and std first")
        _check_2d(x, "x")
        if x.shape[1] != len(self.mean):
            raise ValueError(f"x: expected {len(self.mean)} columns, got {x.shape[1]}")
        return _like(self.mean, x), _like(self.std, x)

    def forward(self, x):
        mean, std = self._params(x)
        return (x - mean) / std

    def inverse(self, y):
        mean, std = self._params(y)
        return y * std + mean


class RelativePhi(Transform):
    """Absolute event vectors (N, 6 + 4 n) -> flat vectors (N, 5 + 4 n): every phi taken
    relative to the leading muon's, whose own phi is dropped. ``inverse`` puts the leading
    muon at ``phi_leading`` (scalar or (N,); the events are symmetric under rotations)."""

    def __init__(self, n_jets: int):
        if not 1 <= n_jets <= MAX_JETS:
            raise ValueError(f"n_jets: expected 1, 2 or 3, got {n_jets!r}")
        self.n_jets = n_jets
        # Phi columns of the absolute vectors (mu1 first), and of the relative ones.
        self.absolute_phi = [2, 5] + [6 + 4 * j + 2 for j in range(n_jets)]
        self.relative_phi = [4] + [5 + 4 * j + 2 for j in range(n_jets)]

    def forward(self, x):
        xp = _namespace(x)
        _check_2d(x, "x")
        if x.shape[1] != 6 + 4 * self.n_jets:
            raise ValueError(f"x: expected {6 + 4 * self.n_jets} columns, got {x.shape[1]}")
        keep = [c for c in range(x.shape[1]) if c != 2]
        y = _copy(x[:, keep])
        y[:, self.relative_phi] = _wrap_phi(x[:, self.absolute_phi[1:]] - x[:, 2:3], xp)
        return y

    def inverse(self, y, phi_leading=0.0):
        xp = _namespace(y)
        _check_2d(y, "y")
        if y.shape[1] != 5 + 4 * self.n_jets:
            raise ValueError(f"y: expected {5 + 4 * self.n_jets} columns, got {y.shape[1]}")
        lead = _wrap_phi(xp.zeros_like(y[:, :1]) + _like(np.asarray(phi_leading).reshape(-1, 1), y), xp)
        parts = [y[:, :2], lead, y[:, 2:]]
        x = np.concatenate(parts, axis=1) if xp is np else xp.cat(parts, dim=1)
        x[:, self.absolute_phi[1:]] = _wrap_phi(y[:, self.relative_phi] + lead, xp)
        return x


class Chain(Transform):
    """Transforms applied in order; ``inverse`` undoes them in reverse order."""

    def __init__(self, *transforms: Transform):
        self.transforms = list(transforms)

    def fit(self, x) -> Chain:
        for transform in self.transforms:
            x = transform.fit(x).forward(x)
        return self

    def forward(self, x):
        for transform in self.transforms:
            x = transform.forward(x)
        return x

    def inverse(self, y):
        for transform in reversed(self.transforms):
            y = transform.inverse(y)
        return y


def event_preprocessing(
    n_jets: int, jet_pt_min: float = 20.0, offset: float = 0.01, mass_offset: float = 0.01
) -> Chain:
    """The standard chain for flat ``n_jets`` vectors (call ``fit`` before use): log pT
    (muons), log(pT - jet_pt_min + offset) (jets), log(m + mass_offset), artanh(phi/pi),
    standardisation. ``mass_offset`` (GeV) admits the massless jets that particle-level
    events contain (a lone photon); 0 gives the plain log m of the literature."""
    names = vector_columns(n_jets)
    muon_pt = [i for i, n in enumerate(names) if n.startswith("mu") and n.endswith("_pt")]
    jet_pt = [i for i, n in enumerate(names) if n.startswith("j") and n.endswith("_pt")]
    mass = [i for i, n in enumerate(names) if n.endswith("_m")]
    phi = [i for i, n in enumerate(names) if n.endswith("_phi")]
    return Chain(
        LogTransform(muon_pt),
        LogTransform(jet_pt, shift=jet_pt_min - offset),
        LogTransform(mass, shift=-mass_offset),
        ArtanhPhi(phi),
        Standardize(),
    )
