"""hepgen.metrics loads its parts on first use, and nothing in hepgen sets matplotlib's backend."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

import hepgen


def _imported_after(statement: str) -> set[str]:
    """Top-level modules a fresh interpreter has loaded after ``statement``."""
    code = f"import sys; {statement}; print(' '.join(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


def test_importing_metrics_loads_no_plotting_or_learning_stack():
    loaded = _imported_after("import hepgen.metrics")
    assert not loaded & {"matplotlib", "sklearn", "scipy"}, loaded & {"matplotlib", "sklearn", "scipy"}


def test_a_name_loads_its_submodule_and_unknown_names_raise():
    import hepgen.metrics as metrics

    assert metrics.auc.__module__ == "hepgen.metrics.scores"
    assert "classifier_weights" in dir(metrics) and "classifier_weights" in metrics.__all__
    with pytest.raises(AttributeError, match="no_such_name"):
        metrics.no_such_name  # noqa: B018


def test_no_module_sets_the_matplotlib_backend():
    # matplotlib.use() at import time would switch the backend of a user's own session
    # (a notebook's inline plots); our figures use matplotlib.figure.Figure on Agg instead.
    root = Path(hepgen.__file__).parent
    pattern = re.compile(r"\b(matplotlib|mpl)\.use\(|\bpyplot\.switch_backend\(|\bplt\.switch_backend\(")
    offenders = [
        f"{path.relative_to(root)}:{n}"
        for path in sorted(root.rglob("*.py"))
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if pattern.search(line)
    ]
    assert not offenders, offenders
