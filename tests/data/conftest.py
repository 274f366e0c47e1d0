"""Helpers for the data tests: small arrays in the layouts of hepgen.data."""

import numpy as np
import pytest

from hepgen.data import EventSample
from hepgen.data.events import MUON_MASS_GEV


@pytest.fixture
def rng():
    return np.random.default_rng(20261122)


def random_events(rng, n=40):
    """``n`` events with 1-3 jets, random kinematics within the layout's conventions."""
    n_jets = rng.integers(1, 4, size=n)
    muons = np.stack(
        [
            rng.uniform(20, 80, (n, 2)),
            rng.normal(size=(n, 2)),
            rng.uniform(-np.pi, np.pi, (n, 2)),
            np.full((n, 2), MUON_MASS_GEV),
        ],
        axis=-1,
    )
    muons[:, :, 0] = np.sort(muons[:, :, 0], axis=1)[:, ::-1]
    jets = np.stack(
        [
            rng.uniform(20, 200, (n, 3)),
            rng.normal(0, 2, (n, 3)),
            rng.uniform(-np.pi, np.pi, (n, 3)),
            rng.uniform(1, 20, (n, 3)),
        ],
        axis=-1,
    )
    jets[np.arange(3)[None, :] >= n_jets[:, None]] = 0
    return EventSample(muons, jets, n_jets)


@pytest.fixture
def make_events():
    return random_events
