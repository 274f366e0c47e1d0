"""Generation across ranks: each rank writes its chunks to a part file, rank 0 joins the parts.

A run of n samples in chunks of C has a fixed list of chunks; chunk k is made from its own
seed (:func:`hepgen.models.base.chunk_seed`, :func:`hepgen.data.streaming.chunk_seed`), so
what a chunk holds does not depend on which process makes it. :func:`run_in_parts` gives
each rank a contiguous block of the chunks still missing, each rank streams its block to
``FILE.parts/part-AAA-rankRRRRR-of-WWWWW.h5`` (a valid file of the run's layout; Ctrl-C or
SIGTERM keeps its finished chunks, marked ``complete=False``), and rank 0 joins the parts
in chunk order into FILE (``FILE.partial`` renamed when done), which is then the file a
single process writes with the same seed, sample for sample. A rerun of an interrupted run
reuses the chunks its parts hold, on any number of ranks, and makes only the missing ones.

Why a join and not an HDF5 virtual dataset over the part files: a joined file is one
self-contained file that can be copied, moved or archived alone, while a virtual dataset
breaks silently when its parts are moved apart or deleted; hepgen's readers also refuse
datasets whose bytes live in other files (a crafted file could make them read any file),
so a virtual file would not even read back. The join costs one sequential copy, done in
chunks (bounded memory), and a run's peak disk use is twice its output until the parts
are removed.

Every part records what it belongs to (attributes ``part_run``: the arguments that
determine the content, as JSON; ``part_n_chunks``; ``part_chunks``: its chunk indices in
file order; ``part_chunk_rows``: their sizes), so :func:`join_parts` can check that parts
belong together and name the chunks that are missing. ``hepgen data --shard i/n`` writes
the same kind of part, and ``hepgen data merge`` joins such shards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data._atomic import kept_path
from hepgen.distributed import context

PART_RUN = "part_run"
PART_N_CHUNKS = "part_n_chunks"
PART_CHUNKS = "part_chunks"
PART_CHUNK_ROWS = "part_chunk_rows"
PART_KEYS = (PART_RUN, PART_N_CHUNKS, PART_CHUNKS, PART_CHUNK_ROWS)
# Attributes the writer sets on every file it finishes: never copied from a part.
WRITER_KEYS = ("n", "complete")

_PART_NAME = re.compile(r"part-(\d+)-rank(\d+)-of-(\d+)\.h5")


def parts_dir(output: str | os.PathLike) -> Path:
    """Where the ranks' part files of ``output`` go: ``FILE.parts`` beside it."""
    output = Path(output)
    return output.with_name(output.name + ".parts")


def run_key(run: Mapping[str, Any]) -> str:
    """The JSON text that identifies a run (``part_run``): keys sorted, so equal runs give equal text."""
    return json.dumps(dict(run), sort_keys=True, default=str)


def part_attrs(run: Mapping[str, Any], chunks: Sequence[int], sizes: Sequence[int]) -> dict[str, Any]:
    """The attributes that make a file a part holding ``chunks`` (in this order) of ``run``."""
    return {
        PART_RUN: run_key(run),
        PART_N_CHUNKS: len(sizes),
        PART_CHUNKS: np.asarray(list(chunks), dtype=np.int64),
        PART_CHUNK_ROWS: np.asarray([sizes[k] for k in chunks], dtype=np.int64),
    }


