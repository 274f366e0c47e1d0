"""Events from a trained JetGPT: multiplicity, then the components autoregressively, then the
inverse preprocessing.

Physical constraints: the preprocessing keeps jet pT above 20 GeV, masses positive and
|phi| < pi (artanh(phi/pi)), so every sampled vector is a valid event. pT ordering is not
built into the network (the paper's JetGPT does not enforce it either); a generated event
whose muons or jets come out of pT order is reordered (objects are swapped, phi stays
relative to the new leading muon) and the number so reordered is reported.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch

from hepgen.data.events import MAX_JETS, EventSample
from hepgen.models.events.jetgpt.model import JetGPT
from hepgen.models.events.jetgpt.preprocessing import MAX_LENGTH, sequence_length


@dataclass
class SampleInfo:
    reordered: int = 0  # events whose objects came out of pT order (fixed by sorting)
    per_multiplicity: dict[int, int] = field(default_factory=dict)


def sort_by_pt(sample: EventSample) -> tuple[EventSample, np.ndarray]:
    """Muons and jets of each event ordered by decreasing pT; also the (N,) bool mask of the
    events that changed. Every phi is absolute in an EventSample, so swapping is exact."""
    muon_order = np.argsort(-sample.muons[:, :, 0], axis=1, kind="stable")
    pts = np.where(np.arange(MAX_JETS) < sample.n_jets[:, None], sample.jets[:, :, 0], -np.inf)
    jet_order = np.argsort(-pts, axis=1, kind="stable")
    changed = (muon_order != np.arange(2)).any(1) | (jet_order != np.arange(MAX_JETS)).any(1)
    muons = np.take_along_axis(sample.muons, muon_order[:, :, None], axis=1)
    jets = np.take_along_axis(sample.jets, jet_order[:, :, None], axis=1)
    return EventSample(muons, jets, sample.n_jets, dict(sample.attrs)), changed


def draw_multiplicities(model: JetGPT, n: int, generator: torch.Generator) -> torch.Tensor:
    """(n,) jet counts drawn from the training fractions stored in the model."""
    fractions = model.coding.fractions.detach().cpu()
    if not fractions.sum() > 0:
        raise RuntimeError("the model's preprocessing is not fitted (no multiplicity fractions)")
    return torch.multinomial(fractions, n, replacement=True, generator=generator) + 1


@torch.no_grad()
def sample_vectors(model: JetGPT, n_jets: torch.Tensor, generator: torch.Generator, batch_size: int = 10_000,
                   use_cache: bool = True, progress: Callable | None = None) -> torch.Tensor:
    """Preprocessed sequences x [N, 17] (zero-padded) for the given jet counts [N].

    The random numbers of every event are drawn up front in event order, so the result does
    not depend on batch_size or use_cache (beyond rounding). Events are grouped by jet count
    so that every batch runs exactly its 5 + 4 n steps.
    """
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    N = len(n_jets)
    uniform = torch.rand(N, MAX_LENGTH, generator=generator, dtype=torch.float64)
    normal = torch.randn(N, MAX_LENGTH, generator=generator, dtype=torch.float64)
    dtype = model.start.dtype
    x = torch.zeros(N, MAX_LENGTH, dtype=dtype)
    was_training = model.training
    model.eval()
    try:
        jobs = []
        for n in range(1, MAX_JETS + 1):
            rows = torch.nonzero(n_jets == n).squeeze(1)
            jobs += [(n, rows[i:i + batch_size]) for i in range(0, len(rows), batch_size)]
        for n, rows in (progress(jobs) if progress else jobs):
            D = sequence_length(n)
            x[rows, :D] = model.sample_sequences(n, uniform[rows].to(dtype), normal[rows].to(dtype),
                                                 use_cache=use_cache).cpu()
    finally:
        model.train(was_training)
    return x


def sample_events(model: JetGPT, n: int, seed: int = 0, batch_size: int = 10_000, use_cache: bool = True,
                  sort: bool = True, progress: Callable | None = None) -> tuple[EventSample, SampleInfo]:
    """``n`` events (GeV) from ``model``: jet counts from the training fractions, components
    autoregressively, leading-muon azimuth uniform in [-pi, pi); ``sort`` reorders objects
    that came out of pT order (counted in the returned SampleInfo)."""
    if not isinstance(n, int) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    n_jets = draw_multiplicities(model, n, generator)
    x = sample_vectors(model, n_jets, generator, batch_size, use_cache, progress)
    phi = (torch.rand(n, generator=generator, dtype=torch.float64) * 2 - 1) * np.pi
    events = model.coding.decode(x, n_jets, phi.numpy())
    info = SampleInfo(per_multiplicity={k: int((n_jets == k).sum()) for k in range(1, MAX_JETS + 1)})
    if sort:
        events, changed = sort_by_pt(events)
        info.reordered = int(changed.sum())
    return events, info
