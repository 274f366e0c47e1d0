"""``hepgen data jets|events|showers``: generate training and reference data files;
``hepgen data merge``: join the shards of a run made on several machines.

Across machines the chunks of one run (chunk k from its own seed, whichever process makes
it) are split into contiguous blocks: ``--shard i/n`` makes block i into its own file, and
``hepgen data merge`` joins the shards, in chunk order, into the file one machine writes
with the same seed. Under torchrun or srun (a launcher's environment) without ``--shard``,
the ranks do this themselves through ``FILE.parts`` (:mod:`hepgen.distributed.generate`).
"""

from __future__ import annotations

import argparse
import os
import sys

from hepgen.cli import options, progress


def register(subparsers) -> None:
    parser = options.command(
        subparsers,
        "data",
        help="generate jets, Z+jets events or calorimeter showers into HDF5 files",
        description="Generate physics data in the field's file layouts, in parallel, streamed to disk. "
        "Interrupting keeps a valid file with the finished chunks.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)

    jets = options.command(
        kinds,
        "jets",
        run=run_jets,
        help="top or QCD jets, Pythia 8 + FastJet, JetNet layout (GeV)",
        description="Generate top or QCD jets with Pythia 8 and FastJet into a "
        "JetNet-layout HDF5 file (GeV). Needs pip install 'hepgen[pythia]'.",
    )
    _common(jets, "jets")
    jets.add_argument("--particles", type=int, choices=(30, 150), default=30, help="constituents kept per jet")
    jets.add_argument("--process", choices=("top", "qcd"), default="top", help="t tbar or light-quark/gluon QCD")

    events = options.command(
        kinds,
        "events",
        run=run_events,
        help="Z(->mu mu) + 1-3 jets, Pythia 8 + FastJet",
        description="Generate Z(->mu mu) + 1-3 jet events with Pythia 8 and FastJet "
        "(GeV). Needs pip install 'hepgen[pythia]'.",
    )
    _common(events, "events")

    showers = options.command(
        kinds,
        "showers",
        run=run_showers,
        help="photon showers, GFlash-style parametrization, CaloChallenge dataset-1 layout (MeV)",
        description="Generate photon showers from a GFlash-style parametrization "
        "(not Geant4) in the CaloChallenge dataset-1 layout (MeV).",
    )
    _common(showers, "showers")

    merge = options.command(
        kinds,
        "merge",
        run=run_merge,
        help="join the shards of a run (--shard i/n) into one file",
        description="Join shard files written with --shard i/n (any layout; the same command, seed, -n "
        "and chunk size) into one file, in chunk order: the file one machine writes with the same seed. "
        "Refuses shards of different runs and names the chunks that are missing.",
    )
    merge.add_argument("shards", nargs="+", metavar="SHARD", help="the shard files, in any order")
    options.output(merge, kind="file", metavar="FILE", help="HDF5 file to write")


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _common(parser: argparse.ArgumentParser, what: str) -> None:
    options.count(parser, what)
    options.output(parser, kind="file", metavar="FILE", help="HDF5 file to write")
    options.seed(parser)
    parser.add_argument(
        "--workers",
        type=options.positive_int,
        metavar="N",
        help="worker processes (default: all cores this process may use; under torchrun, "
        "shared by the ranks on one machine)",
    )
    parser.add_argument(
        "--chunk-size",
        type=options.positive_int,
        metavar="N",
        help="samples per chunk (advanced; default: about n/32, within limits per kind)",
    )
    parser.add_argument(
        "--shard",
        type=shard,
        metavar="I/N",
        help="make only shard I of N (0 <= I < N) of the run: -n counts the whole run; -o is this "
        "shard's file; join the N shards with `hepgen data merge` (docs/distributed.md)",
    )
    options.quiet(parser)


def shard(text: str) -> tuple[int, int]:
    """``--shard I/N``: shard I (0-based, like $SLURM_PROCID) of N."""
    import argparse

    i, slash, n = text.partition("/")
    try:
        index, count = int(i), int(n)
    except ValueError:
        index, count = -1, 0
    if not slash or count < 1 or not 0 <= index < count:
        raise argparse.ArgumentTypeError(f"expected I/N with 0 <= I < N, e.g. 0/4, got {text!r}")
    return index, count


def _generate(function, args, what: str, run: dict, chunk_range: tuple[int, int], **kind_options) -> int:
    from hepgen.data import GenerationInterrupted
    from hepgen.data.generate import default_chunk_size
    from hepgen.distributed.context import launcher_environment
    from hepgen.distributed.generate import parts_dir

    # The run's chunk size, fixed here for every shard and rank alike: it depends on -n
    # (the whole run), never on a shard's share.
    args.chunk_size = args.chunk_size or default_chunk_size(args.n, *chunk_range)
    settings = {
        "n": args.n,
        "seed": args.seed,
        "workers": args.workers or default_workers_per_rank(),
        "force": args.force,
        "progress": progress.enabled(args.quiet),
        "chunk_size": args.chunk_size,
    }
    # Under a launcher, or to resume a run the ranks left unfinished in FILE.parts (on any number of processes).
    if args.shard is None and ((launcher_environment() or (0, 1, 0))[1] > 1 or parts_dir(args.output).exists()):
        return _generate_on_ranks(function, args, what, run, settings, kind_options)
    if args.shard is not None:
        chunks = _shard_chunks(args)
        if not chunks:
            return 0
        settings.update(chunks=chunks, attrs=_part_attrs(args, run, chunks))
    try:
        path = function(args.output, **settings, **kind_options)
    except GenerationInterrupted as stop:
        if stop.path is None:
            print(f"interrupted before the first chunk finished; {args.output} not written", file=sys.stderr)
        else:
            print(f"interrupted: {stop.path} holds {stop.n_written} of {stop.n_requested} {what}", file=sys.stderr)
        raise
    if args.shard is not None:
        i, n = args.shard
        made = sum(_chunk_sizes(args)[k] for k in chunks)
        print(f"wrote shard {i}/{n} ({made} of {args.n} {what}) to {path}", file=sys.stderr)
    else:
        print(f"wrote {args.n} {what} to {path}", file=sys.stderr)
    return 0


def _chunk_sizes(args) -> list[int]:
    from hepgen.data.streaming import chunk_sizes

    return chunk_sizes(args.n, args.chunk_size)


def _run_identity(args, run: dict) -> dict:
    from hepgen import __version__

    return {
        "command": f"data {args.kind}",
        "n": args.n,
        "seed": args.seed,
        "chunk_size": args.chunk_size,
        "hepgen_version": __version__,
        **run,
    }


def _part_attrs(args, run: dict, chunks: list[int]) -> dict:
    from hepgen.distributed.generate import part_attrs

    return part_attrs(_run_identity(args, run), chunks, _chunk_sizes(args))


def _shard_chunks(args) -> list[int]:
    """The chunks of --shard I/N: block I of N contiguous blocks (empty: said, nothing written)."""
    from hepgen.distributed.generate import split_chunks

    i, n = args.shard
    sizes = _chunk_sizes(args)
    chunks = split_chunks(range(len(sizes)), n)[i]
    if not chunks:
        print(
            f"shard {i}/{n}: nothing to make, the run has only {len(sizes)} chunks (of {sizes[0]}); "
            f"{args.output} not written",
            file=sys.stderr,
        )
    return chunks


def default_workers_per_rank() -> int:
    """All cores this process may use, shared by the ranks on one machine (torchrun's LOCAL_WORLD_SIZE)."""
    return max(1, default_workers() // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def _generate_on_ranks(function, args, what: str, run: dict, settings: dict, kind_options: dict) -> int:
    """Under torchrun or srun: each rank makes its block of chunks into FILE.parts, rank 0 joins them."""
    from hepgen.data import GenerationInterrupted
    from hepgen.distributed import context
    from hepgen.distributed.generate import run_in_parts

    ctx = context.init_from_env("cpu")
    # Parts are new files (--force is for FILE and old parts); one progress bar, rank 0's.
    settings = {**settings, "force": False, "progress": settings["progress"] and ctx.is_main}

    def write_part(path, chunks, attrs):
        try:
            function(path, **settings, **kind_options, chunks=chunks, attrs=attrs)
        except GenerationInterrupted:
            raise KeyboardInterrupt from None  # run_in_parts says what the part holds

    try:
        outcome = run_in_parts(
            args.output,
            run=_run_identity(args, run),
            sizes=_chunk_sizes(args),
            write_part=write_part,
            force=args.force,
            log=(lambda text: print(text, file=sys.stderr)) if ctx.is_main else (lambda text: None),
        )
    finally:
        context.shutdown()
    if ctx.is_main:
        ranks = f" ({ctx.world_size} ranks)" if ctx.distributed else ""
        print(f"wrote {args.n} {what} to {outcome.path}{ranks}", file=sys.stderr)
    return 0


def run_merge(args) -> int:
    from hepgen.distributed.generate import join_parts

    path = join_parts(args.output, args.shards, force=args.force)
    print(f"wrote {path} (joined from {len(args.shards)} shards)", file=sys.stderr)
    return 0


def run_jets(args) -> int:
    from hepgen.data.generate import PYTHIA_CHUNK_RANGE, generate_jets

    return _generate(
        generate_jets,
        args,
        f"{args.process} jets",
        {"process": args.process, "particles": args.particles},
        PYTHIA_CHUNK_RANGE,
        process=args.process,
        particles=args.particles,
    )


def run_events(args) -> int:
    from hepgen.data.generate import PYTHIA_CHUNK_RANGE, generate_events

    return _generate(generate_events, args, "events", {}, PYTHIA_CHUNK_RANGE)


def run_showers(args) -> int:
    from hepgen.data.generate import SHOWER_CHUNK_RANGE, generate_showers

    return _generate(generate_showers, args, "showers", {}, SHOWER_CHUNK_RANGE)
