"""The `jets` bench suite: hepgen against the published EPiC-FM sampled with torchdiffeq."""

import pytest
import torch

from hepgen.bench import SUITES, epic, jets

torchdiffeq = pytest.importorskip("torchdiffeq")


def test_suite_is_registered():
    assert SUITES["jets"] == "hepgen.bench.jets"


def test_suite_runs_and_reports_ms_per_jet(monkeypatch):
    monkeypatch.setattr(epic, "MULTIPLICITIES", (3,))
    monkeypatch.setattr(epic, "setup", lambda device, quick: epic.Setup(batch=2, steps=2, runs=1))
    rows = jets.run("cpu", quick=True)
    assert [r.case for r in rows] == ["N=3 B=2 NFE=4"]
    assert rows[0].suite == "jets" and rows[0].baseline == jets.BASELINE
    assert rows[0].ours_ms > 0 and rows[0].baseline_ms > 0


def test_torchdiffeq_baseline_solves_the_same_ode():
    net = epic.make_network("cpu").double()
    y0 = torch.randn(3, 5, 3, dtype=torch.float64)
    mask = torch.ones(3, 5, dtype=torch.bool)
    # 4 steps: the stage times are exact in binary on both sides (see test_epic_suite.py).
    torch.testing.assert_close(
        epic._generator(epic.hepgen_generate, net, y0, mask, 4)(),
        epic._generator(jets.torchdiffeq_midpoint, net, y0, mask, 4)(),
    )
