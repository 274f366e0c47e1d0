"""The CaloMan checkpoint shipped in the package: it loads, is small, `hepgen generate calo`
uses it without --model, and its showers have the GFlash parametrization's energy response."""

import numpy as np
import pytest
import torch

import hepgen.models
from hepgen.cli import main
from hepgen.data import GFlashSimulator, read_showers
from hepgen.models.caloman import PRETRAINED_PATH, CaloMan

# Away from the ends of the training range, and one at each end.
ENERGIES = (256.0, 2048.0, 65536.0, 4194304.0)


@pytest.fixture(scope="module")
def pretrained():
    torch.set_num_threads(1)
    return hepgen.models.load("pretrained-calo")


def test_shipped_checkpoint_is_small_and_loads(pretrained):
    assert PRETRAINED_PATH.stat().st_size < 5 * 2**20  # "a few MB" in the wheel
    model = pretrained
    extra = model.provenance
    assert isinstance(model, CaloMan) and not model.training
    assert extra["n_train"] >= 10_000 and "GFlash" in extra["data_description"]


@pytest.mark.parametrize("energy", ENERGIES)
def test_shipped_model_energy_response(pretrained, energy):
    """<E_tot / E_inc> and its spread against GFlash showers simulated now at the same energy.

    Tolerance on the mean: 4 standard errors of the difference of the two 1000-shower means
    (what chance allows) plus 0.01 for the model's own bias, which docs/caloman.md measures at
    2.5% at 256 MeV and <= 0.9% above, with 20000 showers. Measured here:
    differences 0.0075, -0.0001, -0.0016, -0.0022 against tolerances 0.051, 0.024, 0.012,
    0.011. The spread: within a factor 1.35 of the truth's (measured ratios 1.10, 1.03, 1.02),
    except at 4 TeV, the edge of the training range, where the model is known to be too wide
    (0.6% truth; ratio 1.57 here, 1.33 in the 20000-shower table): factor 2 there.
    """
    model = pretrained
    torch.manual_seed(0)  # no seed: torch's global stream, as these numbers were measured
    generated = model.sample(condition=np.full(1000, energy), batch_size=1000).showers.sum(1) / energy
    truth = GFlashSimulator().sample(1000, np.random.default_rng(11), (energy,))
    truth = truth.showers.sum(1) / energy
    error = np.sqrt(generated.var() / len(generated) + truth.var() / len(truth))
    assert abs(generated.mean() - truth.mean()) < 4 * error + 0.01, (generated.mean(), truth.mean())
    window = 2.0 if energy == ENERGIES[-1] else 1.35
    assert 1 / window < generated.std() / truth.std() < window, (generated.std(), truth.std())


def test_generate_without_model_uses_the_shipped_one(tmp_path, capsys):
    out = tmp_path / "gen.h5"
    assert main(["generate", "calo", "-n", "20", "--energy", "4096", "-o", str(out)]) == 0
    sample = read_showers(out)
    assert sample.showers.shape == (20, 368) and np.all(sample.incident_energies == 4096)
    assert "caloman_gflash_photons.pt" in sample.attrs["model"]
