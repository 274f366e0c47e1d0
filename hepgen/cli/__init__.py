"""The ``hepgen`` command line.

One module per command (``hepgen/cli/<command>.py``, each with ``register(subparsers)``),
the options they share in :mod:`hepgen.cli.options`, one progress convention in
:mod:`hepgen.cli.progress`. A command parses, calls public library functions, and reports;
torch, h5py, pythia and matplotlib are imported only inside the command that runs, never
for ``--help``.

Errors: a failure prints one line, ``hepgen COMMAND: error: ...``, and exits 1; with
``--traceback`` (before or after the command) or ``HEPGEN_TRACEBACK=1`` the full traceback
comes first, for bug reports. Ctrl-C prints "interrupted" and exits 130. Usage errors
(a bad or missing option) are argparse's: usage, one line, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback

from hepgen.cli import options

# Commands in the order --help lists them; each is hepgen.cli.<name>.
COMMANDS = ("info", "data", "train", "generate", "evaluate", "compare", "metrics", "bench")

# Errors a user can cause and fix (a wrong value, a missing or existing file, a missing
# extra): their message alone is the clearest line. Anything else is named by its type.
USER_ERRORS = (ValueError, TypeError, OSError, RuntimeError, ImportError)


def build_parser() -> argparse.ArgumentParser:
    from hepgen import __version__

    parser = argparse.ArgumentParser(
        prog="hepgen",
        description="Fast generative models for LHC simulation on fused kernels.",
        epilog="`hepgen COMMAND --help` describes each command and its options.",
        formatter_class=options.HelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"hepgen {__version__}")
    options.traceback(parser)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        importlib.import_module(f"hepgen.cli.{name}").register(subparsers)
    return parser


def _show_traceback(args: argparse.Namespace) -> bool:
    return getattr(args, "traceback", False) or os.environ.get("HEPGEN_TRACEBACK", "").strip() not in ("", "0")


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    if isinstance(err, USER_ERRORS) and text:
        return text
    # Not a user error: probably a bug. Say what it was and how to report it.
    return f"{type(err).__name__}{': ' + text if text else ''} (rerun with --traceback to report it)"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    missing = options.check_required(args)
    if missing:
        args.command_parser.error(missing)
    name = args.command_parser.prog
    try:
        options.check_output(args)
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        return int(args.run(args) or 0)
    except KeyboardInterrupt:
        if _show_traceback(args):
            traceback.print_exc()
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as err:
        if _show_traceback(args):
            traceback.print_exc()
        print(f"{name}: error: {_one_line(err)}", file=sys.stderr)
        return 1
