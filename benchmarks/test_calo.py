"""pytest-benchmark suite for CaloMan generation, on the cases of hepgen.bench.calo.

    pytest benchmarks/test_calo.py --benchmark-group-by=param:batch,param:showers

hepgen's CaloMan and the same pipeline with nflows flows (skipped without nflows: pip install
'hepgen[bench]'). `hepgen bench calo` prints the same comparison as ratios, per shower.
"""

import importlib.util
import warnings

import numpy as np
import pytest
import torch

from hepgen.bench import calo

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
CASES = [(1, 1)] + [(b, n) for n in calo.SHOWERS for b in calo.BATCHES if b <= n]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("batch,showers", CASES)
@pytest.mark.parametrize("impl", ["hepgen", "nflows"])
def test_calo_generate(benchmark, device, batch, showers, impl):
    if impl == "nflows" and importlib.util.find_spec("nflows") is None:
        pytest.skip("nflows is not installed (pip install 'hepgen[bench]')")
    model = calo.build_model(device)
    if impl == "nflows":
        model = calo.nflows_twin(model)
    energies = 2.0 ** np.random.default_rng(0).integers(8, 23, size=showers)
    benchmark.extra_info.update(showers=showers, batch=batch)

    def generate():
        with warnings.catch_warnings():  # nflows' LU inverse calls a deprecated torch function
            warnings.simplefilter("ignore", UserWarning)
            calo.generate(model, energies, batch)  # copies to host: synchronises

    benchmark.pedantic(generate, rounds=3 if showers >= 10_000 else 10, warmup_rounds=1)
