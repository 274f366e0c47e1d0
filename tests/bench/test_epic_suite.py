"""The `epic` bench suite runs end to end (tiny sizes) and compares like with like."""

import torch

from hepgen.bench import SUITES, epic
from hepgen.bench.epic_baseline import plain_epic_forward


def test_suite_is_registered():
    assert SUITES["epic"] == "hepgen.bench.epic"


def test_suite_runs_and_reports_ms_per_jet(monkeypatch):
    monkeypatch.setattr(epic, "MULTIPLICITIES", (3, 7))
    monkeypatch.setattr(epic, "setup", lambda device, quick: epic.Setup(batch=2, steps=2, runs=1))
    rows = epic.run("cpu", quick=True)
    assert [r.case for r in rows] == ["N=3 B=2 NFE=4", "N=7 B=2 NFE=4"]
    assert all(r.ours_ms > 0 and r.baseline_ms > 0 and r.direction == "generate, ms/jet" for r in rows)


def test_both_generators_solve_the_same_ode():
    net = epic.make_network("cpu").double()
    y0 = torch.randn(3, 5, 3, dtype=torch.float64)
    mask = torch.ones(3, 5, dtype=torch.bool)
    # 4 steps: every stage time is exact in binary in both loops. (Elsewhere the two grids differ
    # in the last bit, and cos(π t e^31) of the time embedding turns that into ~1e-4.)
    torch.testing.assert_close(
        epic._generator(epic.hepgen_generate, net, y0, mask, 4)(),
        epic._generator(epic.plain_midpoint, net, y0, mask, 4)(),
    )
    # and the baseline network is the published form of the same modules
    with torch.no_grad():
        torch.testing.assert_close(net(y0, 0.25, mask), plain_epic_forward(net, y0, 0.25, mask))
