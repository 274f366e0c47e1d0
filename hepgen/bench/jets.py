"""The ``jets`` suite of issue #5: EPiC-FM generation time per jet against multiplicity
(10, 30, 50, 100, 150), hepgen against the published EPiC-FM as its authors run it.

Same network and weights on both sides (EPiC-FM size: 6 EPiC layers, hidden 128, latent 10,
32-dim time embedding, weight norm) and 200 network evaluations (midpoint, 100 steps from
t = 1 to 0):

- hepgen: ``hepgen.nn.EPiCNet`` (fused local update + pooling, per-set biases) integrated by
  ``hepgen.ode.integrate`` (fused, mask-aware midpoint steps), as ``hepgen generate jets`` does;
- baseline: the published network (``plain_epic_forward``: per-particle concatenation)
  integrated by ``torchdiffeq.odeint(..., method="midpoint")`` on the same 101-point grid,
  which is how the authors' code samples (torchdyn/torchdiffeq midpoint).

The ``epic`` suite is the same table with a hand-written plain-PyTorch midpoint loop as the
baseline (it isolates the network; this one is what a user of the published code runs).
Needs the ``bench`` extra (torchdiffeq).
"""

from __future__ import annotations

import torch

from hepgen.bench import epic
from hepgen.bench.epic_baseline import plain_epic_forward
from hepgen.bench.progress import CaseProgress
from hepgen.bench.report import Row

BASELINE = "published EPiC-FM, torchdiffeq midpoint"


def torchdiffeq_midpoint(net, y: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """The published sampler: torchdiffeq's fixed-grid midpoint from t = 1 to 0 on steps + 1 points."""
    try:
        from torchdiffeq import odeint
    except ImportError as err:
        raise RuntimeError("the jets suite needs torchdiffeq: pip install 'hepgen[bench]'") from err
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=y.dtype, device=y.device)
    return odeint(lambda t, x: plain_epic_forward(net, x, t, mask), y, grid, method="midpoint")[-1]


def run(
    device: str = "cpu", quick: bool = False, min_time_s: float = 0.5, progress: CaseProgress | None = None
) -> list[Row]:
    """Rows of ms per jet (see :func:`hepgen.bench.epic.run`)."""
    return epic.run(
        device,
        quick,
        min_time_s,
        baseline=torchdiffeq_midpoint,
        baseline_name=BASELINE,
        suite="jets",
        progress=progress,
    )
