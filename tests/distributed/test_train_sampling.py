"""The pieces that make K ranks equal one process, checked in one process: the stratified
batch order and its shards, the split-independent draws, the learning-rate rules."""

import pytest
import torch

from hepgen.distributed import StratifiedBatches
from hepgen.distributed.draws import SplitDraws
from hepgen.distributed.loop import block_shard
from hepgen.distributed.lr import scaled_learning_rate


@pytest.mark.parametrize("n, batch", [(100, 16), (64, 8), (37, 4)])
def test_the_global_batches_do_not_depend_on_the_number_of_ranks(n, batch):
    batches = StratifiedBatches(n, batch, seed=3)
    one = batches.epoch_order(2, 0, 1)
    assert one.shape == (n // batch, batch)
    assert len(set(one.flatten().tolist())) == one.numel()  # an example at most once per epoch
    for world in (2, 4):
        shards = [batches.shard(r, world) for r in range(world)]
        assert shards[0][0] == 0 and shards[-1][1] == n
        assert all(a[1] == b[0] for a, b in zip(shards, shards[1:]))  # contiguous, in rank order
        parts = [batches.epoch_order(2, r, world) + shards[r][0] for r in range(world)]
        assert torch.equal(torch.cat(parts, dim=1), one)  # rank r: its columns of every step
    assert not torch.equal(batches.epoch_order(3, 0, 1), one)  # a new order each epoch


def test_a_batch_the_ranks_cannot_share_evenly_is_refused():
    with pytest.raises(ValueError, match="multiple of the number of processes"):
        StratifiedBatches(100, 10, 0).shard(0, 3)
    with pytest.raises(ValueError, match="larger than"):
        StratifiedBatches(5, 10, 0)


def test_block_shards_cover_the_rows_once():
    for world in (1, 2, 3):
        parts = [block_shard(103, 10, r, world) for r in range(world)]
        assert parts[0][0] == 0 and parts[-1][1] == 103
        assert all(a[1] == b[0] and a[1] % 10 == 0 for a, b in zip(parts, parts[1:]))


def _draws(x):
    return (
        torch.rand(x.shape[0], generator=torch.Generator().manual_seed(1)),
        torch.randn_like(x),
        torch.randint(0, 50, (len(x),)),
        torch.randn(3, 5),  # not shaped like the batch: drawn whole, the same on every rank
    )


def test_draws_are_the_slice_of_the_whole_batch_draw():
    x = torch.zeros(12, 4)
    with SplitDraws(9, 12, 0, 12):
        whole = _draws(x)
    parts = []
    for offset in (0, 6):
        with SplitDraws(9, 12, offset, 6):
            parts.append(_draws(x[offset : offset + 6]))
    for k in range(3):
        assert torch.equal(torch.cat([parts[0][k], parts[1][k]]), whole[k])
    assert torch.equal(parts[0][3], whole[3]) and torch.equal(parts[1][3], whole[3])
    with SplitDraws(9, 12, 0, 6), pytest.raises(NotImplementedError, match="cannot be split"):
        torch.bernoulli(torch.full((6,), 0.5))


def test_learning_rate_rules():
    assert scaled_learning_rate(1e-3, 4096, 1024, "none") == 1e-3
    assert scaled_learning_rate(1e-3, 4096, 1024, "linear") == pytest.approx(4e-3)
    assert scaled_learning_rate(1e-3, 4096, 1024, "sqrt") == pytest.approx(2e-3)
    with pytest.raises(ValueError, match="rule"):
        scaled_learning_rate(1e-3, 4096, 1024, "cubic")


def test_scale_lr_sets_the_trainers_learning_rate(tmp_path):
    from train_helpers import jets_file

    from hepgen.cli import main
    from hepgen.models.checkpoint import Checkpoint

    data, out = jets_file(tmp_path / "jets.h5", n=64), tmp_path / "out.pt"
    args = ["train", "jets", "--data", str(data), "-o", str(out), "--epochs", "1", "--hidden", "8", "--latent", "4"]
    assert main([*args, "--layers", "1", "--batch-size", "64", "--scale-lr", "sqrt", "--quiet"]) == 0
    ckpt = Checkpoint.read(out)
    assert ckpt.entries["train_state"]["settings"]["lr"] == pytest.approx(1e-3 * (64 / 1024) ** 0.5)
    assert ckpt.provenance["settings"]["lr_scaling"] == "sqrt"
