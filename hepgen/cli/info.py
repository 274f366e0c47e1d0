"""``hepgen info``: version, compiled features and the backend of each op."""

from __future__ import annotations

import argparse

from hepgen.cli import options


def register(subparsers) -> None:
    parser = options.command(
        subparsers,
        "info",
        run=run,
        help="show version, compiled features and the backend of each op",
        description="Show hepgen's version, what its compiled core contains (OpenMP threads, CUDA "
        "kernels and architectures), the GPUs torch sees, and for each op the available "
        "backends and the one chosen per device.",
    )
    parser.add_argument("--json", action="store_true", help="print the same facts as JSON")


def run(args: argparse.Namespace) -> int:
    import json

    from hepgen.info import collect, format_text

    info = collect()
    print(json.dumps(info, indent=2) if args.json else format_text(info))
    return 0
