"""The lint tools' versions are written twice (pyproject's lint extra for CI, the pre-commit
hooks for contributors); they must agree, or CI and a contributor's commit hook disagree."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _lint_extra() -> dict[str, str]:
    text = (ROOT / "pyproject.toml").read_text()
    line = re.search(r"^lint = \[(.*)\]$", text, re.M)
    assert line, "pyproject.toml: no one-line 'lint = [...]' extra (.ci/run reads it with sed)"
    pins = dict(re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', line.group(1)))
    assert set(pins) == {"ruff", "clang-format"}, pins
    return pins


def test_pre_commit_hooks_pin_the_lint_extras_versions():
    config = ROOT / ".pre-commit-config.yaml"
    if not config.exists():  # an installed sdist has no repository files
        pytest.skip("not a source checkout")
    revs = dict(re.findall(r"repo: \S+/(ruff-pre-commit|mirrors-clang-format)\s+rev: v(\S+)", config.read_text()))
    pins = _lint_extra()
    assert revs == {"ruff-pre-commit": pins["ruff"], "mirrors-clang-format": pins["clang-format"]}, (revs, pins)
