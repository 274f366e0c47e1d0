"""Counting the op fuzz tests' outcomes, for the table in docs/reliability.md.

A fuzz test wraps each Hypothesis example in one of the ``fuzz_tally`` fixture's blocks:

    def test_matches_reference(fuzz_tally, ...):
        with fuzz_tally.example("set_pool"):          # a valid input: compared to the reference
            ...
        with fuzz_tally.refusal("set_pool", "mask"):  # an invalid input: must be refused
            call(...)

``example`` counts one example and, when the block fails (an AssertionError or any other
exception), one mismatch before the failure propagates. ``refusal`` counts one example; the
block must raise TypeError or ValueError whose message names the argument (then it counts a
refusal), anything else (no error, another exception, a message without the name) counts a
mismatch and fails the test. A probe run in a subprocess that dies by a signal is counted
with ``fuzz_tally.crash(op)``. Hypothesis replays a failing example while it shrinks it, so
mismatches count failing runs, not distinct faults.

With ``HEPGEN_FUZZ_REPORT=path`` set, the counts are added at the end of the session to the JSON
file at ``path`` (created if missing; counts of earlier sessions in it are kept and summed):
``{"profiles": {profile: {op: {"examples", "refusals", "mismatches", "crashes", "seconds"}}}}``.
Without it nothing is written.
"""

from __future__ import annotations

import contextlib
import json
import os
import pathlib
import time
from collections import defaultdict

import pytest

FIELDS = ("examples", "refusals", "mismatches", "crashes", "seconds")


class FuzzTally:
    """Per-op counts of one session (see the module docstring)."""

    def __init__(self) -> None:
        self.counts: dict[str, dict[str, float]] = defaultdict(lambda: dict.fromkeys(FIELDS, 0))

    def _add(self, op: str, field: str, n: float = 1) -> None:
        self.counts[op][field] += n

    @contextlib.contextmanager
    def example(self, op: str):
        start = time.perf_counter()
        self._add(op, "examples")
        try:
            yield
        except BaseException as err:
            if not _is_control_flow(err):
                self._add(op, "mismatches")
            raise
        finally:
            self._add(op, "seconds", time.perf_counter() - start)

    @contextlib.contextmanager
    def refusal(self, op: str, argument: str):
        """The block must raise TypeError/ValueError whose message names `argument`."""
        start = time.perf_counter()
        self._add(op, "examples")
        try:
            try:
                yield
            except (TypeError, ValueError) as err:
                if argument not in str(err):
                    self._add(op, "mismatches")
                    raise AssertionError(f"{op}: the refusal does not name {argument!r}: {err}") from err
                self._add(op, "refusals")
                return
            except BaseException as err:
                if not _is_control_flow(err):
                    self._add(op, "mismatches")
                raise
            self._add(op, "mismatches")
            raise AssertionError(f"{op}: an invalid {argument!r} was accepted")
        finally:
            self._add(op, "seconds", time.perf_counter() - start)

    def crash(self, op: str) -> None:
        self._add(op, "crashes")


def _is_control_flow(err: BaseException) -> bool:
    # Hypothesis' assume()/reject() and pytest's skip are not failures of the op.
    from hypothesis.errors import UnsatisfiedAssumption

    return isinstance(err, (UnsatisfiedAssumption, pytest.skip.Exception, KeyboardInterrupt))


_TALLY = FuzzTally()


@pytest.fixture(scope="session")
def fuzz_tally() -> FuzzTally:
    """The session's tally (session-scoped: Hypothesis runs many examples inside one test call)."""
    return _TALLY


def pytest_sessionfinish(session, exitstatus):
    path = os.environ.get("HEPGEN_FUZZ_REPORT")
    if not path or not _TALLY.counts:
        return
    from hypothesis import settings

    profile = settings._current_profile or "default"
    target = pathlib.Path(path)
    report = json.loads(target.read_text()) if target.exists() else {}
    ops = report.setdefault("profiles", {}).setdefault(profile, {})
    for op, counts in _TALLY.counts.items():
        kept = ops.setdefault(op, dict.fromkeys(FIELDS, 0))
        for field in FIELDS:
            kept[field] = kept.get(field, 0) + counts[field]
        kept["seconds"] = round(kept["seconds"], 1)
    target.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n")
