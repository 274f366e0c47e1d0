"""torchrun -m hepgen train calo: 2 gloo ranks == 1 process through CaloMan's three phases
(the VAE's reparametrisation noise, the latent standardisation reduced over ranks, the
dequantisation noise of each shower's layer values); an interrupted run resumed, on the
same or another number of ranks, equals the uninterrupted one."""

import numpy as np
import pytest
import torch
from train_helpers import failure, hepgen

from hepgen.data import GFlashSimulator, write_showers
from hepgen.models.caloman import CaloManConfig, train_caloman
from hepgen.models.caloman.model import CaloMan
from hepgen.models.checkpoint import Checkpoint

TINY = ["--latent", "4", "--hidden", "16", "--batch-size", "40", "--quiet", "--seed", "2"]


def _showers(n=160):
    return GFlashSimulator().sample(n, np.random.default_rng(0), (1024.0, 8192.0))


def _data(tmp_path):
    data = tmp_path / "showers.h5"
    if not data.exists():
        write_showers(data, _showers())
    return data


def _train(tmp_path, name, epochs, nproc=None, extra=()):
    args = ["train", "calo", "--data", _data(tmp_path), "-o", tmp_path / name, "--epochs", epochs, *TINY, *extra]
    result = hepgen(args, tmp_path, nproc)
    assert result.returncode == 0, failure(result)
    assert result.stdout.count("wrote ") == 1
    return Checkpoint.read(tmp_path / name)


def _assert_close(a: dict, b: dict, atol=1e-5):
    # Float32 rounding of the gradient sums, as Adam turns it into updates: a component
    # whose gradient is near 0 moves by up to a fraction of lr (1e-3) per step on either
    # side. 1e-5 is 1% of one step; a wrong batch or draw moves weights by whole steps.
    assert a.keys() == b.keys()
    for key in a:
        torch.testing.assert_close(a[key], b[key], rtol=2e-5, atol=atol, msg=key)


def test_two_ranks_equal_one_process(tmp_path):
    one = _train(tmp_path, "one.pt", 1)
    two = _train(tmp_path, "two.pt", 1, nproc=2)
    _assert_close(one.weights, two.weights)
    assert one.entries["train_state"]["phase"] == "layer_flow"


@pytest.mark.slow
def test_resume_on_another_number_of_ranks(tmp_path):
    # 2 epochs per phase, 6 in all; --until 3 stops in the latent flow's first epoch, so the
    # resume needs the VAE and the latent standardisation from the checkpoint and the
    # latent flow's optimizer and schedule from its training state.
    # A batch of 80: 12 optimizer steps in all.
    full = _train(tmp_path, "full.pt", 2, extra=["--batch-size", "80"])
    part = _train(tmp_path, "part.pt", 2, nproc=2, extra=["--batch-size", "80", "--until", "3"])
    state = part.entries["train_state"]
    assert (state["phase"], state["epoch"], len(state["history"]["vae"])) == ("latent_flow", 1, 2)
    resumed = _train(tmp_path, "part.pt", 2, extra=["--batch-size", "80", "--resume"])  # on one process
    # 12 steps let the rounding of 2 ranks vs 1 grow: measured 2.0e-5 at most, the same
    # with or without the interruption; 1e-4 is 10% of one step, a lost optimizer state or
    # a repeated or skipped epoch moves weights by whole steps.
    _assert_close(full.weights, resumed.weights, atol=1e-4)
    history = resumed.entries["train_state"]["history"]
    for phase, losses in full.entries["train_state"]["history"].items():
        assert history[phase] == pytest.approx(losses, rel=1e-5), phase


def _fit(showers, **kw):
    config = CaloManConfig(latent=4, hidden=(16,))
    return train_caloman(showers.showers, showers.incident_energies, config, epochs=2, batch_size=40, seed=2, **kw)


def test_resume_in_every_phase_equals_the_uninterrupted_run():
    showers = _showers(120)
    full = _fit(showers)
    assert full.epochs_done == 6 and [len(v) for v in full.history.values()] == [2, 2, 2]
    # Cut mid-phase (1, 3, 5: the phase's optimizer resumes) and at a phase's end (2, 4).
    for cut in range(1, 6):
        seen = []
        part = _fit(showers, until=cut, on_epoch=lambda r: seen.append((r.phase, r.epoch)))
        assert len(seen) == part.epochs_done == cut
        saved = CaloMan.from_checkpoint(part.model.to_checkpoint())  # what the CLI writes and reads
        resumed = _fit(showers, resume=part.train_state, model=saved)
        assert resumed.history == full.history, cut
        expected, got = full.model.state_dict(), resumed.model.state_dict()
        for key in expected:
            assert torch.equal(expected[key], got[key]), (cut, key)


def test_resume_refuses_other_settings():
    showers = _showers(120)
    part = _fit(showers, until=1)
    with pytest.raises(ValueError, match="same data, --batch-size"):
        _fit(showers, resume=part.train_state, model=part.model, flow_epochs=3)
    with pytest.raises(ValueError, match="needs the checkpoint's model"):
        _fit(showers, resume=part.train_state)


def test_cli_resume_needs_a_training_state(tmp_path):
    out = tmp_path / "model.pt"
    _fit(_showers(120), until=1).model.save(out)  # a checkpoint as hepgen wrote them before: no train_state
    args = ["train", "calo", "--data", _data(tmp_path), "-o", out, "--epochs", "2", *TINY, "--resume"]
    result = hepgen(args, tmp_path)
    assert result.returncode != 0 and "holds no training state" in result.stderr
