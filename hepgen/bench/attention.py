"""Attention suite: hepgen.ops.masked_attention against torch's scaled_dot_product_attention.

Both sides get the same q, k, v and the same mask; SDPA gets it as the equivalent boolean
attn_mask [B, 1, L, L] (causal and key padding combined), built once outside the timing.
Sizes: JetGPT (one token per phase-space component: L = 17 for Z + 3 jets, padded shorter
multiplicities, H = 4..8, Dh = 16..64, batch 1024..4096) and particle sequences (L = 150,
ragged multiplicities).

The decode rows time a whole 17-token sampling loop: hepgen's KV-cache step per token
against re-running causal attention over the prefix at every token (with SDPA, and with
hepgen's own full op), which is what sampling without a cache costs.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

import hepgen.ops as ops
from hepgen.bench.progress import CaseCounter, CaseProgress
from hepgen.bench.report import Row
from hepgen.bench.timing import time_call
from hepgen.nn import KVCache
from hepgen.ops.masked_attention import admissible_keys


@dataclass(frozen=True)
class Case:
    batch: int
    heads: int
    length: int
    head_dim: int
    kind: str  # "jetgpt": lengths 9/13/17-style padding; "particles": ragged multiplicities

    @property
    def label(self) -> str:
        return f"B={self.batch} H={self.heads} L={self.length} Dh={self.head_dim} ({self.kind})"


CASES = (
    Case(1024, 4, 17, 32, "jetgpt"),
    Case(4096, 8, 17, 16, "jetgpt"),
    Case(1024, 8, 33, 64, "jetgpt"),
    Case(1024, 4, 64, 32, "jetgpt"),
    Case(256, 4, 150, 32, "particles"),
)
QUICK_CASES = (Case(256, 4, 17, 32, "jetgpt"), Case(32, 4, 150, 32, "particles"))
DECODE_CASES = (Case(1024, 4, 17, 32, "jetgpt"), Case(4096, 8, 17, 16, "jetgpt"))
QUICK_DECODE_CASES = (Case(256, 4, 17, 32, "jetgpt"),)


def make_inputs(case: Case, device: str, dtype=torch.float32, seed: int = 0):
    """q, k, v [B, H, L, Dh] as views of a [B, L, H, Dh] projection, and the padding mask."""
    g = torch.Generator().manual_seed(seed)
    B, H, L, D = case.batch, case.heads, case.length, case.head_dim
    q, k, v = (torch.randn(B, L, H, D, generator=g, dtype=dtype).to(device).transpose(1, 2) for _ in range(3))
    if case.kind == "jetgpt":
        # One network for all jet multiplicities: shorter events are padded at the end.
        choices = torch.tensor([max(1, L - 8), max(1, L - 4), L])
        n = choices[torch.randint(0, 3, (B,), generator=g)]
    else:
        n = (torch.rand(B, generator=g) * L).long().clamp(1, L)
    mask = (torch.arange(L).unsqueeze(0) < n.unsqueeze(1)).to(device)
    return q, k, v, mask


def _peak_mib(t):
    return None if t.peak_bytes is None else t.peak_bytes / 2**20


def _forward_backward(attend, q, k, v, grad):
    q, k, v = (t.detach().requires_grad_() for t in (q, k, v))
    attend(q, k, v).backward(grad)


def _sampling_loop_cached(cache: KVCache, q, k, v):
    cache.reset()
    for i in range(q.shape[2]):
        cache.step(q[:, :, i : i + 1], k[:, :, i : i + 1], v[:, :, i : i + 1])


def _sampling_loop_recompute(attend, q, k, v):
    for i in range(1, q.shape[2] + 1):
        attend(q[:, :, :i], k[:, :, :i], v[:, :, :i])[:, :, -1:]


def run(
    device: str = "cpu", quick: bool = False, min_time_s: float = 0.5, progress: CaseProgress | None = None
) -> list[Row]:
    rows = []
    backend = ops.registered_ops()["masked_attention"].choose(torch.device(device), torch.float32)
    ours = f"hepgen ({backend})"
    cases = QUICK_CASES if quick else CASES
    decode_cases = QUICK_DECODE_CASES if quick else DECODE_CASES
    counter = CaseCounter(progress, 2 * len(cases) + len(decode_cases))
    for case in cases:
        q, k, v, mask = make_inputs(case, device)
        attn_mask = admissible_keys(mask, case.length, True, q.device)  # [B, 1, L, L]

        def hepgen_attend(a, b, c):
            return ops.masked_attention(a, b, c, mask, causal=True)

        def sdpa_attend(a, b, c):
            return F.scaled_dot_product_attention(a, b, c, attn_mask=attn_mask)

        # The two must agree before their times mean anything.
        torch.testing.assert_close(hepgen_attend(q, k, v), sdpa_attend(q, k, v), rtol=1e-4, atol=1e-5)
        grad = torch.randn(q.shape, device=device)
        pairs = {
            "forward": (lambda: hepgen_attend(q, k, v), lambda: sdpa_attend(q, k, v)),
            "forward+backward": (
                lambda: _forward_backward(hepgen_attend, q, k, v, grad),
                lambda: _forward_backward(sdpa_attend, q, k, v, grad),
            ),
        }
        for direction, (fn_ours, fn_base) in pairs.items():
            counter.start(f"{case.label} {direction}")
            t_ours = time_call(fn_ours, device, min_time_s=min_time_s)
            t_base = time_call(fn_base, device, min_time_s=min_time_s)
            rows.append(
                Row(
                    "attention",
                    case.label,
                    direction,
                    device,
                    ours,
                    t_ours.median_ms,
                    "torch SDPA",
                    t_base.median_ms,
                    _peak_mib(t_ours),
                    _peak_mib(t_base),
                )
            )

    for case in decode_cases:
        counter.start(f"{case.label} {case.length}-token decode")
        q, k, v, _ = make_inputs(case, device)
        cache = KVCache(case.batch, case.heads, case.length, case.head_dim, device=device)
        loop = f"{case.length}-token sampling loop"
        cache.reset()
        steps = [cache.step(q[:, :, i : i + 1], k[:, :, i : i + 1], v[:, :, i : i + 1]) for i in range(case.length)]
        full = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        torch.testing.assert_close(torch.cat(steps, dim=2), full, rtol=1e-4, atol=1e-5)
        t_ours = time_call(lambda: _sampling_loop_cached(cache, q, k, v), device, min_time_s=min_time_s)
        baselines = {
            "SDPA over the prefix, every token": lambda a, b, c: F.scaled_dot_product_attention(
                a, b, c, is_causal=True
            ),
            "hepgen over the prefix, every token": lambda a, b, c: ops.masked_attention(a, b, c, causal=True),
        }
        for name, attend in baselines.items():
            t_base = time_call(lambda: _sampling_loop_recompute(attend, q, k, v), device, min_time_s=min_time_s)
            rows.append(
                Row(
                    "attention",
                    case.label,
                    loop,
                    device,
                    f"{ours} KV-cache decode",
                    t_ours.median_ms,
                    name,
                    t_base.median_ms,
                    _peak_mib(t_ours),
                    _peak_mib(t_base),
                )
            )
    return rows
