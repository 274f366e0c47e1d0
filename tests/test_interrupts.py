"""`hepgen data`, `hepgen train` and `hepgen generate` stopped mid-run by SIGINT and SIGKILL,
and two processes writing one target: the target is the previous file byte for byte, or a
complete new one, never a partial file; what else is left is named FILE.partial (the
finished chunks of an interrupted run, a valid file marked complete=False) or, after
SIGKILL only, FILE.partial-<pid>-<random> (a dead writer's scratch file).

Each run waits for a sign of progress (the writer's scratch file, or the first checkpoint)
before the signal, never for a fixed time.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

import hepgen.models
from hepgen.data import JetSample, read_jets, read_showers
from hepgen.data.generate import generate_showers

ROOT = Path(__file__).parents[1]
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
# Generous: on 2 shared cores a process that imports torch takes seconds to start.
WAIT_S = 120


def _terminal_signals() -> None:
    # A child inherits ignored signals: in the full suite SIGINT reached the commands
    # ignored (a run then finished and replaced the target), so start them with the
    # dispositions a shell gives, as a user at a terminal has them.
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def start(args: list[str], cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "hepgen", *args],
        cwd=cwd,
        env=ENV,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_terminal_signals,
    )


def scratch_files(target: Path) -> list[Path]:
    return sorted(target.parent.glob(target.name + ".partial-*"))


def wait_for(condition, process: subprocess.Popen, what: str) -> None:
    deadline = time.monotonic() + WAIT_S
    while not condition():
        if process.poll() is not None:
            pytest.fail(f"finished before {what}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"no {what} within {WAIT_S} s")
        time.sleep(0.02)


def stop(process: subprocess.Popen, sig: int) -> tuple[int, str]:
    process.send_signal(sig)
    _, err = process.communicate(timeout=WAIT_S)
    return process.returncode, err


def check_leftovers(target: Path, sig: int, read_kept) -> None:
    """Beside the target only FILE.partial (valid, complete=False) and, after SIGKILL,
    dead writers' scratch files; after SIGINT no scratch file."""
    kept = target.with_name(target.name + ".partial")
    others = {p for p in target.parent.iterdir() if p.name.startswith(target.name + ".")}
    scratch = set(scratch_files(target))
    assert others <= scratch | {kept}, others
    assert sig == signal.SIGKILL or not scratch, scratch
    for path in scratch:
        assert re.fullmatch(re.escape(target.name) + r"\.partial-\d+-[0-9a-f]{8}", path.name)
    if kept.exists():
        assert read_kept(kept).attrs["complete"] in (False, 0)


def same_bytes(path: Path, expected: bytes) -> bool:
    """Whether ``path`` holds exactly ``expected`` (compared as a bool: pytest's diff of two
    multi-megabyte byte strings would run for many minutes)."""
    return path.is_file() and path.read_bytes() == expected


def describe(path: Path, expected: bytes) -> str:
    """What is there instead (for a failure message): sizes and the file attributes."""
    if not path.is_file():
        return f"{path} is missing"
    with h5py.File(path) as f:
        attrs = {k: f.attrs[k] for k in ("n", "complete", "seed") if k in f.attrs}
    return f"{path}: {path.stat().st_size} bytes (expected {len(expected)}), attrs {attrs}"


def showers_file(path: Path, seed: int) -> bytes:
    generate_showers(path, 50, seed=seed, chunk_size=50, force=True)
    return path.read_bytes()


SIGNALS = pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["sigint", "sigkill"])


@SIGNALS
def test_data_stopped_leaves_the_previous_file(tmp_path, sig):
    target = tmp_path / "showers.h5"
    previous = showers_file(target, seed=7)
    args = ["data", "showers", "-n", "400000", "--chunk-size", "2000", "--workers", "1", "-o", target.name]
    process = start([*args, "--force", "--quiet"], tmp_path)
    # Progress: the second chunk is being written, so the first is finished. A chunk of 2000
    # showers fills 3 HDF5 chunks of 712 rows (1 MB each); the second reaches a fifth.
    wait_for(lambda: any(p.stat().st_size > 4.5e6 for p in scratch_files(target)), process, "second chunk")
    code, err = stop(process, sig)
    assert same_bytes(target, previous), describe(target, previous)
    if sig == signal.SIGINT:
        assert code == 130 and "interrupted:" in err and "Traceback" not in err, err
        assert len(read_showers(target.with_name("showers.h5.partial"))) % 2000 == 0
    else:
        assert code == -signal.SIGKILL
    check_leftovers(target, sig, read_showers)


def toy_checkpoint(path: Path) -> Path:
    """A tiny untrained EPiC-FM with its preprocessing fitted on toy jets (samples fast)."""
    import torch

    from hepgen.models.epic import EPiCConfig, EPiCGenerator

    particles, jets = toy_jets()
    model = EPiCGenerator(EPiCConfig(particles=8, hidden=8, latent=2, layers=1, time_dim=4))
    p, j = torch.as_tensor(particles), torch.as_tensor(jets)
    model.particle_scaler.fit(p[..., :3], p[..., 3] > 0.5)
    model.cond_scaler.fit(j[:, [0, 2]])
    model.jet_density.fit(j, torch.Generator().manual_seed(0))
    return model.save(path)


