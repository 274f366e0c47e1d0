"""`hepgen bench`: run benchmark suites and print (and optionally record) their tables."""

from __future__ import annotations

import argparse
import importlib
import shlex
import sys

from hepgen.bench import SUITES


def _devices(choice: str) -> list[str]:
    import torch

    if choice == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for but torch sees no GPU")
    if choice == "all":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    return [choice]


def run(args: argparse.Namespace) -> int:
    from hepgen.bench.report import format_table, save
    from hepgen.info import collect

    suites = args.suites or list(SUITES)
    unknown = [s for s in suites if s not in SUITES]
    if unknown:
        raise ValueError(f"unknown suite {', '.join(unknown)}; suites are {', '.join(SUITES)}")
    environment = None
    for suite in suites:
        module = importlib.import_module(SUITES[suite])
        for device in _devices(args.device):
            print(f"\n{suite} on {device}{' (quick)' if args.quick else ''}:", flush=True)
            rows = module.run(device=device, quick=args.quick, min_time_s=args.min_time)
            print(format_table(rows), flush=True)
            if args.save:
                if environment is None:
                    info = collect()
                    environment = {k: info[k] for k in ("hepgen", "python", "torch", "triton", "torch_threads", "core", "gpus")}
                    environment["command"] = "hepgen " + " ".join(shlex.quote(a) for a in sys.argv[1:])
                paths = save(rows, args.save, suite, device, environment)
                print("recorded in " + " and ".join(paths))
    return 0


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "bench", help="time hepgen's ops and models against their baselines",
        description="Time hepgen against the implementation users would otherwise run (plain "
                    "PyTorch or a peer library), on the same inputs, in the same run, on the same "
                    "device, and print a table with the speed-up and peak memory. Suites: "
                    + ", ".join(SUITES) + ".")
    parser.add_argument("suites", nargs="*", metavar="SUITE",
                        help=f"suites to run (default: all): {', '.join(SUITES)}")
    parser.add_argument("--device", choices=["cpu", "cuda", "all"], default="all",
                        help="where to run (default: all = CPU, and the GPU if torch sees one)")
    parser.add_argument("--quick", action="store_true", help="small sizes and short timing, for a smoke test")
    parser.add_argument("--min-time", type=float, default=0.5, metavar="S",
                        help="measure each case for at least S seconds (default 0.5)")
    parser.add_argument("--save", metavar="DIR", help="also record the tables (JSON + Markdown) in DIR, "
                        "e.g. benchmarks/results")
    parser.set_defaults(run=run)
