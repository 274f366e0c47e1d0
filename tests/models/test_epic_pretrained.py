"""The shipped EPiC-FM (Pythia top jets, 30 particles): it loads, and its jets are top-like.

Reference (docs/jets.md): on 10 000 held-out Pythia top jets the mass of the 30 stored
constituents has median 147 GeV, 55% of jets within 140-200 GeV, 1% below 60 GeV; the shipped
model at rk4 × 5 steps gave median 142 GeV and 44% in the window on 10 000 jets.
"""

import numpy as np
import torch

import hepgen.models
from hepgen.cli import main
from hepgen.data import read_jets
from hepgen.models.epic import PRETRAINED, relative_mass


def test_pretrained_model_is_small_and_loads():
    assert PRETRAINED.is_file() and PRETRAINED.stat().st_size < 3 * 2**20
    model = hepgen.models.load("pretrained-jets")
    assert model.config.model == "epic-fm" and model.config.particles == 30 and model.config.conditional


def test_pretrained_jets_have_a_top_mass_peak():
    torch.set_num_threads(1)
    model = hepgen.models.load("pretrained-jets")
    jets = model.sample(300, steps=5, method="rk4", generator=torch.Generator().manual_seed(0))
    mass = relative_mass(jets.particles) * jets.jets[:, 0]
    assert 800 < np.median(jets.jets[:, 0]) < 1200  # the training range of jet pT
    # A QCD-like or broken model puts the median far below (light jets: tens of GeV).
    assert 127 < np.median(mass) < 167, np.median(mass)
    assert np.mean((mass > 140) & (mass < 200)) > 0.3
    assert np.mean(mass < 60) < 0.1


def test_generate_jets_works_out_of_the_box(tmp_path):
    out = tmp_path / "out.h5"
    assert main(["generate", "jets", "-n", "20", "-o", str(out), "--quiet"]) == 0  # the shipped model, defaults
    sample = read_jets(out)
    assert sample.particles.shape == (20, 30, 4) and sample.attrs["model"] == "pretrained"
    assert sample.attrs["method"] == "midpoint" and sample.attrs["nfe"] == 200
