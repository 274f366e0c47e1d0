"""``hepgen bench``: run benchmark suites and print (and optionally record) their tables."""

from __future__ import annotations

import argparse
import shlex
import sys

from hepgen.bench import SUITES
from hepgen.cli import options, progress


def register(subparsers) -> None:
    p = options.command(
        subparsers,
        "bench",
        run=run,
        help="time hepgen's ops and models against their baselines",
        description="Time hepgen against the implementation users would otherwise run (plain PyTorch or a "
        "peer library), on the same inputs, in the same run, on the same device, and print a "
        "table with the speed-up and peak memory. Suites: " + ", ".join(SUITES) + ". A bar on "
        "stderr shows the case each suite is on.",
    )
    p.add_argument("suites", nargs="*", metavar="SUITE", help=f"suites to run (default: all): {', '.join(SUITES)}")
    options.device(
        p, default="all", choices=("cpu", "cuda", "all"), help="where to run: all = CPU, and the GPU if torch sees one"
    )
    p.add_argument("--quick", action="store_true", help="small sizes and short timing, for a smoke test")
    p.add_argument(
        "--min-time",
        type=options.non_negative_float,
        default=0.5,
        metavar="SECONDS",
        help="measure each case for at least this many seconds",
    )
    p.add_argument(
        "--save",
        metavar="DIR",
        help="also record the tables (JSON + Markdown, one file per suite, device and date) in DIR, "
        "e.g. benchmarks/results",
    )
    options.threads(p)
    options.quiet(p)


def _devices(choice: str) -> list[str]:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no GPU")
    if choice == "all":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return [choice]


def run(args: argparse.Namespace) -> int:
    suites = args.suites or list(SUITES)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ValueError(f"unknown suite {', '.join(unknown)}; suites are {', '.join(SUITES)}")
    environment = None
    for suite in suites:
        for device in _devices(args.device):
            print(f"\n{suite} on {device}{' (quick)' if args.quick else ''}:", flush=True)
            rows = _run_suite(suite, device, args)
            from hepgen.bench.report import format_table, save

            print(format_table(rows), flush=True)
            if args.save:
                environment = environment or _environment()
                paths = save(rows, args.save, suite, device, environment)
                print("recorded in " + " and ".join(paths))
    return 0


def _run_suite(suite: str, device: str, args: argparse.Namespace):
    import importlib

    module = importlib.import_module(SUITES[suite])
    with progress.Cases(args.quiet, f"{suite} {device}") as cases:
        return module.run(device=device, quick=args.quick, min_time_s=args.min_time, progress=cases)


def _environment() -> dict:
    from hepgen.info import collect

    info = collect()
    environment = {k: info[k] for k in ("hepgen", "python", "torch", "triton", "torch_threads", "core", "gpus")}
    environment["command"] = "hepgen " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    return environment