def toy_jets(n: int = 96, P: int = 8):
    rng = np.random.default_rng(0)
    mult = rng.integers(2, P + 1, n)
    mask = (np.arange(P)[None] < mult[:, None]).astype(np.float32)
    pt = -np.sort(-rng.exponential(1.0, (n, P)) * mask, axis=1)
    pt /= pt.sum(1, keepdims=True)
    particles = np.stack([rng.normal(0, 0.1, (n, P)), rng.normal(0, 0.1, (n, P)), pt, mask], -1) * mask[..., None]
    jets = np.stack([rng.uniform(500, 700, n), rng.normal(0, 1, n), rng.uniform(120, 200, n), mult], 1)
    return particles.astype(np.float32), jets.astype(np.float32)


@SIGNALS
def test_generate_stopped_leaves_the_previous_file(tmp_path, sig):
    model = toy_checkpoint(tmp_path / "toy.pt")
    target = tmp_path / "jets.h5"
    JetSample(*toy_jets(10)).write(target)
    previous = target.read_bytes()
    args = ["generate", "jets", "--model", str(model), "-n", "2000000", "--batch-size", "4096", "--steps", "2"]
    process = start([*args, "-o", target.name, "--force", "--quiet"], tmp_path)
    # Progress: the second chunk is being written, so the first is finished. A chunk of 4096
    # jets fills one HDF5 chunk of 'particle_features' (512 kB) and one of 'jet_features'.
    wait_for(lambda: any(p.stat().st_size > 9e5 for p in scratch_files(target)), process, "second chunk")
    code, err = stop(process, sig)
    assert same_bytes(target, previous), describe(target, previous)
    if sig == signal.SIGINT:
        lines = err.strip().splitlines()
        assert code == 130 and len(lines) == 1 and "jets.h5.partial keeps the" in lines[0], err
        assert len(read_jets(target.with_name("jets.h5.partial"))) % 4096 == 0
    else:
        assert code == -signal.SIGKILL
    check_leftovers(target, sig, read_jets)


@SIGNALS
def test_train_stopped_leaves_a_complete_checkpoint(tmp_path, sig):
    data = tmp_path / "jets.h5"
    JetSample(*toy_jets()).write(data)
    target = tmp_path / "model.pt"
    tiny = ["--hidden", "8", "--latent", "2", "--layers", "1", "--batch-size", "32"]
    process = start(
        ["train", "jets", "--data", data.name, "-o", target.name, "--epochs", "100000", *tiny, "--quiet"], tmp_path
    )
    # Progress: the first epoch's checkpoint is in place; then stop while a later one is written.
    wait_for(target.exists, process, "first checkpoint")
    wait_for(lambda: bool(scratch_files(target)), process, "a checkpoint being rewritten")
    code, err = stop(process, sig)
    assert code == (130 if sig == signal.SIGINT else -signal.SIGKILL), err
    model = hepgen.models.load(target)  # complete: every epoch publishes a whole checkpoint
    assert model.provenance["epochs"] >= 1
    check_leftovers(target, sig, read_jets)


def test_concurrent_writers_with_force_leave_one_complete_file(tmp_path):
    target = tmp_path / "showers.h5"
    args = ["data", "showers", "-n", "6000", "--chunk-size", "500", "--workers", "1", "-o", target.name, "--force"]
    processes = [start([*args, "--seed", str(seed), "--quiet"], tmp_path) for seed in (1, 2)]
    for process in processes:
        _, err = process.communicate(timeout=WAIT_S)
        assert process.returncode == 0, err
    sample = read_showers(target)  # its checksums would refuse rows mixed from two writers
    assert sample.attrs["complete"] and sample.attrs["seed"] in (1, 2)
    reference = read_showers(generate_showers(tmp_path / "ref.h5", 6000, seed=sample.attrs["seed"], chunk_size=500))
    np.testing.assert_array_equal(sample.showers, reference.showers)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.h5", "showers.h5"]


def test_concurrent_writers_without_force_never_overwrite(tmp_path):
    target = tmp_path / "showers.h5"
    args = ["data", "showers", "-n", "6000", "--chunk-size", "500", "--workers", "1", "-o", target.name, "--quiet"]
    processes = [start([*args, "--seed", str(seed)], tmp_path) for seed in (1, 2)]
    codes = []
    for process in processes:
        _, err = process.communicate(timeout=WAIT_S)
        codes.append(process.returncode)
        assert process.returncode == 0 or "showers.h5" in err, err
    # One wins; the other is refused at the start (the file exists) or at the end (another
    # process made it meanwhile: its own file is kept as showers.h5.partial).
    assert sorted(codes) == [0, 1]
    winner = read_showers(target)
    assert winner.attrs["complete"] and winner.attrs["seed"] == 1 + codes.index(0)
    with h5py.File(target) as f:
        assert f.attrs["n"] == 6000
    assert not scratch_files(target)
