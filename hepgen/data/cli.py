"""``hepgen data jets|events|showers``: generate training and reference data files."""

from __future__ import annotations

import argparse
import os
import sys


def register(subparsers) -> None:
    """Add the ``data`` subcommand and its three kinds to ``subparsers``."""
    parser = subparsers.add_parser(
        "data",
        help="generate jets, Z+jets events or calorimeter showers into HDF5 files",
        description="Generate physics data in the field's file layouts, in parallel, "
        "streamed to disk. Interrupting keeps a valid file with the finished chunks.",
    )
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)

    jets = kinds.add_parser("jets", help="top or QCD jets, Pythia 8 + FastJet, JetNet layout")
    _common(jets, "jets")
    jets.add_argument(
        "--particles", type=int, choices=(30, 150), default=30, help="constituents kept per jet"
    )
    jets.add_argument(
        "--process", choices=("top", "qcd"), default="top", help="t tbar or light-quark/gluon QCD"
    )
    jets.set_defaults(run=run_jets)

    events = kinds.add_parser("events", help="Z(->mu mu) + 1-3 jets, Pythia 8 + FastJet")
    _common(events, "events")
    events.set_defaults(run=run_events)

    showers = kinds.add_parser(
        "showers", help="photon showers, GFlash-style parametrization, CaloChallenge dataset-1 layout"
    )
    _common(showers, "showers")
    showers.set_defaults(run=run_showers)


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def _common(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("-n", type=int, required=True, help=f"number of {what}")
    parser.add_argument("-o", "--output", required=True, help="HDF5 file to write")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    parser.add_argument(
        "--workers", type=int, default=default_workers(), help="worker processes (default: all cores)"
    )
    parser.add_argument("--chunk-size", type=int, default=None, help="samples per chunk (advanced)")
    parser.add_argument("--force", action="store_true", help="overwrite an existing output file")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")


def _options(args) -> dict:
    options = {
        "n": args.n,
        "seed": args.seed,
        "workers": args.workers,
        "force": args.force,
        "progress": not args.quiet,
    }
    if args.chunk_size is not None:
        options["chunk_size"] = args.chunk_size
    return options


def _generate(function, args, what: str, **options) -> int:
    from hepgen.data.streaming import GenerationInterrupted

    try:
        path = function(args.output, **options, **_options(args))
    except GenerationInterrupted as stop:
        if stop.path is None:
            print(f"interrupted before the first chunk finished; {args.output} not written", file=sys.stderr)
        else:
            print(
                f"interrupted: {stop.path} holds {stop.n_written} of {stop.n_requested} {what}",
                file=sys.stderr,
            )
        raise
    print(f"wrote {args.n} {what} to {path}", file=sys.stderr)
    return 0


def run_jets(args) -> int:
    from hepgen.data.generate import generate_jets

    return _generate(
        generate_jets, args, f"{args.process} jets", process=args.process, particles=args.particles
    )


def run_events(args) -> int:
    from hepgen.data.generate import generate_events

    return _generate(generate_events, args, "events")


def run_showers(args) -> int:
    from hepgen.data.generate import generate_showers

    return _generate(generate_showers, args, "showers")
