"""Launching `hepgen train` under torchrun from the tests, and tiny data files."""

import os
import subprocess
import sys

import numpy as np

from hepgen.data import JetSample, write_jets


def environment(**extra) -> dict:
    env = dict(os.environ)
    # The package as this test session imports it (a checkout or an installed copy).
    import hepgen

    root = os.path.dirname(os.path.dirname(hepgen.__file__))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    env.update(OMP_NUM_THREADS="1", HEPGEN_DIST_TIMEOUT="60", HEPGEN_PROGRESS="0")
    env.update({k: str(v) for k, v in extra.items()})
    return env


def failure(result: subprocess.CompletedProcess) -> str:
    """The start and the end of a failed run's stderr (the cause, torchrun's summary)."""
    err = result.stderr
    return err if len(err) < 6000 else err[:3000] + "\n...\n" + err[-3000:]


def hepgen(args, cwd, nproc=None, timeout=240, **env) -> subprocess.CompletedProcess:
    """`hepgen ARGS` as one process (nproc None) or under torchrun with ``nproc`` ranks."""
    if nproc is None:
        cmd = [sys.executable, "-m", "hepgen", *map(str, args)]
    else:
        # --standalone: torchrun's own rendezvous on a port it picks (no race for a port
        # with other jobs on the machine).
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", str(nproc)]
        cmd += ["-m", "hepgen", *map(str, args)]
    return subprocess.run(cmd, cwd=cwd, env=environment(**env), capture_output=True, text=True, timeout=timeout)


def toy_jets(n, seed=0, P=6):
    """JetNet-layout toy jets with 2..P particles."""
    rng = np.random.default_rng(seed)
    mult = rng.integers(2, P + 1, n)
    mask = np.arange(P)[None] < mult[:, None]
    particles = np.zeros((n, P, 4), np.float32)
    particles[..., 0] = rng.choice([-0.2, 0.2], (n, P)) + rng.normal(0, 0.03, (n, P))
    particles[..., 1] = rng.normal(0, 0.05, (n, P))
    pt = rng.exponential(1.0, (n, P)) * mask
    particles[..., 2] = -np.sort(-pt / pt.sum(1, keepdims=True), axis=1)
    particles[..., 3] = 1
    particles *= mask[..., None]
    jets = np.stack([rng.uniform(500, 700, n), rng.normal(0, 1, n), rng.uniform(120, 200, n), mult], 1)
    return JetSample(particles, jets.astype(np.float32))


def jets_file(path, n=100, seed=0):
    write_jets(path, toy_jets(n, seed))
    return path


def _events_toys():
    """tests/models/events_toys.py (a Z(->mu mu)+1-3 jets toy)."""
    import importlib.util
    from pathlib import Path

    where = Path(__file__).parents[1] / "models" / "events_toys.py"
    spec = importlib.util.spec_from_file_location("events_toys", where)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def events_sample(n=300, seed=0):
    return _events_toys().z_sample(n, seed)


def events_file(path, n=300, seed=0):
    return _events_toys().z_file(path, n, seed)