def split_chunks(chunks: Sequence[int], world_size: int) -> list[list[int]]:
    """``chunks`` in ``world_size`` contiguous blocks of (almost) equal length, rank order.

    Contiguous rather than round-robin: a part then holds consecutive chunks, the join
    copies long runs of rows, and an interrupted part leaves one gap per rank."""
    chunks = list(chunks)
    n = len(chunks)
    return [chunks[r * n // world_size : (r + 1) * n // world_size] for r in range(world_size)]


def describe_chunks(indices: Iterable[int]) -> str:
    """``0-3, 7, 9-12``: chunk indices as ranges."""
    indices = sorted(set(int(k) for k in indices))
    if not indices:
        return "none"
    runs, start, prev = [], indices[0], indices[0]
    for k in indices[1:] + [None]:
        if k is not None and k == prev + 1:
            prev = k
            continue
        runs.append(str(start) if start == prev else f"{start}-{prev}")
        if k is not None:
            start = prev = k
    return ", ".join(runs)


@dataclass(frozen=True)
class Part:
    """A part file as read back: its attributes, its chunks and how many of them it holds."""

    path: Path
    attrs: dict[str, Any]
    layout: dict[str, tuple[tuple[int, ...], Any, str | None]]
    chunks: tuple[int, ...]  # the chunks it was given, in file order
    rows: tuple[int, ...]  # their sizes
    n_rows: int  # rows in the file

    @property
    def run(self) -> str:
        return self.attrs[PART_RUN]

    @property
    def n_chunks(self) -> int:
        return int(self.attrs[PART_N_CHUNKS])

    def finished(self) -> list[tuple[int, int, int]]:
        """(chunk, first row, rows) of every chunk whose rows are all in the file, in file order."""
        out, start = [], 0
        for k, rows in zip(self.chunks, self.rows):
            if start + rows > self.n_rows:
                break
            out.append((k, start, rows))
            start += rows
        return out

    @property
    def complete(self) -> bool:
        return len(self.finished()) == len(self.chunks)


def read_part(path: str | os.PathLike) -> Part:
    """A part file's attributes, layout and chunks; ValueError naming the file if it is not one."""
    import h5py

    from hepgen.data._h5 import open_for_reading, read_attrs

    path = Path(path)
    with open_for_reading(path) as file:
        attrs = read_attrs(file)
        missing = [key for key in PART_KEYS if key not in attrs]
        if missing:
            raise ValueError(f"{path}: not a part of a hepgen run (no attribute {missing[0]!r})")
        layout, lengths = {}, []
        for name, dset in file.items():
            if not isinstance(dset, h5py.Dataset) or dset.ndim < 1:
                raise ValueError(f"{path}: '{name}' is not a dataset of samples")
            unit = dset.attrs.get("unit")
            layout[name] = (tuple(dset.shape[1:]), dset.dtype, unit.decode() if isinstance(unit, bytes) else unit)
            lengths.append(dset.shape[0])
    chunks = tuple(int(k) for k in np.atleast_1d(attrs[PART_CHUNKS]))
    rows = tuple(int(r) for r in np.atleast_1d(attrs[PART_CHUNK_ROWS]))
    n_chunks = attrs[PART_N_CHUNKS]
    if (
        len(chunks) != len(rows)
        or not isinstance(n_chunks, int)
        or any(not 0 <= k < n_chunks for k in chunks)
        or any(r < 1 for r in rows)
        or not layout
    ):
        raise ValueError(f"{path}: inconsistent part attributes (chunks {chunks[:5]}, rows {rows[:5]} of {n_chunks})")
    return Part(path, attrs, layout, chunks, rows, min(lengths))


def _same_run(parts: Sequence[Part], drop: Sequence[str]) -> None:
    """ValueError unless every part is of the first part's run, layout and attributes."""
    first = parts[0]
    ignored = set(PART_KEYS) | set(WRITER_KEYS) | set(drop)
    base = {k: v for k, v in first.attrs.items() if k not in ignored}
    for part in parts[1:]:
        if part.run != first.run:
            raise ValueError(f"{part.path} and {first.path} are parts of different runs: {part.run} vs {first.run}")
        if part.layout.keys() != first.layout.keys() or any(
            part.layout[k][0] != first.layout[k][0] or part.layout[k][1] != first.layout[k][1] for k in first.layout
        ):
            raise ValueError(f"{part.path} and {first.path} have different datasets")
        other = {k: v for k, v in part.attrs.items() if k not in ignored}
        if other != base:
            differ = sorted(k for k in base.keys() | other.keys() if base.get(k) != other.get(k))
            raise ValueError(f"{part.path} and {first.path} differ in the attributes {', '.join(differ)}")


def locate_chunks(parts: Sequence[Part]) -> tuple[dict[int, tuple[Part, int, int]], list[int]]:
    """Where each finished chunk lies ({chunk: (part, first row, rows)}) and the missing chunks."""
    where: dict[int, tuple[Part, int, int]] = {}
    for part in parts:
        for k, start, rows in part.finished():
            if k in where:
                raise ValueError(f"chunk {k} is in both {where[k][0].path} and {part.path}")
            where[k] = (part, start, rows)
    n_chunks = parts[0].n_chunks if parts else 0
    return where, [k for k in range(n_chunks) if k not in where]


def missing_message(parts: Sequence[Part], missing: Sequence[int]) -> str:
    lines = [f"{len(missing)} of {parts[0].n_chunks} chunks are missing ({describe_chunks(missing)})"]
    for part in parts:
        if not part.complete:
            lines.append(f"{part.path} holds {len(part.finished())} of its {len(part.chunks)} chunks")
    return "; ".join(lines)


def join_parts(
    output: str | os.PathLike,
    parts: Iterable[str | os.PathLike | Part],
    force: bool = False,
    merge_totals: Callable[[list[dict]], dict] | None = None,
    totals_keys: Sequence[str] = (),
) -> Path:
    """Join ``parts`` of one run into ``output``, chunk 0 first: the file one process writes.

    The attributes are the parts' own (which must agree, except the part keys and
    ``totals_keys``), plus ``merge_totals([part attrs, ...])`` for the totals. Refuses
    (ValueError) parts of different runs, a chunk held twice, and missing chunks, naming
    them. Written through ``FILE.partial``: an interrupted or failed join leaves no file."""
    from hepgen.data._h5 import ChunkedWriter, open_for_reading

    parts = [p if isinstance(p, Part) else read_part(p) for p in parts]
    if not parts:
        raise ValueError("parts: no part files to join")
    _same_run(parts, totals_keys)
    where, missing = locate_chunks(parts)
    if missing:
        raise ValueError(missing_message(parts, missing))
    first = where[0][0]
    ignored = set(PART_KEYS) | set(WRITER_KEYS) | set(totals_keys)
    attrs = {k: v for k, v in first.attrs.items() if k not in ignored}
    if merge_totals is not None:
        attrs.update(merge_totals([p.attrs for p in parts]))
    with contextlib.ExitStack() as files:
        opened = {p.path: files.enter_context(open_for_reading(p.path)) for p in parts}
        writer = ChunkedWriter(output, first.layout, attrs, force=force)
        try:
            for k in range(first.n_chunks):
                part, start, rows = where[k]
                source = opened[part.path]
                writer.append({name: source[name][start : start + rows] for name in first.layout})
        except BaseException:
            writer.discard()
            raise
        return writer.finish({"complete": True})


@contextlib.contextmanager
def _stop_on_signals():
    """SIGTERM (what torchrun sends the other ranks when one dies) acts like Ctrl-C, and a
    second SIGINT or SIGTERM is ignored while the part file is being finished."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, frame):
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _plan(parts: Path, run: Mapping, sizes: Sequence[int], world_size: int, force: bool, log) -> dict:
    """Rank 0: the parts already there, the missing chunks and who makes which."""
    if force and parts.exists():
        shutil.rmtree(parts)
    parts.mkdir(exist_ok=True)
    found = []
    for path in sorted(parts.glob("part-*.h5")):
        try:
            part = read_part(path)
        except (ValueError, OSError) as err:
            raise ValueError(f"{err}; remove it, or pass --force to start {parts} again") from None
        if part.run != run_key(run):
            raise ValueError(
                f"{parts} holds parts of another run ({path.name}: {part.run}); "
                "rerun with the same arguments, or pass --force to discard them"
            )
        found.append(part)
    where, _ = locate_chunks(found) if found else ({}, None)
    missing = [k for k in range(len(sizes)) if k not in where]
    attempts = [int(m.group(1)) for p in parts.iterdir() if (m := _PART_NAME.fullmatch(p.name))]
    attempt = max(attempts, default=0) + 1
    if where:
        log(
            f"resuming: {len(where)} of {len(sizes)} chunks are in {parts}; "
            f"generating the missing {len(missing)} ({describe_chunks(missing)})"
        )
    token = f".attempt-{attempt:03d}-{uuid.uuid4().hex}"
    (parts / token).touch()
    return {"attempt": attempt, "assign": split_chunks(missing, world_size), "token": token}


def _part_name(attempt: int, rank: int, world_size: int) -> str:
    return f"part-{attempt:03d}-rank{rank:05d}-of-{world_size:05d}.h5"


def _error_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if isinstance(err, (ValueError, OSError, RuntimeError)) else f"{type(err).__name__}: {text}"


def _interrupted(path: Path, mine: Sequence[int], rank: int) -> str:
    held = [k for k, _, _ in read_part(path).finished()] if path.is_file() else []
    rest = [k for k in mine if k not in set(held)]
    where = f"{path} holds chunks {describe_chunks(held)}" if held else f"no chunk of its share finished ({path.name})"
    return (
        f"rank {rank} interrupted: {where}; missing {describe_chunks(rest)}: rerun the same command "
        "(any number of ranks) to make only the missing chunks"
    )


@dataclass(frozen=True)
class Outcome:
    """What :func:`run_in_parts` did: the joined file, and how many chunks earlier parts gave."""

    path: Path
    n_chunks_reused: int


def run_in_parts(
    output: str | os.PathLike,
    *,
    run: Mapping[str, Any],
    sizes: Sequence[int],
    write_part: Callable[[Path, list[int], dict[str, Any]], Any],
    force: bool = False,
    merge_totals: Callable[[list[dict]], dict] | None = None,
    totals_keys: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
) -> Outcome:
    """Make the chunks of one run on every rank of :func:`context.current` and join them.

    Call on every rank. ``run``: what determines the content (JSON-able; parts of another
    run are refused); ``sizes``: every chunk's rows; ``write_part(path, chunks, attrs)``
    writes ``chunks`` in that order to ``path`` with the extra ``attrs``, keeping the
    finished chunks on KeyboardInterrupt. Ctrl-C and SIGTERM interrupt a rank: it says
    which chunks its part holds and which are missing, and re-raises KeyboardInterrupt.
    An error on one rank raises RuntimeError on every rank, naming it, with the other
    ranks' parts kept for a rerun. ``force``: discard parts of an earlier run."""
    ctx = context.current()
    say = log or (lambda text: print(text, file=sys.stderr))
    parts = parts_dir(output)
    plan: dict[str, Any] | None = None
    if ctx.is_main:
        try:
            plan = _plan(parts, run, sizes, ctx.world_size, force, say)
        except (ValueError, OSError) as err:
            plan = {"error": _error_line(err)}
    plan = context.broadcast_object(plan)
    if "error" in plan:
        raise ValueError(plan["error"])
    sees = context.gather_objects((parts / plan["token"]).exists())
    if not all(sees):
        blind = [r for r, ok in enumerate(sees) if not ok]
        raise RuntimeError(
            f"rank(s) {describe_chunks(blind)} cannot see {parts}: under several machines the output "
            "must be on a filesystem every rank shares"
        )
    mine = plan["assign"][ctx.rank]
    path = parts / _part_name(plan["attempt"], ctx.rank, ctx.world_size)
    status = None
    if mine:
        try:
            with _stop_on_signals():
                write_part(path, mine, part_attrs(run, mine, sizes))
        except KeyboardInterrupt:
            kept = kept_path(path)
            if kept.is_file():
                # The writers keep an interrupted file's finished chunks as FILE.partial so
                # that a user's target is never a partial file; a part in FILE.parts is no
                # one's target, and under its own name a rerun finds and reuses it.
                os.replace(kept, path)
            print(_interrupted(path, mine, ctx.rank), file=sys.stderr)
            raise
        except Exception as err:  # reported by every rank below, not only this one
            status = _error_line(err)
    statuses = context.gather_objects(status)
    failed = [(r, s) for r, s in enumerate(statuses) if s is not None]
    if failed:
        causes = "; ".join(f"rank {r}: {s}" for r, s in failed)
        raise RuntimeError(f"{causes} (the finished parts stay in {parts}: rerun the same command to finish)")
    result: dict[str, Any] | None = None
    if ctx.is_main:
        try:
            joined = join_parts(
                output, sorted(parts.glob("part-*.h5")), force=force, merge_totals=merge_totals, totals_keys=totals_keys
            )
            shutil.rmtree(parts)
            result = {"path": str(joined)}
        except (ValueError, OSError) as err:
            result = {"error": _error_line(err)}
    result = context.broadcast_object(result)
    if "error" in result:
        raise ValueError(result["error"])
    reused = len(sizes) - sum(len(block) for block in plan["assign"])
    return Outcome(Path(result["path"]), reused)
