"""Faults in a distributed training: a rank that fails names itself and the cause and the
job ends (no hang); a rank killed mid-run ends the job and leaves the last complete
checkpoint, which resumes."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
from train_helpers import environment, failure, hepgen, toy_jets

from hepgen.data import write_jets
from hepgen.models.checkpoint import Checkpoint

TINY = ["--hidden", "8", "--latent", "4", "--layers", "1", "--batch-size", "16", "--quiet"]


def test_a_corrupt_shard_stops_the_job_naming_the_rank(tmp_path):
    sample = toy_jets(100)
    sample.particles[80:, 0, 0] = np.nan  # rows only rank 1 reads (its shard is rows 50..99)
    write_jets(tmp_path / "bad.h5", sample)
    args = ["train", "jets", "--data", "bad.h5", "-o", "out.pt", "--epochs", "1", "--fit-rows", "50", *TINY]
    result = hepgen(args, tmp_path, nproc=2, timeout=120)
    assert result.returncode != 0
    assert "rank 1 of 2: ValueError: bad.h5: 'particle_features' holds 20 NaN or infinite values" in result.stderr
    assert "rank 0 of 2" not in result.stderr  # rank 0 did nothing wrong: torchrun stopped it
    assert not (tmp_path / "out.pt").exists()


def _children(pid: int) -> list[int]:
    out = []
    for task in os.listdir(f"/proc/{pid}/task"):
        with open(f"/proc/{pid}/task/{task}/children") as f:
            out += [int(c) for c in f.read().split()]
    return out


def _hepgen_ranks(agent: int) -> list[int]:
    ranks = []
    for child in _children(agent):
        with open(f"/proc/{child}/environ", "rb") as f:
            env = dict(item.split(b"=", 1) for item in f.read().split(b"\0") if b"=" in item)
        if b"RANK" in env:
            ranks.append((int(env[b"RANK"]), child))
    return [pid for _, pid in sorted(ranks)]


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="needs Linux /proc to find the ranks")
def test_a_killed_rank_ends_the_job_and_the_checkpoint_resumes(tmp_path):
    write_jets(tmp_path / "jets.h5", toy_jets(100))
    out = tmp_path / "out.pt"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2", "-m", "hepgen"]
    cmd += ["train", "jets", "--data", "jets.h5", "-o", "out.pt"]
    cmd += ["--epochs", "100000", *TINY]
    agent = subprocess.Popen(cmd, cwd=tmp_path, env=environment(), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not out.exists() and agent.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # until rank 0 has written the checkpoint of epoch 1
        assert out.exists(), "no checkpoint appeared"
        ranks = _hepgen_ranks(agent.pid)
        assert len(ranks) == 2
        os.kill(ranks[1], signal.SIGKILL)
        _, stderr = agent.communicate(timeout=120)
    finally:
        if agent.poll() is None:
            agent.kill()
    assert agent.returncode != 0
    stderr = stderr.decode()
    assert "rank      : 1" in stderr or "rank: 1" in stderr, stderr[-2000:]  # torchrun's failure summary
    assert "SIGKILL" in stderr
    epoch = Checkpoint.read(out).entries["train_state"]["epoch"]  # the last complete one, intact
    assert epoch >= 1
    result = hepgen(
        ["train", "jets", "--data", "jets.h5", "-o", "out.pt", "--epochs", epoch + 1, "--resume", *TINY], tmp_path
    )
    assert result.returncode == 0, failure(result)
    assert Checkpoint.read(out).entries["train_state"]["epoch"] == epoch + 1
