"""Generate jet, event and shower files: what ``hepgen data jets|events|showers`` runs.

Each function streams chunks from worker processes into ``path`` (see
:mod:`hepgen.data.streaming`): the same seed and chunk size give the same file for any
number of workers (the default chunk size depends on n only); an interrupted run
leaves the target as it was and keeps the finished chunks, if any, as ``FILE.partial``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from hepgen.data.layouts import calochallenge, jetnet, zjets
from hepgen.data.streaming import generate_to_file

# Chunk sizes: Pythia is initialised once per chunk (~0.5 s), so Pythia chunks hold
# 500-2000 samples (4-15 s of work); showers are cheap and come in larger chunks. The
# size depends on n only (never on the worker count), aiming at ~32 chunks per run so
# that small runs still spread over the cores.
PYTHIA_CHUNK_RANGE = (500, 2000)
SHOWER_CHUNK_RANGE = (1000, 10000)


def default_chunk_size(n: int, smallest: int, largest: int, chunks: int = 32) -> int:
    """About ``n / chunks``, within [smallest, largest] (``n`` is checked later)."""
    if not isinstance(n, int) or n < 1:
        return smallest
    return min(largest, max(smallest, -(-n // chunks)))


def generate_jets(
    path: str | os.PathLike,
    n: int,
    process: str = "top",
    particles: int = 30,
    seed: int = 0,
    workers: int = 1,
    force: bool = False,
    progress: bool = False,
    chunk_size: int | None = None,
    chunks: Sequence[int] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """``n`` Pythia + FastJet jets (``process`` 'top' or 'qcd') in the JetNet layout,
    keeping the ``particles`` highest-pT constituents."""
    from hepgen.data.pythia_jets import PythiaJets
    from hepgen.data.pythia_setup import require_pythia

    require_pythia()
    chunk_size = chunk_size or default_chunk_size(n, *PYTHIA_CHUNK_RANGE)
    task = PythiaJets(process=process, max_particles=particles)
    attrs = {**jetnet.file_attrs(), **task.provenance(), **(attrs or {})}
    return generate_to_file(
        path, task, n, seed, workers, chunk_size, attrs, force=force, progress=progress, unit="jet", chunks=chunks
    )


def generate_events(
    path: str | os.PathLike,
    n: int,
    seed: int = 0,
    workers: int = 1,
    force: bool = False,
    progress: bool = False,
    chunk_size: int | None = None,
    chunks: Sequence[int] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """``n`` Pythia Z(-> mu mu) + 1, 2 or 3 jet events (keys 'muons', 'jets', 'n_jets')."""
    from hepgen.data.pythia_events import PythiaZJets
    from hepgen.data.pythia_setup import require_pythia

    require_pythia()
    chunk_size = chunk_size or default_chunk_size(n, *PYTHIA_CHUNK_RANGE)
    task = PythiaZJets()
    attrs = {**zjets.file_attrs(), **task.provenance(), **(attrs or {})}
    return generate_to_file(
        path, task, n, seed, workers, chunk_size, attrs, force=force, progress=progress, unit="event", chunks=chunks
    )


def generate_showers(
    path: str | os.PathLike,
    n: int,
    seed: int = 0,
    workers: int = 1,
    force: bool = False,
    progress: bool = False,
    chunk_size: int | None = None,
    chunks: Sequence[int] | None = None,
    attrs: Mapping[str, Any] | None = None,
) -> Path:
    """``n`` GFlash-style parametrized photon showers (not Geant4) in the CaloChallenge
    dataset-1 photon layout, incident energies 256 MeV ... 4 TeV in powers of two."""
    from hepgen.data.gflash import GFlashShowers

    chunk_size = chunk_size or default_chunk_size(n, *SHOWER_CHUNK_RANGE)
    task = GFlashShowers()
    attrs = {**calochallenge.file_attrs(), **task.provenance(), **(attrs or {})}
    return generate_to_file(
        path, task, n, seed, workers, chunk_size, attrs, force=force, progress=progress, unit="shower", chunks=chunks
    )
