"""Z(->mu mu) + jets events and their HDF5 files.

Per event: ``muons`` (N, 2, 4) and ``jets`` (N, 3, 4) as (pT [GeV], eta, phi, m [GeV]),
each ordered by pT, jets zero-padded beyond ``n_jets`` (N,). The flat representation of
"Jet Diffusion versus JetGPT" drops the leading muon's phi (every phi is taken relative
to it) and the muon masses: 5 + 4 n dimensions, i.e. 9, 13, 17 for 1, 2, 3 jets.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data.kinematics import invariant_mass
from hepgen.data.layouts.zjets import MAX_JETS, OBJECT_FEATURES

MUON_MASS_GEV = 0.1056583755


@dataclass
class EventSample:
    """Events: ``muons`` (N, 2, 4), ``jets`` (N, 3, 4) float32, ``n_jets`` (N,) int64, and
    for a Bayesian ensemble ``members`` (N,) int64: the weight draw that made each event."""

    muons: np.ndarray
    jets: np.ndarray
    n_jets: np.ndarray
    attrs: dict[str, Any] = field(default_factory=dict)
    members: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.muons = np.asarray(self.muons, dtype=np.float32)
        self.jets = np.asarray(self.jets, dtype=np.float32)
        self.n_jets = np.asarray(self.n_jets).astype(np.int64)
        n = len(self.muons)
        if self.muons.shape != (n, 2, 4):
            raise ValueError(f"muons: expected shape (N, 2, 4), got {self.muons.shape}")
        if self.jets.shape != (n, MAX_JETS, 4):
            raise ValueError(f"jets: expected shape ({n}, {MAX_JETS}, 4), got {self.jets.shape}")
        if self.n_jets.shape != (n,):
            raise ValueError(f"n_jets: expected shape ({n},), got {self.n_jets.shape}")
        if n and (self.n_jets.min() < 0 or self.n_jets.max() > MAX_JETS):
            raise ValueError(f"n_jets: expected values in 0..{MAX_JETS}")
        if self.members is not None:
            self.members = np.asarray(self.members).astype(np.int64)
            if self.members.shape != (n,):
                raise ValueError(f"members: expected shape ({n},), got {self.members.shape}")
            if n and self.members.min() < 0:
                raise ValueError("members: expected non-negative member indices")

    def __len__(self) -> int:
        return len(self.n_jets)

    def dimuon_mass(self) -> np.ndarray:
        """(N,) invariant mass of the two muons in GeV."""
        return invariant_mass(self.muons[:, 0], self.muons[:, 1])

    def write(self, path: str | os.PathLike, *, force: bool = False, attrs: dict[str, Any] | None = None) -> Path:
        """Write in the hepgen-zjets layout (:mod:`hepgen.data.layouts.zjets`, with the
        'member' dataset when the sample has members); ``attrs`` are added to its own."""
        from hepgen.data.layouts import zjets

        return zjets.write(path, self, attrs, force)

    @classmethod
    def concatenate(cls, chunks) -> EventSample:
        """One sample of ``chunks`` in order: the first chunk's attrs, 'clipped_pt' summed;
        members kept when every chunk has them."""
        chunks = list(chunks)
        if not chunks:
            raise ValueError("chunks: nothing to concatenate")
        with_members = [c.members is not None for c in chunks]
        if any(with_members) and not all(with_members):
            raise ValueError("chunks: some have ensemble members and some do not")
        attrs = dict(chunks[0].attrs)
        if any("clipped_pt" in c.attrs for c in chunks):
            attrs["clipped_pt"] = sum(int(c.attrs.get("clipped_pt", 0)) for c in chunks)
        cat = lambda key: np.concatenate([getattr(c, key) for c in chunks])  # noqa: E731
        return cls(cat("muons"), cat("jets"), cat("n_jets"), attrs, cat("members") if all(with_members) else None)


def write_events(
    path: str | os.PathLike,
    sample: EventSample,
    attrs: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write ``sample`` (keys 'muons', 'jets', 'n_jets'); ``attrs`` are added to its own."""
    return sample.write(path, force=force, attrs=attrs)


def read_events(path: str | os.PathLike) -> EventSample:
    """Read an event file, checking keys, shapes, units and jet counts (and 'member')."""
    from hepgen.data.layouts import zjets

    return zjets.read(path)


def vector_columns(n_jets: int) -> list[str]:
    """Names of the 5 + 4 n_jets columns of :func:`event_vectors`."""
    _check_n_jets(n_jets)
    names = ["mu1_pt", "mu1_eta", "mu2_pt", "mu2_eta", "mu2_phi"]
    for j in range(1, n_jets + 1):
        names += [f"j{j}_pt", f"j{j}_eta", f"j{j}_phi", f"j{j}_m"]
    return names


def absolute_vectors(sample: EventSample, n_jets: int) -> np.ndarray:
    """(M, 6 + 4 n_jets) [mu1 pT eta phi, mu2 pT eta phi, jets pT eta phi m] for the events
    with exactly ``n_jets`` jets; phi absolute, muon masses dropped."""
    _check_n_jets(n_jets)
    chosen = sample.n_jets == n_jets
    muons = sample.muons[chosen][:, :, :3].reshape(-1, 6)
    jets = sample.jets[chosen][:, :n_jets].reshape(-1, 4 * n_jets)
    return np.concatenate([muons, jets], axis=1)


def event_vectors(sample: EventSample, n_jets: int) -> np.ndarray:
    """(M, 5 + 4 n_jets) flat vectors of the events with exactly ``n_jets`` jets, phi
    relative to the leading muon (columns: :func:`vector_columns`)."""
    from hepgen.data.event_transforms import RelativePhi

    return RelativePhi(n_jets).forward(absolute_vectors(sample, n_jets))


def events_from_vectors(vectors: np.ndarray, n_jets: int, phi_leading: np.ndarray | float = 0.0) -> EventSample:
    """Events from flat vectors (inverse of :func:`event_vectors`); the leading muon gets
    azimuth ``phi_leading`` and both muons the muon mass."""
    from hepgen.data.event_transforms import RelativePhi

    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[1] != 5 + 4 * n_jets:
        raise ValueError(f"vectors: expected shape (N, {5 + 4 * n_jets}), got {vectors.shape}")
    absolute = RelativePhi(n_jets).inverse(vectors, phi_leading)
    n = len(absolute)
    muons = np.full((n, 2, 4), MUON_MASS_GEV, dtype=np.float32)
    muons[:, :, :3] = absolute[:, :6].reshape(n, 2, 3)
    jets = np.zeros((n, MAX_JETS, 4), dtype=np.float32)
    jets[:, :n_jets] = absolute[:, 6:].reshape(n, n_jets, 4)
    return EventSample(muons, jets, np.full(n, n_jets))


def _check_n_jets(n_jets: int) -> None:
    if not isinstance(n_jets, (int, np.integer)) or not 1 <= n_jets <= MAX_JETS:
        raise ValueError(f"n_jets: expected 1, 2 or 3, got {n_jets!r}")


__all__ = [
    "MAX_JETS",
    "OBJECT_FEATURES",
    "EventSample",
    "absolute_vectors",
    "event_vectors",
    "events_from_vectors",
    "read_events",
    "vector_columns",
    "write_events",
]
