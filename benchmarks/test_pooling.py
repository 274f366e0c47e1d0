"""pytest-benchmark suite for set pooling, on the cases and baseline of hepgen.bench.pooling.

    pytest benchmarks/test_pooling.py --benchmark-group-by=param:case

Each case is timed for hepgen's default backend and for the plain-PyTorch baseline, so the
two sit side by side in one run. `hepgen bench pooling` prints the same comparison as a
table with ratios.
"""

import pytest
import torch

import hepgen.ops as ops
from hepgen.bench import pooling

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", pooling.CASES, ids=lambda c: c.label.replace(" ", "_"))
@pytest.mark.parametrize("impl", ["hepgen", "plain_pytorch"])
def test_pool_forward(benchmark, device, case, impl):
    x, mask = pooling.make_inputs(case, device)
    fn = (
        (lambda: ops.set_pool(x, mask, pooling.SUM_SCALE))
        if impl == "hepgen"
        else (lambda: pooling.plain_pytorch_pool(x, mask))
    )
    benchmark(lambda: (fn(), _sync(device)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", pooling.CASES, ids=lambda c: c.label.replace(" ", "_"))
@pytest.mark.parametrize("impl", ["hepgen", "plain_pytorch"])
def test_pool_forward_backward(benchmark, device, case, impl):
    x, mask = pooling.make_inputs(case, device)
    grad = torch.randn(case.batch, 2 * case.features, device=device)
    pool = (lambda a, m: ops.set_pool(a, m, pooling.SUM_SCALE)) if impl == "hepgen" else pooling.plain_pytorch_pool
    benchmark(lambda: (pooling.forward_backward(pool, x, mask, grad), _sync(device)))
