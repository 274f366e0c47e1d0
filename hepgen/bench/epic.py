"""EPiC-FM generation suite: time per jet against multiplicity, hepgen vs the published EPiC.

Both sides generate the same jets with the same EPiC-FM-sized network (6 EPiC layers,
hidden 128, latent 10, 32-dim time embedding, weight norm; one set of weights) and the same
midpoint solver from t = 1 to 0 (100 steps = 200 network evaluations; --quick: 5 steps):

- hepgen: ``hepgen.nn.EPiCNet`` (fused local update + pooling, per-set biases) integrated by
  ``hepgen.ode.integrate`` (fused, mask-aware midpoint arithmetic);
- baseline: the same modules run as published (``plain_epic_forward``: per-particle
  concatenation) in a plain-PyTorch midpoint loop, y ← y + h·f(t + h/2, y + h/2·f(t, y)).

Every jet of a case has exactly the case's multiplicity (no padding), as in the paper's
timing figure. Both sides run under ``torch.no_grad()`` and with weight norm evaluated once
per generation (``torch.nn.utils.parametrize.cached()``), so the ratio measures the layer and
solver implementations, not a caching trick. Peak memory is that of a 2-step generation (it
does not grow with the number of steps: each step frees the previous one's intermediates).
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass

import torch
from torch.nn.utils import parametrize

from hepgen.bench.epic_baseline import plain_epic_forward
from hepgen.bench.progress import CaseCounter, CaseProgress
from hepgen.bench.report import Row
from hepgen.bench.timing import _sync, peak_memory
from hepgen.nn import EPiCNet
from hepgen.ode import integrate
from hepgen.ode.graph import FixedGridSampler
from hepgen.ops import registered_ops

MULTIPLICITIES = (10, 30, 50, 100, 150)
STEPS, QUICK_STEPS = 100, 5  # midpoint: 2 network evaluations per step


@dataclass(frozen=True)
class Setup:
    batch: int
    steps: int
    runs: int


def setup(device: str, quick: bool) -> Setup:
    if device.startswith("cuda"):
        return Setup(batch=1024, steps=QUICK_STEPS if quick else STEPS, runs=3)
    # One whole generation per measurement: at 200 evaluations a run takes seconds to minutes.
    return Setup(batch=16 if quick else 128, steps=QUICK_STEPS if quick else STEPS, runs=1 if quick else 3)


def make_network(device: str, seed: int = 0, weight_norm: bool = True) -> EPiCNet:
    torch.manual_seed(seed)
    return EPiCNet(features=3, hidden=128, latent=10, layers=6, time_dim=32, weight_norm=weight_norm).to(device).eval()


def plain_midpoint(net: EPiCNet, y: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    """The baseline sampler: midpoint steps from t = 1 to 0, the published network, plain PyTorch."""
    h = -1.0 / steps
    for i in range(steps):
        t = 1.0 + i * h
        k1 = plain_epic_forward(net, y, t, mask)
        y = y + h * plain_epic_forward(net, y + 0.5 * h * k1, t + 0.5 * h, mask)
    return y


def hepgen_generate(net: EPiCNet, y: torch.Tensor, mask: torch.Tensor, steps: int) -> torch.Tensor:
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=y.dtype, device=y.device)
    return integrate(lambda t, x: net(x, t, mask), y, grid, "midpoint", mask)


def _without_weight_norm(net: EPiCNet, device: str) -> EPiCNet:
    """The same network with weight norm folded into plain weights (the same function).

    A CUDA graph replays the addresses it captured, so weights that weight norm recomputes per
    call (or caches only inside a ``parametrize.cached()`` block) must become plain tensors."""
    frozen = make_network(device, weight_norm=False)
    plain = dict(frozen.named_modules())
    with torch.no_grad():
        for name, module in net.named_modules():
            if isinstance(module, torch.nn.Linear):
                plain[name].weight.copy_(module.weight)
                plain[name].bias.copy_(module.bias)
    return frozen


def graph_generator(net: EPiCNet, y0: torch.Tensor, mask: torch.Tensor, steps: int):
    """hepgen's sampling loop captured once as a CUDA graph (captured on the first call)."""
    frozen = _without_weight_norm(net, str(y0.device))
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=y0.dtype, device=y0.device)
    sampler = FixedGridSampler(lambda t, x: frozen(x, t, mask), grid, "midpoint", mask, cuda_graph=True)

    def run():
        with torch.no_grad():
            return sampler(y0)

    return run


