"""Chunked, parallel, reproducible, interrupt-safe generation (with cheap stand-in tasks)."""

from typing import ClassVar

import h5py
import numpy as np
import pytest

from hepgen.data._h5 import partial_path
from hepgen.data.streaming import (
    MAX_SEED,
    GenerationInterrupted,
    chunk_seed,
    chunk_sizes,
    generate_to_file,
)


class NoiseTask:
    """Rows of uniform noise from the chunk seed, and the seed itself."""

    layout: ClassVar = {"x": ((2,), np.float64, None), "seed": ((), np.int64, None)}

    def __call__(self, seed, n):
        return {"x": np.random.default_rng(seed).random((n, 2)), "seed": np.full(n, seed)}


class BreaksAfter(NoiseTask):
    """Raises ``error`` on call number ``calls`` (in-process runs only)."""

    def __init__(self, calls, error):
        self.calls, self.error, self.seen = calls, error, 0

    def __call__(self, seed, n):
        self.seen += 1
        if self.seen > self.calls:
            raise self.error
        return super().__call__(seed, n)


def read(path):
    with h5py.File(path) as f:
        return f["x"][()], f["seed"][()], dict(f.attrs)


def test_chunk_seeds_are_distinct_and_in_pythia_range():
    seeds = [chunk_seed(s, k) for s in range(3) for k in range(200)]
    assert len(set(seeds)) == len(seeds)
    assert all(1 <= s <= MAX_SEED for s in seeds)
    assert chunk_seed(5, 7) == chunk_seed(5, 7)
    assert chunk_sizes(10, 4) == [4, 4, 2]


def test_same_seed_same_file_for_any_worker_count(tmp_path):
    one = generate_to_file(tmp_path / "a.h5", NoiseTask(), 25, seed=9, workers=1, chunk_size=4)
    two = generate_to_file(tmp_path / "b.h5", NoiseTask(), 25, seed=9, workers=2, chunk_size=4)
    other = generate_to_file(tmp_path / "c.h5", NoiseTask(), 25, seed=10, workers=1, chunk_size=4)
    x1, s1, attrs = read(one)
    x2, s2, _ = read(two)
    x3, _, _ = read(other)
    np.testing.assert_array_equal(x1, x2)
    np.testing.assert_array_equal(s1, s2)
    assert x1.shape == (25, 2) and not np.array_equal(x1, x3)
    # Each chunk has its own seed.
    assert len(np.unique(s1)) == 7
    assert attrs["complete"] and attrs["seed"] == 9 and attrs["n"] == 25


def test_interrupt_keeps_the_finished_chunks(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(GenerationInterrupted) as stop:
        generate_to_file(path, BreaksAfter(3, KeyboardInterrupt()), 100, seed=1, chunk_size=10)
    # The finished chunks are kept beside the target, which is not written.
    assert stop.value.path == partial_path(path) and stop.value.n_written == 30
    assert not path.exists()
    x, _, attrs = read(partial_path(path))
    expected, _, _ = read(generate_to_file(tmp_path / "full.h5", NoiseTask(), 100, seed=1, chunk_size=10))
    np.testing.assert_array_equal(x, expected[:30])
    assert not attrs["complete"] and attrs["n"] == 30 and attrs["n_requested"] == 100
    assert sorted(p.name for p in tmp_path.iterdir()) == ["full.h5", "run.h5.partial"]


def test_interrupt_while_writing_truncates_to_finished_chunks(tmp_path):
    path = tmp_path / "run.h5"

    def stop_after_second(k):
        if k == 1:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        generate_to_file(path, NoiseTask(), 50, chunk_size=10, on_chunk=stop_after_second)
    assert read(partial_path(path))[0].shape == (20, 2) and not path.exists()


def test_interrupt_before_first_chunk_leaves_no_file(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(GenerationInterrupted) as stop:
        generate_to_file(path, BreaksAfter(0, KeyboardInterrupt()), 10, chunk_size=5)
    assert stop.value.path is None
    assert not list(tmp_path.iterdir())


def test_failure_leaves_no_file(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(RuntimeError, match="broke"):
        generate_to_file(path, BreaksAfter(2, RuntimeError("broke")), 100, chunk_size=10)
    assert not list(tmp_path.iterdir())


def test_worker_failure_leaves_no_file(tmp_path):
    path = tmp_path / "run.h5"
    with pytest.raises(ValueError):
        # A negative size fails inside the worker process.
        generate_to_file(path, NegativeTask(), 20, workers=2, chunk_size=5)
    assert not list(tmp_path.iterdir())


class NegativeTask(NoiseTask):
    def __call__(self, seed, n):
        return super().__call__(seed, -n)


def test_existing_file_is_kept_without_force(tmp_path):
    path = tmp_path / "run.h5"
    path.write_text("keep me")
    with pytest.raises(FileExistsError):
        generate_to_file(path, NoiseTask(), 5)
    assert path.read_text() == "keep me"
    generate_to_file(path, NoiseTask(), 5, force=True)
    assert read(path)[0].shape == (5, 2)


@pytest.mark.parametrize(
    "kwargs, name",
    [({"n": 0}, "n"), ({"seed": -1}, "seed"), ({"workers": 0}, "workers"), ({"chunk_size": 0}, "chunk_size")],
)
def test_bad_arguments_are_named(tmp_path, kwargs, name):
    options = {"n": 5, **kwargs}
    with pytest.raises(ValueError, match=name):
        generate_to_file(tmp_path / "x.h5", NoiseTask(), **options)
