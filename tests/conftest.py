"""Test-wide setup.

Without a GPU, Triton kernels are tested on the CPU through Triton's interpreter; the
variable must be set before any Triton kernel module is imported, hence here.
"""

import os
import signal

import pytest
import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")


# Property-based tests (Hypothesis): "ci" (the default) is the bounded profile CI runs in
# minutes; "long" (pytest --hypothesis-profile=long) is the pre-release run of at least 10^4
# examples per test, whose counts docs/reliability.md records. No deadline: the first call
# of a kernel compiles or interprets it, and 2 shared cores time nothing reliably.
try:
    from hypothesis import HealthCheck, settings

    _slow_ok = [HealthCheck.too_slow, HealthCheck.data_too_large]
    settings.register_profile("ci", max_examples=40, deadline=None, suppress_health_check=_slow_ok, print_blob=True)
    settings.register_profile(
        "long", max_examples=10_000, deadline=None, suppress_health_check=_slow_ok, print_blob=True
    )
    settings.load_profile(os.environ.get("HEPGEN_HYPOTHESIS_PROFILE", "ci"))
except ImportError:  # hypothesis is in the test extra; without it those tests are skipped
    pass


# Where hepgen's own code runs end to end (the commands, the bench suites), a hepgen
# DeprecationWarning is an error: internal code must not call deprecated API. Every hepgen
# deprecation says "is deprecated and will be removed in the next release"; tests of the
# old spellings expect the warning under pytest.warns, which these filters do not affect.
HEPGEN_DEPRECATIONS_ARE_ERRORS = "error:.*is deprecated and will be removed in the next release:DeprecationWarning"


def _runs_entry_points(path) -> bool:
    name = path.name
    return (
        "cli" in name
        or "bench" in name
        or path.parent.name == "bench"
        or name in ("test_events_pipeline.py", "test_no_internal_deprecations.py")
    )


def pytest_collection_modifyitems(config, items):
    import pytest

    for item in items:
        if _runs_entry_points(item.path):
            item.add_marker(pytest.mark.filterwarnings(HEPGEN_DEPRECATIONS_ARE_ERRORS))


@pytest.fixture(autouse=True)
def _sigint_raises_keyboard_interrupt():
    """Commands a test starts inherit this process's SIGINT disposition: in the full suite it
    was found ignored (set by a library during an earlier test, not by hepgen), so a
    SIGINT sent to a child did nothing. Each test starts with Python's own handler."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
