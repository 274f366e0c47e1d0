"""pytest-benchmark suite for the rational-quadratic spline, on the cases of hepgen.bench.spline.

    pytest benchmarks/test_rq_spline.py --benchmark-group-by=param:case,param:direction

Each case is timed for hepgen's default backend, nflows and zuko (peers skipped when not
installed: pip install 'hepgen[bench]'), so they sit side by side in one run.
`hepgen bench spline` prints the same comparison with ratios and ns per element.
"""

import importlib.util

import pytest
import torch

from hepgen.bench import spline

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
IMPLS = {"hepgen": ("hepgen", spline._hepgen), "nflows": ("nflows", spline._nflows), "zuko": ("zuko", spline._zuko)}


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", spline.CASES, ids=lambda c: c.label.replace(" ", "_"))
@pytest.mark.parametrize("direction", ["forward", "inverse", "forward+backward"])
@pytest.mark.parametrize("impl", list(IMPLS))
def test_rq_spline(benchmark, device, case, direction, impl):
    module, make = IMPLS[impl]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install 'hepgen[bench]')")
    args = spline.make_inputs(case, device)
    fn = make(direction == "inverse")
    if direction == "forward+backward":
        fn = spline._with_backward(fn)
    benchmark.extra_info.update(
        elements=case.elements, bytes_per_element=spline.bytes_per_element(case.bins, direction)
    )
    benchmark(lambda: (fn(*args), _sync(device)))
