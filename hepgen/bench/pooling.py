"""Set-pooling suite: hepgen.ops.set_pool against the same computation in plain PyTorch.

The baseline is the masked mean and scaled sum as EPiC code writes it,
``(x * mask).sum(1) / mask.sum(1)`` and ``(x * mask).sum(1) * 0.01``, with autograd for
the backward pass. Sizes are those of EPiC layers on JetNet (hidden 128, 30 or 150
particles, batch 1024) plus a small-batch case where launch overhead dominates.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

import hepgen.ops as ops
from hepgen.bench.progress import CaseCounter, CaseProgress
from hepgen.bench.report import Row
from hepgen.bench.timing import time_call

SUM_SCALE = 0.01


@dataclass(frozen=True)
class Case:
    batch: int
    particles: int
    features: int
    fill: float = 0.7  # fraction of real (unpadded) particles

    @property
    def label(self) -> str:
        return f"B={self.batch} N={self.particles} D={self.features}"


CASES = (Case(1024, 30, 128), Case(1024, 150, 128), Case(64, 150, 128), Case(4096, 30, 32))
QUICK_CASES = (Case(256, 30, 64), Case(64, 150, 32))


def plain_pytorch_pool(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    m = mask.unsqueeze(-1).to(x.dtype)
    total = (x * m).sum(dim=1)
    return torch.cat([total / m.sum(dim=1).clamp_min(1), total * SUM_SCALE], dim=-1)


def make_inputs(case: Case, device: str, dtype=torch.float32, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(case.batch, case.particles, case.features, generator=g, dtype=dtype)
    # JetNet-like: each jet has its own multiplicity; padded particles at the end.
    n = (torch.rand(case.batch, generator=g) * 2 * case.fill * case.particles).clamp(1, case.particles).long()
    mask = torch.arange(case.particles).unsqueeze(0) < n.unsqueeze(1)
    return x.to(device), mask.to(device)


def forward_backward(pool, x, mask, grad):
    x = x.detach().requires_grad_()
    out = pool(x, mask)
    out.backward(grad)


def run(
    device: str = "cpu", quick: bool = False, min_time_s: float = 0.5, progress: CaseProgress | None = None
) -> list[Row]:
    rows = []
    backend = ops.registered_ops()["set_pool"].choose(torch.device(device), torch.float32)
    ours = f"hepgen ({backend})"
    cases = QUICK_CASES if quick else CASES
    counter = CaseCounter(progress, 2 * len(cases))
    for case in cases:
        x, mask = make_inputs(case, device)
        grad = torch.randn(case.batch, 2 * case.features, device=device)
        pairs = {
            "forward": (lambda: ops.set_pool(x, mask, SUM_SCALE), lambda: plain_pytorch_pool(x, mask)),
            "forward+backward": (
                lambda: forward_backward(lambda a, m: ops.set_pool(a, m, SUM_SCALE), x, mask, grad),
                lambda: forward_backward(plain_pytorch_pool, x, mask, grad),
            ),
        }
        # The two must agree before their times mean anything.
        torch.testing.assert_close(ops.set_pool(x, mask, SUM_SCALE), plain_pytorch_pool(x, mask), rtol=1e-4, atol=1e-5)
        for direction, (fn_ours, fn_base) in pairs.items():
            counter.start(f"{case.label} {direction}")
            t_ours = time_call(fn_ours, device, min_time_s=min_time_s)
            t_base = time_call(fn_base, device, min_time_s=min_time_s)
            rows.append(
                Row(
                    "pooling",
                    case.label,
                    direction,
                    device,
                    ours,
                    t_ours.median_ms,
                    "plain PyTorch",
                    t_base.median_ms,
                    None if t_ours.peak_bytes is None else t_ours.peak_bytes / 2**20,
                    None if t_base.peak_bytes is None else t_base.peak_bytes / 2**20,
                )
            )
    return rows
