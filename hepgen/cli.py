"""The `hepgen` command line.

Each subcommand lives next to the code it drives and exposes ``register(subparsers)``;
this module only assembles them, so ``hepgen --help`` lists exactly what is implemented.
Heavy imports (torch, h5py, pythia) happen inside the subcommands, not here.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# Modules that define subcommands, in the order `--help` shows them.
SUBCOMMAND_MODULES = (
    "hepgen.info",
    "hepgen.data.cli",
    "hepgen.train_cli",
    "hepgen.generate_cli",
    "hepgen.metrics.cli",
    "hepgen.compare_cli",
    "hepgen.bench.cli",
)


def build_parser() -> argparse.ArgumentParser:
    from hepgen import __version__

    parser = argparse.ArgumentParser(
        prog="hepgen",
        description="Fast generative models for LHC simulation on fused kernels.",
    )
    parser.add_argument("--version", action="version", version=f"hepgen {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, FileNotFoundError, FileExistsError, RuntimeError) as err:
        # User-facing errors: one clear line, no traceback.
        print(f"hepgen {args.command}: error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
