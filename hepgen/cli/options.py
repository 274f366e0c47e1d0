"""The options every ``hepgen`` command shares: one spelling, one check, one help text each.

A command adds an option with the function of its name (``output(p, ...)``, ``seed(p)``,
``learning_rate(p, default=1e-3)``, ...). Value checks are argparse ``type=`` functions, so
a bad value is a usage error that names the option (``argument --batch-size: expected a
positive integer, got '0'``) before anything runs. Spellings that older releases used are
passed as ``old=(...)``: they still work for one release, hidden from ``--help``, and print
one line on stderr naming the new spelling.

Output files and directories (``-o/--output``) are checked by :func:`check_output`, which
:func:`hepgen.cli.main` calls before a command runs: an existing output is refused unless
``--force`` is given, so a refused run leaves it untouched and nothing half-written.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Callable
from pathlib import Path

# --------------------------------------------------------------------------- value checks


def _number(convert: Callable[[str], float], what: str, ok: Callable[[float], bool]):
    """An argparse ``type=``: ``convert(text)``, refused unless ``ok(value)``; argparse puts
    the option's name in front of the message."""

    def check(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (isinstance(value, float) and math.isnan(value)) or not ok(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value

    check.__name__ = what  # argparse's own messages name the type by this
    return check


def int_at_least(minimum: int):
    """Integers >= ``minimum``."""
    what = {0: "a non-negative integer", 1: "a positive integer"}.get(minimum, f"an integer >= {minimum}")
    return _number(int, what, lambda v: v >= minimum)


def float_in(low: float, high: float, *, low_open: bool = False, high_open: bool = False):
    """Real numbers in the interval from ``low`` to ``high`` (open or closed at each end)."""
    what = f"a number in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    return _number(
        float, what, lambda v: (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
    )


positive_int = int_at_least(1)
non_negative_int = int_at_least(0)
positive_float = _number(float, "a positive number", lambda v: 0 < v < math.inf)
non_negative_float = _number(float, "a non-negative number", lambda v: 0 <= v < math.inf)
probability = float_in(0.0, 1.0)
fraction = float_in(0.0, 1.0, low_open=True, high_open=True)  # a share that leaves some of both parts


# --------------------------------------------------------------------------- old spellings


def deprecated(old: str, new: str) -> None:
    """The one-line notice for an old spelling, on stderr."""
    print(f"hepgen: warning: {old} is deprecated and will be removed in the next release; use {new}", file=sys.stderr)


class _OldSpelling(argparse.Action):
    """An option's old spelling: warns once per use, then stores like the new one."""

    def __init__(self, option_strings, dest, new: str, flag: bool = False, **kwargs):
        if flag:
            kwargs["nargs"] = 0
        super().__init__(option_strings, dest, **kwargs)
        self.new, self.flag = new, flag

    def __call__(self, parser, namespace, values, option_string=None):
        deprecated(option_string, self.new)
        setattr(namespace, self.dest, True if self.flag else values)


def _old(parser, old: tuple[str, ...], new: str, dest: str, flag: bool = False, **kwargs) -> None:
    for spelling in old:
        # default=SUPPRESS: an unused old spelling must not overwrite the new one's default.
        parser.add_argument(
            spelling,
            dest=dest,
            action=_OldSpelling,
            new=new,
            flag=flag,
            default=argparse.SUPPRESS,
            help=argparse.SUPPRESS,
            **kwargs,
        )


# --------------------------------------------------------------------------- the options


def output(
    parser, *, kind: str, metavar: str, help: str, old_force: tuple[str, ...] = (), may_exist_with: str | None = None
) -> None:
    """``-o/--output`` (required) and ``--force``. ``kind`` is "file" (refused if it exists)
    or "directory" (refused if it exists and is not empty); ``may_exist_with`` names a flag
    (e.g. "resume") that makes an existing output expected rather than refused."""
    if kind not in ("file", "directory"):
        raise ValueError(f"kind: expected 'file' or 'directory', got {kind!r}")
    parser.add_argument("-o", "--output", required=True, metavar=metavar, help=help)
    parser.add_argument(
        "--force",
        action="store_true",
        help="overwrite an existing output file (without it one is refused before any work starts)"
        if kind == "file"
        else "replace an existing, non-empty output directory (without it one is refused before any work starts)",
    )
    _old(parser, old_force, "--force", "force", flag=True)
    parser.set_defaults(output_kind=kind, output_may_exist_with=may_exist_with)


def check_output(args: argparse.Namespace) -> None:
    """Refuse an existing ``--output`` without ``--force`` (and a missing parent directory)."""
    kind = getattr(args, "output_kind", None)
    if kind is None:
        return
    path = Path(args.output)
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: directory {path.parent} does not exist")
    expected = args.output_may_exist_with and getattr(args, args.output_may_exist_with)
    if kind == "file":
        if path.is_dir():
            raise FileExistsError(f"{path} is a directory; -o/--output expects a file")
        if path.exists() and not (args.force or expected):
            also = f" or --{args.output_may_exist_with} to continue it" if args.output_may_exist_with else ""
            raise FileExistsError(f"{path} exists; pass --force to overwrite it{also}")
    else:
        if path.exists() and not path.is_dir():
            raise FileExistsError(f"{path} exists and is not a directory")
        if path.is_dir() and any(path.iterdir()) and not args.force:
            raise FileExistsError(f"{path} exists and is not empty; pass --force to replace it")


def count(parser, what: str, *, default: int | None = None) -> None:
    """``-n``: how many samples to make."""
    parser.add_argument("-n", type=positive_int, required=default is None, default=default, help=f"number of {what}")


def seed(parser, *, help: str = "random seed") -> None:
    parser.add_argument("--seed", type=non_negative_int, default=0, help=help)


def device(
    parser,
    *,
    default: str = "cpu",
    choices: tuple[str, ...] | None = None,
    help: str = "torch device, e.g. cpu, cuda, cuda:1",
) -> None:
    parser.add_argument("--device", default=default, choices=choices, help=help)


def batch_size(parser, *, default: int | None, help: str) -> None:
    parser.add_argument("--batch-size", type=positive_int, default=default, metavar="N", help=help)


def threads(parser, *, help: str = "torch CPU threads (default: torch's choice, usually one per core)") -> None:
    parser.add_argument("--threads", type=positive_int, metavar="N", help=help)


def quiet(parser) -> None:
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bars (they are also off when stderr is not a terminal; "
        "HEPGEN_PROGRESS=1 turns them on there)",
    )


def learning_rate(parser, *, default: float | None, help: str, old: tuple[str, ...] = ()) -> None:
    parser.add_argument("--learning-rate", type=positive_float, default=default, metavar="LR", help=help)
    _old(parser, old, "--learning-rate", "learning_rate", type=positive_float)


def max_samples(parser, *, what: str, old: tuple[str, ...] = (), minimum: int = 1) -> None:
    check = int_at_least(minimum)
    parser.add_argument(
        "--max-samples", type=check, metavar="N", help=f"use only the first N {what} of each input file (default: all)"
    )
    _old(parser, old, "--max-samples", "max_samples", type=check)


def truth(parser, *, required: bool, help: str, old: tuple[str, ...] = ()) -> None:
    # With an old spelling, a required --truth has two names: argparse's own "required"
    # check would refuse the old one, so check_required does it after parsing.
    parser.add_argument("--truth", required=required and not old, metavar="FILE", help=help)
    _old(parser, old, "--truth", "truth")
    if required and old:
        earlier = parser.get_default("required_after_parsing") or ()
        parser.set_defaults(required_after_parsing=(*earlier, ("truth", "--truth")))


def check_required(args: argparse.Namespace) -> str | None:
    """The usage error for a required option given by none of its spellings, or None."""
    missing = [
        flag for dest, flag in getattr(args, "required_after_parsing", None) or () if getattr(args, dest, None) is None
    ]
    return f"the following arguments are required: {', '.join(missing)}" if missing else None


def generated(parser, *, help: str, many: bool = False) -> None:
    parser.add_argument("--generated", required=not many, nargs="+" if many else None, metavar="FILE", help=help)


def method(parser, *, help: str, default: str | None = None, old: tuple[str, ...] = ()) -> None:
    """``--method``: the sampler (ODE/SDE integration method)."""
    parser.add_argument("--method", default=default, metavar="NAME", help=help)
    _old(parser, old, "--method", "method")


def steps(parser, *, help: str, default: int | None = None, old: tuple[str, ...] = ()) -> None:
    """``--steps``: sampler steps."""
    parser.add_argument("--steps", type=positive_int, default=default, metavar="N", help=help)
    _old(parser, old, "--steps", "steps", type=positive_int)


def traceback(parser) -> None:
    """``--traceback``; on every command's parser too, so it may come after the command.
    (SUPPRESS: a subcommand's default must not undo the flag given before it.)"""
    parser.add_argument(
        "--traceback",
        action="store_true",
        default=argparse.SUPPRESS,
        help="on an error, print the full traceback (for bug reports); also HEPGEN_TRACEBACK=1",
    )


# --------------------------------------------------------------------------- help text


class HelpFormatter(argparse.HelpFormatter):
    """Shows every option's default, unless its help already says it or there is none.

    (The hook is the one argparse's own ArgumentDefaultsHelpFormatter overrides; that one
    would also print "(default: None)" and "(default: False)".)"""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            default is None
            or default == ""
            or default is argparse.SUPPRESS
            or action.nargs == 0  # flags: on or off
            or text == argparse.SUPPRESS
            or "default" in text
            or not action.option_strings
        ):
            return text
        shown = " ".join(map(str, default)) if isinstance(default, (list, tuple)) else str(default)
        return f"{text} (default: {shown.replace('%', '%%')})"


def command(subparsers, name: str, *, help: str, description: str, run=None, epilog: str | None = None):
    """A command's parser with the shared formatter and ``--traceback``; ``run(args)``
    is what :func:`hepgen.cli.main` calls."""
    parser = subparsers.add_parser(
        name, help=help, description=description, epilog=epilog, formatter_class=HelpFormatter
    )
    if run is not None:
        traceback(parser)
        parser.set_defaults(run=run, command_parser=parser)
    return parser
