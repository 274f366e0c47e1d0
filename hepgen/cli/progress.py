"""One progress convention for every command: tqdm bars on stderr, off with ``--quiet`` or
when stderr is not a terminal (a log file gets the results, not bar redraws).
``HEPGEN_PROGRESS=1`` turns them on where stderr is not a terminal (``=0`` turns them off
everywhere); ``--quiet`` always wins.

Libraries take progress in one of three shapes, and this module makes each:
``enabled(quiet)`` for a ``progress: bool`` argument, ``over(quiet, unit)`` for a
``progress(iterable, name)`` wrapper, ``bar(quiet, total, unit)`` for a counter to
``update(n)``; :class:`Cases` shows the bench suites' ``progress(index, total, label)``.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable


def enabled(quiet: bool) -> bool:
    """Whether progress bars are shown."""
    if quiet:
        return False
    forced = os.environ.get("HEPGEN_PROGRESS", "").strip()
    if forced:
        return forced != "0"
    return sys.stderr.isatty()


def bar(quiet: bool, *, total: int | None = None, unit: str = "it", desc: str | None = None):
    """A tqdm bar on stderr (disabled by the convention); use as a context manager."""
    from tqdm.auto import tqdm

    return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=not enabled(quiet), dynamic_ncols=True)


def over(quiet: bool, unit: str) -> Callable[[Iterable, str | None], Iterable] | None:
    """``progress(iterable, name=None)`` that wraps an iterable in a bar, or None when off.

    A ``range`` that starts above 0 (a resumed training) shows as the part of its total."""
    if not enabled(quiet):
        return None
    from tqdm.auto import tqdm

    def wrap(iterable: Iterable, name: str | None = None) -> Iterable:
        extent = {}
        if isinstance(iterable, range) and iterable.step == 1:
            extent = {"initial": iterable.start, "total": iterable.stop}
        return tqdm(iterable, desc=name, unit=unit, file=sys.stderr, dynamic_ncols=True, **extent)

    return wrap


class Cases:
    """A bench suite's ``progress(index, total, label)`` shown as one bar per suite and
    device: ``spline cpu  33%|###   | 2/6 [00:41<...] B=100000 D=18 K=8 inverse``."""

    def __init__(self, quiet: bool, desc: str):
        self.on, self.desc, self._bar = enabled(quiet), desc, None

    def __call__(self, index: int, total: int, label: str) -> None:
        if not self.on:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(total=total, desc=self.desc, unit="case", file=sys.stderr, dynamic_ncols=True, leave=False)
        self._bar.n = index - 1  # cases finished before this one starts
        self._bar.set_postfix_str(label, refresh=True)

    def __enter__(self) -> Cases:
        return self

    def __exit__(self, *exc) -> None:
        if self._bar is not None:
            self._bar.close()
