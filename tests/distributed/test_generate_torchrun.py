"""`torchrun -m hepgen generate calo|jets|events`: two gloo ranks write the single-process file.

Small runs of the shipped models (5 chunks: the ranks get 2 and 3, the last chunk is
short), each compared sample for sample with one process and the same seed."""

import signal
import subprocess
import time

import numpy as np
import pytest
from generate_helpers import LAUNCH_TIMEOUT_S, assert_same_file, child_env, torchrun, torchrun_command

from hepgen.cli import main
from hepgen.distributed.generate import parts_dir, read_part

ARGS = {
    "jets": ["-n", "23", "--batch-size", "5", "--steps", "2"],
    "calo": ["-n", "23", "--batch-size", "5"],
    "events": ["-n", "23", "--batch-size", "5"],
}
# Time measurements differ between any two runs.
TIMING = ("sampling_seconds", "sampling_cpu_seconds")


@pytest.fixture
def one_thread():
    """The single-process run with the ranks' thread count (torchrun gives each rank 1):
    matrix products round differently with another count (~1e-7), and the guarantee is
    sample-for-sample identity for the same threads per process (docs/distributed.md)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("kind", ["jets", "calo", "events"])
def test_two_ranks_write_the_single_process_file(kind, tmp_path, one_thread):
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    assert main(["generate", kind, *ARGS[kind], "--seed", "7", "-o", str(one), "--quiet"]) == 0
    done = torchrun("generate", kind, *ARGS[kind], "--seed", "7", "-o", str(two), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "2 ranks" in done.stdout and done.stdout.count("wrote") == 1  # rank 0 alone reports
    assert_same_file(one, two, ignore_attrs=TIMING)
    assert not parts_dir(two).exists()


def _start_and_wait_for_parts(tmp_path, target, argv):
    process = subprocess.Popen(
        torchrun_command(*argv),
        cwd=tmp_path,
        env=child_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + LAUNCH_TIMEOUT_S
    while not list(parts_dir(target).glob("part-*")) and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.5)  # let the ranks finish a few chunks
    return process


@pytest.mark.slow
@pytest.mark.parametrize("stop", ["sigterm-launcher", "sigkill-rank"])
def test_an_interrupted_run_leaves_valid_parts_and_a_rerun_finishes_it(stop, tmp_path, one_thread):
    # 400 chunks: about 5 s of sampling on two idle cores, so the signal comes mid-run.
    argv = ["generate", "jets", "-n", "4000", "--batch-size", "10", "--steps", "2", "--seed", "3", "--quiet"]
    target = tmp_path / "jets.h5"
    process = _start_and_wait_for_parts(tmp_path, target, [*argv, "-o", str(target)])
    if stop == "sigterm-launcher":
        process.send_signal(signal.SIGTERM)
    else:  # a rank dies without a word: the launcher stops the other one
        ranks = subprocess.run(["pgrep", "-P", str(process.pid)], capture_output=True, text=True).stdout.split()
        assert ranks, "no rank process found"
        subprocess.run(["kill", "-KILL", ranks[-1]], check=False)
    _, err = process.communicate(timeout=LAUNCH_TIMEOUT_S)
    if process.returncode == 0:
        pytest.skip("the run finished before the signal came (a fast machine)")
    assert not target.exists()
    parts = [read_part(p) for p in parts_dir(target).glob("part-*.h5")]  # every finished part reads
    # Every finished part reads back; the ranks still at work when stopped kept theirs, marked
    # incomplete, and said what is missing (a rank killed outright leaves only its partial file).
    assert parts and not all(p.complete for p in parts)
    assert "interrupted: " in err and "missing" in err and "rerun the same command" in err
    # The rerun, here on one process, makes only the missing chunks and joins everything.
    assert main([*argv, "-o", str(target)]) == 0
    reference = tmp_path / "reference.h5"
    assert main([*argv, "-o", str(reference)]) == 0
    assert_same_file(target, reference)


@pytest.mark.slow
def test_a_bayesian_ensemble_split_over_ranks_is_the_single_process_file(tmp_path, one_thread):
    # The run's chunks are member 0's, then member 1's, ...: a rank's block may span members.
    from hepgen.data.events import EventSample
    from hepgen.models.events import EventModelConfig
    from hepgen.models.events.train import train_events

    rng = np.random.default_rng(0)
    n = 400
    muons = np.stack([rng.uniform(20, 60, (n, 2)), rng.normal(0, 1, (n, 2)), rng.uniform(-3, 3, (n, 2))], -1)
    muons = np.concatenate([muons, np.full((n, 2, 1), 0.105)], -1)
    jets = np.zeros((n, 3, 4))
    jets[:, 0] = np.stack(
        [rng.uniform(20, 80, n), rng.normal(0, 2, n), rng.uniform(-3, 3, n), rng.uniform(2, 10, n)], -1
    )
    sample = EventSample(muons, jets, np.ones(n, dtype=np.int64))
    config = EventModelConfig(model="cfm", bayesian=True, hidden=16, layers=2, timesteps=20, ode_steps=2)
    model = train_events(sample, config, epochs=1, batch_size=200, seed=0).model
    checkpoint = model.save(tmp_path / "bayes.pt")
    argv = ["generate", "events", "--model", str(checkpoint), "-n", "30", "--batch-size", "8", "--ensemble", "3"]
    one, two = tmp_path / "one.h5", tmp_path / "two.h5"
    assert main([*argv, "--seed", "2", "-o", str(one), "--quiet"]) == 0
    done = torchrun(*argv, "--seed", "2", "-o", str(two), "--quiet", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert_same_file(one, two, ignore_attrs=TIMING)
