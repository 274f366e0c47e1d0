"""``hepgen data jets|events|showers``: generate training and reference data files."""

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
        default=default_workers(),
        metavar="N",
        help="worker processes (default: all cores this process may use)",
    )
    parser.add_argument(
        "--chunk-size",
        type=options.positive_int,
        metavar="N",
        help="samples per chunk (advanced; default: about n/32, within limits per kind)",
    )
    options.quiet(parser)


def _generate(function, args, what: str, **kind_options) -> int:
    from hepgen.data import GenerationInterrupted

    settings = {
        "n": args.n,
        "seed": args.seed,
        "workers": args.workers,
        "force": args.force,
        "progress": progress.enabled(args.quiet),
    }
    if args.chunk_size is not None:
        settings["chunk_size"] = args.chunk_size
    try:
        path = function(args.output, **settings, **kind_options)
    except GenerationInterrupted as stop:
        if stop.path is None:
            print(f"interrupted before the first chunk finished; {args.output} not written", file=sys.stderr)
        else:
            print(f"interrupted: {stop.path} holds {stop.n_written} of {stop.n_requested} {what}", file=sys.stderr)
        raise
    print(f"wrote {args.n} {what} to {path}", file=sys.stderr)
    return 0


def run_jets(args) -> int:
    from hepgen.data import generate_jets

    return _generate(generate_jets, args, f"{args.process} jets", process=args.process, particles=args.particles)


def run_events(args) -> int:
    from hepgen.data import generate_events

    return _generate(generate_events, args, "events")


def run_showers(args) -> int:
    from hepgen.data import generate_showers

    return _generate(generate_showers, args, "showers")
