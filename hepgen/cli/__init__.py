"""The ``hepgen`` command line.

One module per command (``hepgen/cli/<command>.py``, each with ``register(subparsers)``),
the options they share in :mod:`hepgen.cli.options`, one progress convention in
:mod:`hepgen.cli.progress`. A command parses, calls public library functions, and reports;
torch, h5py, pythia and matplotlib are imported only inside the command that runs, never
for ``--help``.

Errors: a failure prints one line, ``hepgen COMMAND: error: ...``, and exits 1; with
``--traceback`` (before or after the command) or ``HEPGEN_TRACEBACK=1`` the full traceback
comes first, for bug reports. A bad input file is such a failure: the readers' and the
checkpoint loader's refusals name the file and the problem. Ctrl-C prints "interrupted"
(and, where a file was being written, what was kept: the target is left as it was, the
finished part is in ``FILE.partial``) and exits 130; SIGTERM does the same (exit 130, as
``hepgen data`` always did), so that a batch system's stop cleans up like Ctrl-C (SIGKILL
cannot be caught: it leaves the writer's ``FILE.partial-<pid>-<random>`` behind). Usage errors (a bad or missing
option) are argparse's: usage, one line, exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import signal
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


def _raise_keyboard_interrupt(signum, frame):
    # SIGTERM: stop where the program is, so that writers clean up as on Ctrl-C.
    raise KeyboardInterrupt


def _chain(err: BaseException | None):
    """``err`` and the exceptions it was raised from or while handling (as a traceback shows them)."""
    seen = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        err = err.__cause__ if err.__cause__ is not None or err.__suppress_context__ else err.__context__


def _interrupted_line(stop: KeyboardInterrupt) -> str:
    """What the writer that was stopped says it kept (WriteInterrupted.describe), else "interrupted"."""
    for err in _chain(stop):
        if hasattr(err, "describe"):
            return err.describe()
    return "interrupted"


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
    previous_sigterm = None
    try:
        previous_sigterm = signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    except ValueError:  # not the main thread (main() called from a library's thread)
        pass
    try:
        options.check_output(args)
        if getattr(args, "threads", None):
            import torch

            torch.set_num_threads(args.threads)
        return int(args.run(args) or 0)
    except KeyboardInterrupt as stop:
        if _show_traceback(args):
            traceback.print_exc()
        print(_interrupted_line(stop), file=sys.stderr)
        return 130
    except Exception as err:
        if _show_traceback(args):
            traceback.print_exc()
        print(f"{name}: error: {_one_line(err)}", file=sys.stderr)
        return 1
    finally:
        if previous_sigterm is not None:
            signal.signal(signal.SIGTERM, previous_sigterm)
