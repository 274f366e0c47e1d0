"""torchrun -m hepgen train jets: 2 gloo ranks x half the batch == 1 process, resume on
another number of ranks, rank 0 alone writes, a failing rank ends the job with its name."""

import pytest
import torch
from train_helpers import failure, hepgen, jets_file

from hepgen.models.checkpoint import Checkpoint

# No --quiet: the bars are off (HEPGEN_PROGRESS=0, train_helpers) unless a test turns them on.
TINY = ["--hidden", "8", "--latent", "4", "--layers", "1", "--batch-size", "16", "--seed", "3"]


def _train(tmp_path, name, epochs, nproc=None, extra=(), **env):
    data = tmp_path / "jets.h5"
    if not data.exists():
        jets_file(data, n=100)
    out = tmp_path / name
    args = ["train", "jets", "--data", data, "-o", out, "--epochs", epochs, *TINY, *extra]
    result = hepgen(args, tmp_path, nproc, **env)
    assert result.returncode == 0, failure(result)
    return out, result


def _weights(path):
    ckpt = Checkpoint.read(path)
    return ckpt.weights, ckpt.entries["train_state"]


def _assert_close(a: dict, b: dict):
    assert a.keys() == b.keys()
    for key in a:
        if a[key].is_floating_point():
            torch.testing.assert_close(a[key], b[key], rtol=2e-5, atol=2e-6, msg=key)
        else:
            assert torch.equal(a[key], b[key]), key


def test_two_ranks_equal_one_process_and_only_rank0_writes(tmp_path):
    one, _ = _train(tmp_path, "one.pt", 2)
    two, result = _train(tmp_path, "two.pt", 2, nproc=2, HEPGEN_PROGRESS="1")
    ema1, state1 = _weights(one)
    ema2, state2 = _weights(two)
    _assert_close(state1["net"], state2["net"])  # online weights after 12 AdamW steps
    _assert_close(ema1, ema2)  # the EMA (what sampling uses), and the fitted preprocessing
    assert state1["step"] == state2["step"] == 2 * (100 // 16)
    assert result.stdout.count("wrote ") == 1 and "2 processes" in result.stdout
    assert result.stderr.count("0/2 [00:00<?, ?epoch/s]") == 1  # one progress bar: rank 0's
    assert sorted(p.name for p in tmp_path.iterdir()) == ["jets.h5", "one.pt", "two.pt"]


@pytest.mark.slow
def test_resume_on_another_number_of_ranks(tmp_path):
    full, _ = _train(tmp_path, "full.pt", 3)
    part, _ = _train(tmp_path, "part.pt", 3, nproc=2, extra=["--until", "1"])  # 2 ranks, stopped after epoch 1
    _train(tmp_path, "part.pt", 3, extra=["--resume"])  # ... resumed on one process
    _assert_close(_weights(full)[1]["net"], _weights(part)[1]["net"])
    _assert_close(_weights(full)[0], _weights(part)[0])
    back, _ = _train(tmp_path, "back.pt", 3, extra=["--until", "2"])  # 1 process, resumed on 2 ranks
    _train(tmp_path, "back.pt", 3, nproc=2, extra=["--resume"])
    _assert_close(_weights(full)[1]["net"], _weights(back)[1]["net"])
    assert _weights(back)[1]["history"] == pytest.approx(_weights(full)[1]["history"], rel=1e-5)
