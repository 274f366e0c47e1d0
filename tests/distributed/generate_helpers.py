"""Shared by the distributed generation tests: launching hepgen under torchrun, comparing files."""

from __future__ import annotations

import os
import subprocess
import sys

import h5py
import numpy as np

import hepgen

# Generous: on 2 shared cores under load, two ranks importing torch take tens of seconds.
LAUNCH_TIMEOUT_S = 300


def child_env() -> dict[str, str]:
    """The environment of a child hepgen: this test's hepgen first on the path (an installed
    package or a source tree), no progress bars, one thread per rank."""
    package_root = os.path.dirname(os.path.dirname(hepgen.__file__))
    return {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([package_root, *sys.path]),
        "HEPGEN_PROGRESS": "0",
        "OMP_NUM_THREADS": "1",
    }


def torchrun_command(*argv: str, nproc: int = 2) -> list[str]:
    return [
        sys.executable,
        "-m",
        "torch.distributed.run",
        # --standalone: the launcher finds its own free port (a port picked here could be taken
        # by another job before the ranks bind it).
        "--standalone",
        "--nproc-per-node",
        str(nproc),
        "-m",
        "hepgen",
        *argv,
    ]


def torchrun(*argv: str, cwd, nproc: int = 2) -> subprocess.CompletedProcess:
    """``torchrun --nproc-per-node NPROC -m hepgen ARGV`` in ``cwd`` (never the checkout:
    ``-m`` puts the working directory first on sys.path)."""
    return subprocess.run(
        torchrun_command(*argv, nproc=nproc),
        cwd=cwd,
        env=child_env(),
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
    )


def attrs_of(path) -> dict:
    from hepgen.data._h5 import read_attrs

    with h5py.File(path, "r") as file:
        return read_attrs(file)


def assert_same_file(a, b, ignore_attrs=()) -> None:
    """The same datasets (names, shapes, dtypes, HDF5 chunking, every value) and attributes."""
    with h5py.File(a, "r") as fa, h5py.File(b, "r") as fb:
        assert sorted(fa) == sorted(fb)
        for name in fa:
            da, db = fa[name], fb[name]
            assert da.shape == db.shape and da.dtype == db.dtype and da.chunks == db.chunks, name
            assert np.array_equal(da[()], db[()], equal_nan=True), name
            assert dict(da.attrs) == dict(db.attrs), name
    left = {k: v for k, v in attrs_of(a).items() if k not in ignore_attrs}
    right = {k: v for k, v in attrs_of(b).items() if k not in ignore_attrs}
    assert left == right
