"""torchrun -m hepgen train calo: 2 gloo ranks == 1 process through CaloMan's three phases
(the VAE's reparametrisation noise, the latent standardisation reduced over ranks, the
dequantisation noise of each shower's layer values)."""

import numpy as np
import torch
from train_helpers import failure, hepgen

from hepgen.data import GFlashSimulator, write_showers
from hepgen.models.checkpoint import Checkpoint

TINY = ["--epochs", "1", "--latent", "4", "--hidden", "16", "--batch-size", "40", "--quiet", "--seed", "2"]


def test_two_ranks_equal_one_process(tmp_path):
    data = tmp_path / "showers.h5"
    write_showers(data, GFlashSimulator().sample(160, np.random.default_rng(0), (1024.0, 8192.0)))
    weights = []
    for name, nproc in (("one.pt", None), ("two.pt", 2)):
        result = hepgen(["train", "calo", "--data", data, "-o", tmp_path / name, *TINY], tmp_path, nproc)
        assert result.returncode == 0, failure(result)
        assert result.stdout.count("wrote ") == 1
        weights.append(Checkpoint.read(tmp_path / name).weights)
    assert weights[0].keys() == weights[1].keys()
    # Float32 rounding of the gradient sums, as Adam turns it into updates: a component
    # whose gradient is near 0 moves by up to a fraction of lr (1e-3) per step on either
    # side. 1e-5 is 1% of one step; a wrong batch or draw moves weights by whole steps.
    for key in weights[0]:
        torch.testing.assert_close(weights[0][key], weights[1][key], rtol=2e-5, atol=1e-5, msg=key)
