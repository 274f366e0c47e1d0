"""A Z(->mu mu)+1-3 jets toy as an EventSample (tests/metrics/toys.py's generator: a
Breit-Wigner peak from a genuine two-body decay, falling jet spectra), and a file writer."""

import importlib.util
from pathlib import Path

import numpy as np

from hepgen.data.events import EventSample, write_events

_spec = importlib.util.spec_from_file_location("metrics_toys", Path(__file__).parents[1] / "metrics" / "toys.py")
toys = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(toys)
Z_MASS = toys.Z_MASS


def z_sample(n: int, seed: int = 0) -> EventSample:
    events = toys.z_events(n, np.random.default_rng(seed))
    muons = events.muons.copy()
    muons[..., 3] = toys.MUON_MASS
    return EventSample(muons, events.jets, events.n_jets, {"jet_pt_min": 20.0})


def z_file(path, n: int, seed: int = 0):
    return write_events(path, z_sample(n, seed))
