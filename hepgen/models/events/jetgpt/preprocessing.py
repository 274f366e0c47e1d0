"""JetGPT's view of events: padded token sequences in the preprocessed space, and back.

An event with n jets becomes the 5 + 4n components of :func:`hepgen.data.event_vectors`
(mu1 pT, eta; mu2 pT, eta, phi; per jet pT, eta, phi, m; every phi relative to mu1), in
that order, preprocessed by :func:`hepgen.data.event_transforms.event_preprocessing`
(log pT, log(pT - 20 GeV + 0.01), log(m + 0.01), artanh(phi / pi), standardisation), and
padded with zeros to 17. Each multiplicity has its own standardisation (the network is
told the multiplicity, so the shift between them costs it nothing). The means, standard
deviations and the multiplicity fractions are buffers: they travel in the checkpoint.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from hepgen.data.event_transforms import event_preprocessing
from hepgen.data.events import MAX_JETS, EventSample, event_vectors, events_from_vectors

MAX_LENGTH = 5 + 4 * MAX_JETS


def sequence_length(n_jets):
    """Components of an event with ``n_jets`` jets (int or tensor): 5 + 4 n."""
    return 5 + 4 * n_jets


class EventCoding(nn.Module):
    """Fitted preprocessing: EventSample <-> (x [N, 17] padded float32, n_jets [N] int64)."""

    def __init__(self, jet_pt_min: float = 20.0, pt_offset: float = 0.01, mass_offset: float = 0.01):
        super().__init__()
        self.jet_pt_min, self.pt_offset, self.mass_offset = jet_pt_min, pt_offset, mass_offset
        self.register_buffer("mean", torch.zeros(MAX_JETS, MAX_LENGTH, dtype=torch.float64))
        self.register_buffer("std", torch.ones(MAX_JETS, MAX_LENGTH, dtype=torch.float64))
        # Fraction of training events with 1, 2, 3 jets: JetGPT draws the multiplicity from it.
        self.register_buffer("fractions", torch.zeros(MAX_JETS, dtype=torch.float64))

    @property
    def fitted(self) -> bool:
        return bool(self.fractions.sum() > 0)

    def _chain(self, n: int):
        chain = event_preprocessing(n, jet_pt_min=self.jet_pt_min, offset=self.pt_offset,
                                    mass_offset=self.mass_offset)
        return chain

    def fit(self, sample: EventSample) -> EventCoding:
        """Standardisation per multiplicity and the multiplicity fractions from ``sample``."""
        counts = np.array([(sample.n_jets == n).sum() for n in range(1, MAX_JETS + 1)], dtype=np.float64)
        if counts.sum() == 0:
            raise ValueError("sample: no events with 1, 2 or 3 jets to fit the preprocessing on")
        for n in range(1, MAX_JETS + 1):
            if counts[n - 1] < 2:
                continue  # too few to standardise; such a multiplicity is never sampled (fraction ~0)
            chain = self._chain(n).fit(event_vectors(sample, n).astype(np.float64))
            standardize = chain.transforms[-1]
            d = sequence_length(n)
            self.mean[n - 1, :d] = torch.from_numpy(standardize.mean)
            self.std[n - 1, :d] = torch.from_numpy(standardize.std)
        usable = np.where(counts >= 2, counts, 0)
        self.fractions.copy_(torch.from_numpy(usable / usable.sum()))
        return self

    def _fitted_chain(self, n: int):
        chain = self._chain(n)
        d = sequence_length(n)
        chain.transforms[-1].mean = self.mean[n - 1, :d].cpu().numpy()
        chain.transforms[-1].std = self.std[n - 1, :d].cpu().numpy()
        return chain

    def encode(self, sample: EventSample) -> tuple[torch.Tensor, torch.Tensor]:
        """(x [M, 17] float32, zero beyond each event's length; n_jets [M]) for the M events of
        ``sample`` with 1..3 jets whose multiplicity was seen in fitting, in file order."""
        if not self.fitted:
            raise RuntimeError("EventCoding: call fit(sample) first")
        keep = (sample.n_jets >= 1) & (sample.n_jets <= MAX_JETS)
        keep &= self.fractions.cpu().numpy()[np.clip(sample.n_jets, 1, MAX_JETS) - 1] > 0
        n_jets = sample.n_jets[keep]
        x = np.zeros((len(n_jets), MAX_LENGTH), dtype=np.float32)
        for n in range(1, MAX_JETS + 1):
            rows = n_jets == n
            if rows.any():
                sub = EventSample(sample.muons[keep][rows], sample.jets[keep][rows], n_jets[rows])
                x[rows, :sequence_length(n)] = self._fitted_chain(n).forward(
                    event_vectors(sub, n).astype(np.float64))
        return torch.from_numpy(x), torch.from_numpy(n_jets.astype(np.int64))

    def decode(self, x: torch.Tensor, n_jets: torch.Tensor, phi_leading: np.ndarray | None = None) -> EventSample:
        """Events from padded preprocessed sequences (inverse of :meth:`encode`); the leading
        muon gets azimuth ``phi_leading`` (N,) (default 0; events are symmetric in phi)."""
        x = np.asarray(x.detach().cpu(), dtype=np.float64)
        n_jets = np.asarray(n_jets.cpu(), dtype=np.int64)
        if x.ndim != 2 or x.shape[1] != MAX_LENGTH or n_jets.shape != (len(x),):
            raise ValueError(f"x must be [N, {MAX_LENGTH}] and n_jets [N], got {x.shape} and {n_jets.shape}")
        phi = np.zeros(len(x)) if phi_leading is None else np.asarray(phi_leading, dtype=np.float64)
        muons = np.zeros((len(x), 2, 4), dtype=np.float32)
        jets = np.zeros((len(x), MAX_JETS, 4), dtype=np.float32)
        for n in range(1, MAX_JETS + 1):
            rows = n_jets == n
            if rows.any():
                vectors = self._fitted_chain(n).inverse(x[rows, :sequence_length(n)])
                part = events_from_vectors(vectors, n, phi[rows])
                muons[rows], jets[rows] = part.muons, part.jets
        return EventSample(muons, jets, n_jets)