def _generator(fn, net, y0, mask, steps):
    def run():
        with torch.no_grad(), parametrize.cached():
            return fn(net, y0, mask, steps)

    return run


def _seconds(fn, device: str) -> float:
    _sync(torch.device(device))
    t0 = time.perf_counter()
    fn()
    _sync(torch.device(device))
    return time.perf_counter() - t0


def _interleaved_medians(fn_a, fn_b, device: str, runs: int) -> tuple[float, float]:
    """Median seconds of fn_a and fn_b, run alternately so a change in machine load (a shared
    CPU) hits both alike."""
    a, b = [], []
    for _ in range(runs):
        a.append(_seconds(fn_a, device))
        b.append(_seconds(fn_b, device))
    return statistics.median(a), statistics.median(b)


def run(
    device: str = "cpu",
    quick: bool = False,
    min_time_s: float = 0.5,
    baseline=None,
    baseline_name: str = "published EPiC, plain PyTorch",
    suite: str = "epic",
    progress: CaseProgress | None = None,
) -> list[Row]:
    """Rows of ms per jet; min_time_s is not used (each case runs whole generations).

    ``baseline(net, y0, mask, steps)`` generates the baseline's jets (default: the plain
    midpoint loop); the ``jets`` suite passes torchdiffeq's midpoint."""
    baseline = baseline or plain_midpoint
    cfg = setup(device, quick)
    net = make_network(device)
    table = registered_ops()
    ours_name = (
        "hepgen ("
        + ", ".join(
            sorted({table[op].choose(torch.device(device), torch.float32) for op in ("epic_local", "ode_combine")})
        )
        + ")"
    )
    rows = []
    counter = CaseCounter(progress, len(MULTIPLICITIES))
    for n in MULTIPLICITIES:
        counter.start(f"N={n} B={cfg.batch} NFE={2 * cfg.steps}")
        g = torch.Generator().manual_seed(n)
        y0 = torch.randn(cfg.batch, n, 3, generator=g).to(device)
        mask = torch.ones(cfg.batch, n, dtype=torch.bool, device=device)
        ours = _generator(hepgen_generate, net, y0, mask, cfg.steps)
        base = _generator(baseline, net, y0, mask, cfg.steps)
        # Same answer first (float32, 2 steps), then time.
        torch.testing.assert_close(
            _generator(hepgen_generate, net, y0, mask, 2)(),
            _generator(baseline, net, y0, mask, 2)(),
            rtol=1e-3,
            atol=1e-3,
        )
        t_ours, t_base = _interleaved_medians(ours, base, device, cfg.runs)
        mem_ours = peak_memory(_generator(hepgen_generate, net, y0, mask, 2), device)
        mem_base = peak_memory(_generator(baseline, net, y0, mask, 2), device)
        rows.append(
            Row(
                suite,
                f"N={n} B={cfg.batch} NFE={2 * cfg.steps}",
                "generate, ms/jet",
                device,
                ours_name,
                t_ours * 1e3 / cfg.batch,
                baseline_name,
                t_base * 1e3 / cfg.batch,
                None if mem_ours is None else mem_ours / 2**20,
                None if mem_base is None else mem_base / 2**20,
            )
        )
        if device.startswith("cuda"):
            # The whole loop as one CUDA-graph replay: checked against the eager loop first.
            torch.testing.assert_close(
                graph_generator(net, y0, mask, 2)(),
                _generator(hepgen_generate, net, y0, mask, 2)(),
                rtol=1e-4,
                atol=1e-4,
            )
            graphed = graph_generator(net, y0, mask, cfg.steps)
            graphed()  # capture outside the timing
            t_graph, t_base = _interleaved_medians(graphed, base, device, cfg.runs)
            rows.append(
                Row(
                    suite,
                    f"N={n} B={cfg.batch} NFE={2 * cfg.steps}",
                    "generate, ms/jet",
                    device,
                    ours_name[:-1] + ", CUDA graph)",
                    t_graph * 1e3 / cfg.batch,
                    baseline_name,
                    t_base * 1e3 / cfg.batch,
                    None,
                    None,
                )
            )
    return rows
