"""The calo benchmark suite's pieces (the timed run itself is `hepgen bench calo`)."""

import numpy as np
import pytest

from hepgen.bench.calo import build_model, decoder_flops, generate, measured_flops, nflows_twin
from hepgen.bench.report import Row, format_table


def test_flop_counts():
    model = build_model("cpu")
    # latent 35 -> 512 -> 512 -> 512 -> 368, two FLOPs per multiply-add
    assert decoder_flops(model.config) == 2 * (35 * 512 + 512 * 512 * 2 + 512 * 368)
    total = measured_flops(model, n=10)
    assert decoder_flops(model.config) < total < 2 * decoder_flops(model.config)


def test_nflows_twin_runs_the_same_pipeline():
    pytest.importorskip("nflows")
    model = build_model("cpu")
    twin = nflows_twin(model)
    # The suite's timed call (hepgen.bench.calo.generate): chunked, and the batch-1 latency pass.
    showers = generate(twin, np.full(6, 4096.0), 4)
    assert showers.shape == (6, 368) and np.isfinite(showers).all()
    one = generate(twin, np.full(1, 4096.0), 1)
    assert one.shape == (1, 368) and np.isfinite(one).all()
    assert twin.vae is not model.vae  # a copy: timing one never touches the other
    n_ours = sum(p.numel() for p in model.latent_flow.parameters())
    n_twin = sum(p.numel() for p in twin.latent_flow.parameters())
    assert n_ours == n_twin  # same architecture and sizes


def test_table_shows_gflops():
    row = Row(
        "calo",
        "batch=1000 showers=1000",
        "generate",
        "cpu",
        "hepgen CaloMan",
        100.0,
        "nflows flows",
        200.0,
        elements=1000,
        flops_per_element=2e6,
    )
    table = format_table([row])
    assert "GFLOP/s" in table and "| 20 " in table  # 2e9 FLOP in 0.1 s
