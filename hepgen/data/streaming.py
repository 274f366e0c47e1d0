"""Generate a dataset chunk by chunk, across worker processes, straight into an HDF5 file.

Chunk k of a run with seed S is made by ``task(chunk_seed(S, k), n_k)`` from nothing but
its own seed, so the file depends on (S, n, chunk size) and not on the number of workers
or their timing. Results are written in chunk order as they arrive, with at most two
chunks per worker in flight, so memory stays bounded however large the run.

Interrupted (Ctrl-C, SIGTERM): the finished chunks are kept as ``FILE.partial`` (a valid
file, ``complete=False``) and FILE is left as it was (see :mod:`hepgen.data._h5`).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from hepgen.data._h5 import ChunkedWriter, WriteInterrupted

# Pythia's Random:seed must lie in 1..900000000; numpy takes any of these too.
MAX_SEED = 900_000_000


class ChunkTask(Protocol):
    """Makes ``n`` samples from ``seed``: a dict of arrays matching ``layout``."""

    layout: Mapping[str, tuple[tuple[int, ...], Any, str | None]]

    def __call__(self, seed: int, n: int) -> dict[str, np.ndarray]: ...


def chunk_seed(seed: int, index: int) -> int:
    """The seed of chunk ``index`` of a run with ``seed``, in 1..900000000."""
    state = np.random.SeedSequence([int(seed), int(index)]).generate_state(1, dtype=np.uint64)[0]
    return int(state % MAX_SEED) + 1


def chunk_sizes(n: int, chunk_size: int) -> list[int]:
    """Sizes of the chunks of a run of ``n`` samples."""
    return [min(chunk_size, n - start) for start in range(0, n, chunk_size)]


def _ignore_sigint() -> None:
    # Ctrl-C reaches the whole process group; only the parent handles it, by stopping
    # the workers and keeping the finished chunks.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _run(task: ChunkTask, seed: int, n: int) -> dict[str, np.ndarray]:
    return task(seed, n)


def _results_in_process(task: ChunkTask, jobs: list[tuple[int, int]]) -> Iterator[dict[str, np.ndarray]]:
    for seed, n in jobs:
        yield task(seed, n)


def _results_from_pool(pool, task: ChunkTask, jobs: list[tuple[int, int]], window: int) -> Iterator[dict]:
    queue = iter(jobs)
    pending: deque = deque()

    def submit_next() -> None:
        job = next(queue, None)
        if job is not None:
            pending.append(pool.apply_async(_run, (task, *job)))

    for _ in range(window):
        submit_next()
    while pending:
        result = pending.popleft().get()
        submit_next()
        yield result


class GenerationInterrupted(KeyboardInterrupt):
    """A run stopped by Ctrl-C or SIGTERM: ``path`` (``FILE.partial``; FILE itself is left
    as it was) holds ``n_written`` of ``n_requested`` samples, or is None when no chunk had
    finished (and nothing was kept)."""

    def __init__(self, path: Path | None, n_written: int, n_requested: int):
        super().__init__(path, n_written, n_requested)
        self.path, self.n_written, self.n_requested = path, n_written, n_requested


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


def generate_to_file(
    path: str | os.PathLike,
    task: ChunkTask,
    n: int,
    seed: int = 0,
    workers: int = 1,
    chunk_size: int = 1000,
    attrs: Mapping[str, Any] | None = None,
    force: bool = False,
    progress: bool = False,
    unit: str = "sample",
    on_chunk: Callable[[int], None] | None = None,
    chunks: Sequence[int] | None = None,
) -> Path:
    """Write ``n`` samples from ``task`` to ``path`` and return it.

    On KeyboardInterrupt (or SIGTERM) the finished chunks are kept as ``FILE.partial``
    (attribute ``complete`` false), ``path`` is left as it was and
    :class:`GenerationInterrupted` (a KeyboardInterrupt) is raised; with no finished chunk
    nothing is kept. Any other error leaves no file.
    ``on_chunk(k)`` is called after chunk k is written (for tests and progress hooks).
    ``chunks``: make only these chunks of the run, in this order (a shard of a run split
    over machines, :mod:`hepgen.distributed.generate`); default: all of them.
    """
    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n: expected a positive integer, got {n!r}")
    if not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
    if not isinstance(workers, (int, np.integer)) or workers < 1:
        raise ValueError(f"workers: expected a positive integer, got {workers!r}")
    if not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"chunk_size: expected a positive integer, got {chunk_size!r}")
    from tqdm import tqdm

    sizes = chunk_sizes(n, chunk_size)
    indices = list(range(len(sizes))) if chunks is None else [int(k) for k in chunks]
    if not indices or any(not 0 <= k < len(sizes) for k in indices):
        raise ValueError(f"chunks: expected indices in 0..{len(sizes) - 1}, got {indices[:5]}")
    jobs = [(chunk_seed(seed, k), sizes[k]) for k in indices]
    n_made = sum(size for _, size in jobs)
    workers = min(workers, len(jobs))
    run_attrs = {"seed": int(seed), "n_requested": int(n), "chunk_size": int(chunk_size), **(attrs or {})}
    previous_sigterm = None
    # SIGTERM stops the run as Ctrl-C does, unless the program handles SIGTERM itself (the
    # hepgen CLI does, the same way).
    if multiprocessing.current_process().name == "MainProcess" and signal.getsignal(signal.SIGTERM) in (
        signal.SIG_DFL,
        None,
    ):
        try:
            previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
        except ValueError:  # not in the main thread
            previous_sigterm = None
    pool = writer = None
    try:
        with (
            ChunkedWriter(path, task.layout, run_attrs, force=force) as writer,
            tqdm(total=n_made, unit=unit, disable=not progress, dynamic_ncols=True) as bar,
        ):
            if workers == 1:
                results = _results_in_process(task, jobs)
            else:
                # spawn: workers start clean (no inherited Pythia or HDF5 state).
                pool = multiprocessing.get_context("spawn").Pool(workers, initializer=_ignore_sigint)
                results = _results_from_pool(pool, task, jobs, window=2 * workers)
            for k, chunk in zip(indices, results):
                rows = {len(array) for array in chunk.values()}
                if rows != {sizes[k]}:
                    raise RuntimeError(f"chunk {k}: task returned {rows} rows, expected {sizes[k]}")
                writer.append(chunk)
                bar.update(sizes[k])
                if on_chunk is not None:
                    on_chunk(k)
        return writer.path
    except KeyboardInterrupt as stop:
        kept = stop.kept if isinstance(stop, WriteInterrupted) else None
        raise GenerationInterrupted(kept, writer.n_written if kept is not None else 0, n_made) from None
    finally:
        if pool is not None:
            pool.terminate()
            pool.join()
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
