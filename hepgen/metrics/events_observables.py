"""The observables of the event plots and of the precision table, and their binning."""

from __future__ import annotations

import numpy as np

from hepgen.data.events import EventSample
from hepgen.metrics.features.events import observables as event_observables
from hepgen.metrics.separation import common_bins

# Muon and jet pT and eta, M_mumu, Delta R between jets: the paper's standard set.
PLOTTED = (
    "m_mumu",
    "pt_mu1",
    "pt_mu2",
    "eta_mu1",
    "eta_mu2",
    "pt_j1",
    "pt_j2",
    "pt_j3",
    "eta_j1",
    "eta_j2",
    "eta_j3",
    "dr_j1j2",
    "dr_j1j3",
    "dr_j2j3",
)
# The precision table's observables: the Z peak and the jet-jet separation.
PRECISION = ("m_mumu", "dr_j1j2")


def observable_values(sample: EventSample, names=PLOTTED) -> dict[str, tuple[str, np.ndarray, bool]]:
    """name -> (axis label, values (N,) with NaN where undefined, log binning?)."""
    found = {o.name: (o.label, o.values, o.log) for o in event_observables(sample)}
    return {name: found[name] for name in names if name in found}


def bins_for(name: str, truth_values: np.ndarray, log: bool, n_bins: int = 40) -> np.ndarray | None:
    """Edges from the truth only (a generator cannot move them); None if truth has < 10 values."""
    values = truth_values[np.isfinite(truth_values)]
    if len(values) < 10:
        return None
    if name == "m_mumu":  # the Z window: the peak and its shoulders, not the far tails
        return common_bins(values, n_bins, coverage=0.98)
    if name.startswith("eta") or name.startswith("dr"):
        return common_bins(values, n_bins, coverage=0.998)
    return common_bins(values, n_bins, log=log, coverage=0.995)
