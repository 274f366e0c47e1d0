"""hepgen's own code calls no deprecated hepgen API: the commands, bench suites and metrics
entry points run with hepgen's DeprecationWarnings turned into errors.

tests/conftest.py puts that filter (``HEPGEN_DEPRECATIONS_ARE_ERRORS``) on every test of
the CLI modules (tests/test_cli.py, tests/**/test_*cli*.py, test_events_pipeline.py), the
bench suites (tests/bench, tests/test_bench_*.py) and this module; here the shipped models
run through the command line with ``-W error::DeprecationWarning`` (every deprecation, in
a fresh interpreter: imports included). The deprecated spellings themselves are still
tested where they are kept (tests/models/test_deprecations.py, the CLI tests of old option
spellings), under ``pytest.warns``.
"""

import os
import subprocess
import sys

import h5py
import pytest

import hepgen as hepgen_package
from hepgen.models import list_pretrained


def hepgen(*argv: str, cwd) -> subprocess.CompletedProcess:
    """``python -W error::DeprecationWarning -m hepgen ARGV``: any DeprecationWarning fails it."""
    # The child must import the hepgen this test imported (installed, editable or a source
    # tree on PYTHONPATH), not whatever its working directory happens to hold.
    package_root = os.path.dirname(os.path.dirname(hepgen_package.__file__))
    env = {**os.environ, "HEPGEN_PROGRESS": "0", "PYTHONPATH": os.pathsep.join([package_root, *sys.path])}
    return subprocess.run(
        [sys.executable, "-W", "error::DeprecationWarning", "-m", "hepgen", *argv],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,  # not the checkout: `python -m` puts the working directory first on sys.path
        timeout=600,
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("generate", "calo", "-n", "30", "--batch-size", "16"),
        ("generate", "jets", "-n", "12", "--batch-size", "8", "--steps", "2"),
    ],
)
def test_generate_with_the_shipped_models(argv, tmp_path):
    out = tmp_path / "out.h5"
    done = hepgen(*argv, "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "deprecated" not in done.stderr
    with h5py.File(out) as file:
        assert file.attrs["complete"] and file.attrs["seeding"] == "per-chunk"
        assert file.attrs["model"] in ("pretrained", str(list_pretrained()["pretrained-calo"][0]))


def test_the_filter_makes_hepgen_deprecations_errors():
    # The conftest filter is on for this module: a hepgen deprecation raises.
    import warnings

    from hepgen.models.base import deprecated

    with pytest.raises(DeprecationWarning, match="will be removed in the next release"):
        deprecated("old", "new")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        deprecated("old", "new")  # and only the filter: the call itself just warns
