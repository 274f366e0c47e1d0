"""Spline suite: hepgen.ops.rq_spline against nflows and zuko, measured in the same run.

Sizes are CaloMan's conditional flow: a batch of 100 000 showers, latent dimension 18 or
35 (the paper's intrinsic dimension and the code's default latent), 8 bins, tail bound 1.
Passes:

- forward: outputs and log|det J| (log_prob direction);
- inverse: outputs and log|det J| (sampling direction); zuko's row times ``t.inv(y)``,
  which skips the log-det (computing it in zuko costs a second, forward pass);
- forward+backward: gradients for the inputs and all three parameter tensors (training).

The peers are optional (``pip install 'hepgen[bench]'``): when one is missing its row says
so and has no time. Besides ms, each row carries the elements (B·D) so the table shows
ns per element, and hepgen's bytes moved per element, so a GPU run can be set against the
bandwidth bound. The peers use a different parametrisation (zuko) or the same (nflows), so
outputs are compared with nflows only.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass

import torch

import hepgen.ops as ops
from hepgen.bench.progress import CaseCounter, CaseProgress
from hepgen.bench.report import Row
from hepgen.bench.timing import time_call

TAIL_BOUND = 1.0


@dataclass(frozen=True)
class Case:
    batch: int
    dim: int
    bins: int = 8

    @property
    def label(self) -> str:
        return f"B={self.batch} D={self.dim} K={self.bins}"

    @property
    def elements(self) -> int:
        return self.batch * self.dim


CASES = (Case(100_000, 18), Case(100_000, 35))
QUICK_CASES = (Case(5_000, 18),)


def bytes_per_element(bins: int, direction: str, itemsize: int = 4) -> int:
    """Bytes hepgen's kernels read and write per element (no caching assumed).

    forward/inverse: read the input and 3K - 1 parameters, write output and log-det.
    forward+backward: the forward, then the backward reads input, parameters and two incoming
    gradients and writes the gradients of the input and of the 3K - 1 parameters.
    """
    params = 3 * bins - 1
    fwd = (1 + params + 2) * itemsize
    if direction == "forward+backward":
        return fwd + (1 + params + 2) * itemsize + (1 + params) * itemsize
    return fwd


def make_inputs(case: Case, device: str, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    shape = (case.batch, case.dim)
    # A standard-normal latent: ~68 % of the elements inside [-1, 1], the rest in the tails.
    x = torch.randn(shape, generator=g, dtype=dtype)
    uw = torch.randn(*shape, case.bins, generator=g, dtype=dtype)
    uh = torch.randn(*shape, case.bins, generator=g, dtype=dtype)
    ud = torch.randn(*shape, case.bins - 1, generator=g, dtype=dtype)
    return [t.to(device) for t in (x, uw, uh, ud)]


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _hepgen(inverse):
    return lambda x, w, h, d: ops.rq_spline(x, w, h, d, inverse=inverse, tail_bound=TAIL_BOUND)


def _nflows(inverse):
    from nflows.transforms.splines.rational_quadratic import unconstrained_rational_quadratic_spline

    return lambda x, w, h, d: unconstrained_rational_quadratic_spline(
        x, w, h, d, inverse=inverse, tails="linear", tail_bound=TAIL_BOUND
    )


def _zuko(inverse):
    from zuko.transforms import MonotonicRQSTransform

    if inverse:
        return lambda x, w, h, d: MonotonicRQSTransform(w, h, d, bound=TAIL_BOUND).inv(x)
    return lambda x, w, h, d: MonotonicRQSTransform(w, h, d, bound=TAIL_BOUND).call_and_ladj(x)


def _with_backward(fn):
    def run(x, w, h, d):
        leaves = [t.detach().requires_grad_() for t in (x, w, h, d)]
        y, ld = fn(*leaves)
        torch.autograd.grad(y.sum() + ld.sum(), leaves)

    return run


PEERS = {"nflows": ("nflows", _nflows), "zuko": ("zuko", _zuko)}


def run(
    device: str = "cpu", quick: bool = False, min_time_s: float = 0.5, progress: CaseProgress | None = None
) -> list[Row]:
    rows = []
    backend = ops.registered_ops()["rq_spline"].choose(torch.device(device), torch.float32)
    ours = f"hepgen ({backend})"
    cases = QUICK_CASES if quick else CASES
    counter = CaseCounter(progress, 3 * len(cases))
    for case in cases:
        args = make_inputs(case, device)
        # Same semantics as nflows: check before timing that the two agree. A few elements
        # where the spline is nearly flat are ill-conditioned in float32 (the inverse most),
        # so the check allows one in 10^5 to differ by more than 1e-3.
        if _installed("nflows"):
            for inverse in (False, True):
                for a, b in zip(_hepgen(inverse)(*args), _nflows(inverse)(*args)):
                    off = ((a - b).abs() > 1e-3 * (1 + b.abs())).float().mean().item()
                    if off > 1e-5:
                        raise AssertionError(f"hepgen and nflows disagree on {off:.2e} of the elements ({case.label})")
        for direction in ("forward", "inverse", "forward+backward"):
            inverse = direction == "inverse"
            counter.start(f"{case.label} {direction}")

            def wrap(make):
                fn = make(inverse)
                return _with_backward(fn) if direction == "forward+backward" else fn

            fn_ours = wrap(_hepgen)
            t_ours = time_call(lambda: fn_ours(*args), device, min_time_s=min_time_s)
            for peer, (module, make) in PEERS.items():
                label = peer if not (peer == "zuko" and inverse) else "zuko (no log-det)"
                if _installed(module):
                    fn_peer = wrap(make)
                    t_peer = time_call(lambda: fn_peer(*args), device, min_time_s=min_time_s, max_runs=50)
                    peer_ms, peer_mib = t_peer.median_ms, _mib(t_peer.peak_bytes)
                else:
                    label, peer_ms, peer_mib = f"{peer} (not installed)", float("nan"), None
                rows.append(
                    Row(
                        "spline",
                        case.label,
                        direction,
                        device,
                        ours,
                        t_ours.median_ms,
                        label,
                        peer_ms,
                        _mib(t_ours.peak_bytes),
                        peer_mib,
                        elements=case.elements,
                        bytes_per_element=bytes_per_element(case.bins, direction),
                    )
                )
    return rows


def _mib(peak_bytes):
    return None if peak_bytes is None else peak_bytes / 2**20
