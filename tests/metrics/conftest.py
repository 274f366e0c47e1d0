"""Shared settings of the metrics tests.

The classifiers here are small (3 × 64) and train on one CPU thread: on the 2-core CI
machine a network this size runs ~30× faster on one thread than on two contended ones.
"""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # for toys.py


@pytest.fixture
def small_classifier():
    from hepgen.metrics.training import ClassifierConfig

    return ClassifierConfig(hidden_layers=3, hidden_units=64, epochs=20, batch_size=256, threads=1)
