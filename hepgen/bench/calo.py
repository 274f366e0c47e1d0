"""CaloMan suite: time per generated shower, hepgen's CaloMan against the same model with its
two flows built from nflows (same architecture and sizes: the paper's code used nflows).

Both run the same pipeline (:func:`generate`: ``CaloMan.sample(condition=energies,
batch_size=...)``, i.e. layer flow, latent flow, MLP decoder, rescaling, in chunks of the
batch size; for the batch-1 latency ``CaloMan.sample_showers``, the same pass without the
contract's per-call bookkeeping); only the flows differ. Random weights
(timing does not depend on them). Cases, as in the paper's table: batch sizes 1000, 10000,
50000 × showers 1000, 10000, 100000 (a batch larger than the number of showers is the same
run as batch = showers, so those are skipped), plus batch-1 latency.

Table columns: "ns/elem" is ns per shower (divide by 1e6 for ms per shower); GFLOP/s counts
the matrix multiplications of hepgen's pass (torch's FLOP counter; the spline kernels'
arithmetic is not included) — the decoder's share is given by :func:`decoder_flops`.
"""

from __future__ import annotations

import copy
import importlib.util
import math
import warnings

import numpy as np
import torch

from hepgen.bench.progress import CaseCounter, CaseProgress
from hepgen.bench.report import Row
from hepgen.bench.timing import time_call

BATCHES = (1000, 10_000, 50_000)
SHOWERS = (1000, 10_000, 100_000)
QUICK = ((1000, 1000), (1000, 10_000))
ENERGY_RANGE_MEV = (256.0, 4_194_304.0)  # dataset 1


def build_model(device: str, seed: int = 0):
    """A default-size CaloMan (latent 35, hidden 512×3) with random weights, ready to sample."""
    from hepgen.models.caloman import CaloMan, CaloManConfig

    torch.manual_seed(seed)
    model = CaloMan(CaloManConfig(), seed=seed)
    p = model.preprocessing
    with torch.no_grad():
        p.log_e_range.copy_(torch.tensor(ENERGY_RANGE_MEV, dtype=torch.float64).log10())
        p.fitted.fill_(True)
    return model.to(device).eval()


def nflows_twin(model):
    """The same model with both flows replaced by nflows' simple_nsf-style flows of equal sizes."""
    from nflows.distributions import StandardNormal
    from nflows.flows import Flow
    from nflows.nn.nets import ResidualNet
    from nflows.transforms import (
        CompositeTransform,
        LULinear,
        PiecewiseRationalQuadraticCouplingTransform,
        RandomPermutation,
    )
    from nflows.utils import torchutils

    def nsf(features, context, layers, hidden, blocks, bins, tail_bound):
        ts = []
        for i in range(layers):
            mask = torchutils.create_alternating_binary_mask(features, even=i % 2 == 0)
            ts += [
                PiecewiseRationalQuadraticCouplingTransform(
                    mask,
                    lambda n_in, n_out: ResidualNet(n_in, n_out, hidden, context_features=context, num_blocks=blocks),
                    num_bins=bins,
                    tails="linear",
                    tail_bound=tail_bound,
                ),
                RandomPermutation(features),
                LULinear(features, identity_init=True),
            ]
        return Flow(CompositeTransform(ts), StandardNormal([features]))

    c = model.config
    twin = copy.deepcopy(model)
    # The latent flow's context: the scaled log E_inc and the 5 standardised layer values.
    twin.latent_flow = nsf(
        c.latent, 1 + len(c.layer_sizes), c.flow_layers, c.flow_hidden, c.flow_blocks, c.flow_bins, c.flow_tail_bound
    )
    twin.layer_flow = nsf(
        len(c.layer_sizes),
        1,
        c.layer_flow_layers,
        c.layer_flow_hidden,
        c.layer_flow_blocks,
        c.flow_bins,
        c.layer_flow_tail_bound,
    )
    return twin.to(model.latent_mean.device).eval()


def decoder_flops(config) -> int:
    """Multiply-adds × 2 of the decoder MLP per shower (biases and activations not counted)."""
    sizes = [config.latent, *reversed(config.hidden), config.n_voxels]
    return 2 * sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def measured_flops(model, n: int = 1000) -> float:
    """Matmul FLOPs per shower of one sampling pass, from torch's FLOP counter."""
    from torch.utils.flop_counter import FlopCounterMode

    energies = np.full(n, 4096.0)
    with FlopCounterMode(display=False) as counter:
        model.sample(condition=energies, batch_size=n)
    return counter.get_total_flops() / n


def generate(model, energies: np.ndarray, batch: int) -> np.ndarray:
    """The showers for ``energies`` in chunks of ``batch``, on the host (so the call waits for
    the device): the timed call of this suite and of benchmarks/calo_*.py."""
    if len(energies) == 1:  # latency: one shower, the low-overhead pass
        return model.sample_showers(energies).cpu().numpy()
    return model.sample(condition=energies, batch_size=batch).showers


def run(
    device: str = "cpu", quick: bool = False, min_time_s: float = 0.5, progress: CaseProgress | None = None
) -> list[Row]:
    model = build_model(device)
    have_nflows = importlib.util.find_spec("nflows") is not None
    peer = nflows_twin(model) if have_nflows else None
    peer_label = "nflows flows" if have_nflows else "nflows (not installed)"
    flops = measured_flops(model)
    print(
        f"CaloMan (latent 35, hidden 512x3) matmul FLOPs per shower: {flops / 1e6:.3g} M, of which the "
        f"decoder {decoder_flops(model.config) / 1e6:.3g} M",
        flush=True,
    )
    rng = np.random.default_rng(0)
    cases = QUICK if quick else [(b, n) for n in SHOWERS for b in BATCHES if b <= n]
    rows = []
    counter = CaseCounter(progress, 1 + len(cases))
    for batch, n in [(1, 1), *cases]:
        counter.start("latency (batch 1)" if n == 1 else f"batch={batch} showers={n}")
        energies = 2.0 ** rng.integers(8, 23, size=n)  # dataset 1's 15 energies

        def ours():
            return generate(model, energies, batch)

        # Large cases take seconds per call: fewer repetitions, the per-shower time is steady.
        reps = dict(warmup=1, min_runs=3) if n >= 10_000 else {}
        t = time_call(ours, device, min_time_s=min_time_s, **reps)
        if peer is not None:
            with warnings.catch_warnings():  # nflows' LU inverse calls a deprecated torch function
                warnings.simplefilter("ignore", UserWarning)
                t_peer = time_call(
                    lambda: generate(peer, energies, batch), device, min_time_s=min_time_s, max_runs=200, **reps
                )
            peer_ms, peer_mib = t_peer.median_ms, _mib(t_peer.peak_bytes)
        else:
            peer_ms, peer_mib = math.nan, None
        case = "latency (batch 1)" if n == 1 else f"batch={batch} showers={n}"
        rows.append(
            Row(
                "calo",
                case,
                "generate",
                device,
                "hepgen CaloMan",
                t.median_ms,
                peer_label,
                peer_ms,
                _mib(t.peak_bytes),
                peer_mib,
                elements=n,
                flops_per_element=flops,
            )
        )
    return rows


def _mib(peak_bytes):
    return None if peak_bytes is None else peak_bytes / 2**20
