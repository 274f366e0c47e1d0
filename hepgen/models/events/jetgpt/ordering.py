"""pT ordering of generated events.

No generator here builds the ordering of muons and jets by pT into its network (the paper's
JetGPT does not either); a generated event may come out with, e.g., a second jet harder
than the first. :func:`sort_by_pt` reorders such events (whole objects are swapped: in an
EventSample every phi is absolute, so the physics of the event is unchanged) and says
which ones it changed, so the fraction can be reported as a quality figure.
"""

from __future__ import annotations

import numpy as np

from hepgen.data.events import MAX_JETS, EventSample


def sort_by_pt(sample: EventSample) -> tuple[EventSample, np.ndarray]:
    """(events with muons and jets in decreasing pT, (N,) bool mask of the events changed)."""
    muon_order = np.argsort(-sample.muons[:, :, 0], axis=1, kind="stable")
    pts = np.where(np.arange(MAX_JETS) < sample.n_jets[:, None], sample.jets[:, :, 0], -np.inf)
    jet_order = np.argsort(-pts, axis=1, kind="stable")
    changed = (muon_order != np.arange(2)).any(1) | (jet_order != np.arange(MAX_JETS)).any(1)
    muons = np.take_along_axis(sample.muons, muon_order[:, :, None], axis=1)
    jets = np.take_along_axis(sample.jets, jet_order[:, :, None], axis=1)
    return EventSample(muons, jets, sample.n_jets, dict(sample.attrs)), changed
