"""pytest-benchmark suite for EPiC-FM generation, on the cases and baseline of hepgen.bench.epic.

    pytest benchmarks/test_epic_generation.py --benchmark-group-by=param:multiplicity

Times one network evaluation and a short midpoint generation (10 evaluations) per
multiplicity, for hepgen and for the published plain-PyTorch EPiC with the same weights
(generation also with torchdiffeq's midpoint, the baseline of `hepgen bench jets`).
`hepgen bench epic` / `hepgen bench jets` run the full 200-evaluation generation and print
ms per jet with ratios.
"""

import pytest
import torch
from torch.nn.utils import parametrize

from hepgen.bench import epic
from hepgen.bench.epic_baseline import plain_epic_forward

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _inputs(device, n):
    batch = epic.setup(device, quick=True).batch
    y = torch.randn(batch, n, 3, generator=torch.Generator().manual_seed(n)).to(device)
    return y, torch.ones(batch, n, dtype=torch.bool, device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("multiplicity", epic.MULTIPLICITIES)
@pytest.mark.parametrize("impl", ["hepgen", "plain_pytorch"])
def test_network_evaluation(benchmark, device, multiplicity, impl):
    net = epic.make_network(device)
    y, mask = _inputs(device, multiplicity)
    fn = (lambda: net(y, 0.5, mask)) if impl == "hepgen" else (lambda: plain_epic_forward(net, y, 0.5, mask))
    with torch.no_grad(), parametrize.cached():
        benchmark(lambda: (fn(), _sync(device)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("multiplicity", epic.MULTIPLICITIES)
@pytest.mark.parametrize("impl", ["hepgen", "plain_pytorch", "torchdiffeq"])
def test_midpoint_generation_10_evaluations(benchmark, device, multiplicity, impl):
    net = epic.make_network(device)
    y, mask = _inputs(device, multiplicity)
    if impl == "torchdiffeq":  # the `jets` suite's baseline: the published sampler
        pytest.importorskip("torchdiffeq")
        from hepgen.bench.jets import torchdiffeq_midpoint as gen
    else:
        gen = epic.hepgen_generate if impl == "hepgen" else epic.plain_midpoint
    run = epic._generator(gen, net, y, mask, 5)
    benchmark.pedantic(lambda: (run(), _sync(device)), rounds=3, warmup_rounds=1)
