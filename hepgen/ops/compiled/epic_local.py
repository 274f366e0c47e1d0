"""The compiled-core glue of epic_local: unpacks tensors for hepgen._C (cpu: BLAS over the
packed real particles and fused C++ passes; cuda: one kernel per set, weight-gradient GEMMs
in torch).

These functions are moved verbatim from hepgen/ops/epic_local.py (the cpu and cuda backends of the
op's declaration); keep their bodies in step with the C++ entry points they call.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops._compiled import stream_of


def _pack(x: torch.Tensor, mask: torch.Tensor):
    """Real rows of x, set after set, and the row offsets [B + 1] of each set."""
    B, N, H = x.shape
    real = mask != 0
    counts = real.sum(dim=1)
    offsets = torch.zeros(B + 1, dtype=torch.int64)
    torch.cumsum(counts, dim=0, out=offsets[1:])
    all_real = int(offsets[-1]) == B * N
    flat = x.reshape(B * N, H)
    packed = flat.contiguous() if all_real else flat[real.reshape(-1)]
    return packed, offsets, all_real


# Rows per chunk of the CPU forward: the chunk's two hidden tensors (2 × rows × H floats)
# stay in L2 between the GEMMs and the passes around them.
CPU_CHUNK_ROWS = 1024


def _set_chunks(offsets: torch.Tensor, rows: int) -> list[tuple[int, int]]:
    """Split sets 0..B into runs of whole sets of about `rows` packed rows each."""
    bounds = torch.searchsorted(offsets, torch.arange(rows, int(offsets[-1]), rows, dtype=torch.int64), right=True)
    cuts = [0] + sorted(set(int(c) - 1 for c in bounds.tolist() if 0 < int(c) - 1 < offsets.numel() - 1))
    B = offsets.numel() - 1
    return [(b0, b1) for b0, b1 in zip(cuts, cuts[1:] + [B]) if b1 > b0]


def _cpu_forward(x, mask, w1, bias1, w2, bias2, sum_scale, slope):
    B, N, H = x.shape
    H1 = w1.shape[0]
    y = torch.empty((B, N, H), dtype=x.dtype)
    pooled = torch.empty((B, 2 * H), dtype=x.dtype)
    if B == 0 or H == 0:
        return y, pooled.zero_()
    C = _core.compiled()
    xp, offsets, _ = _pack(x, mask)
    bias1, bias2 = bias1.contiguous(), bias2.contiguous()
    w1t, w2t = w1.t().contiguous().t(), w2.t().contiguous().t()  # BLAS-friendly layouts (tiny copies)
    M = xp.shape[0]
    chunk = min(M, CPU_CHUNK_ROWS * 2)
    h_buf = torch.empty((chunk, H1), dtype=x.dtype)
    z_buf = torch.empty((chunk, H), dtype=x.dtype)
    for b0, b1 in _set_chunks(offsets, CPU_CHUNK_ROWS) if M > chunk else [(0, B)]:
        r0, r1 = int(offsets[b0]), int(offsets[b1])
        if r1 - r0 > h_buf.shape[0]:  # one very large set
            h_buf = torch.empty((r1 - r0, H1), dtype=x.dtype)
            z_buf = torch.empty((r1 - r0, H), dtype=x.dtype)
        xc = xp[r0:r1]
        h = torch.mm(xc, w1t.t(), out=h_buf[: r1 - r0])
        off = offsets[b0 : b1 + 1]  # the chunk's sets; the core counts rows from off[0]
        C.epic_bias_act(h, bias1[b0:b1], off, slope)
        z2 = torch.mm(h, w2t.t(), out=z_buf[: r1 - r0])
        C.epic_residual_pool(z2, xc, bias2[b0:b1], mask[b0:b1], off, slope, sum_scale, y[b0:b1], pooled[b0:b1])
    return y, pooled


def _cpu_backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, slope):
    B, N, H = x.shape
    H1 = w1.shape[0]
    if B == 0 or H == 0:
        return (
            torch.zeros_like(x),
            torch.zeros_like(w1),
            torch.zeros((B, H1), dtype=x.dtype),
            torch.zeros_like(w2),
            torch.zeros((B, H), dtype=x.dtype),
        )
    C = _core.compiled()
    grad_y, grad_pooled, y = grad_y.contiguous(), grad_pooled.contiguous(), y.contiguous()
    xp, offsets, all_real = _pack(x, mask)
    M = xp.shape[0]
    dz2 = torch.empty((M, H), dtype=x.dtype)
    gb2 = torch.empty((B, H), dtype=x.dtype)
    C.epic_output_grad(grad_y, grad_pooled, y, mask, offsets, slope, sum_scale, dz2, gb2)
    h = torch.mm(xp, w1.t())  # recomputed: the forward saves nothing but its output
    C.epic_bias_act(h, bias1.contiguous(), offsets, slope)
    dw2 = torch.mm(dz2.t(), h)
    dz1 = torch.mm(dz2, w2)
    gb1 = torch.empty((B, H1), dtype=x.dtype)
    C.epic_act_grad(dz1, h, offsets, slope, gb1)
    dw1 = torch.mm(dz1.t(), xp)
    dxp = torch.addmm(dz2, dz1, w1)
    if all_real:
        dx = dxp.view(B, N, H)
    else:
        dx = torch.empty((B, N, H), dtype=x.dtype)
        C.epic_unpack(dxp, mask, offsets, dx)
    return dx, dw1, gb1, dw2, gb2


# ---- cuda: one kernel per set; weight-gradient GEMMs in torch (also used by the triton backend) --


def _weight_grads(x, mask, dz1, h, dz2):
    xm = torch.where(mask.unsqueeze(-1) != 0, x, torch.zeros((), dtype=x.dtype, device=x.device))
    dw1 = dz1.flatten(0, 1).t() @ xm.flatten(0, 1)
    dw2 = dz2.flatten(0, 1).t() @ h.flatten(0, 1)
    return dw1, dw2


def _cuda_forward(x, mask, w1, bias1, w2, bias2, sum_scale, slope):
    B, N, H = x.shape
    y = torch.empty((B, N, H), dtype=x.dtype, device=x.device)
    pooled = torch.empty((B, 2 * H), dtype=x.dtype, device=x.device)
    if B == 0 or H == 0:
        return y, pooled.zero_()
    w1t, w2t = w1.t().contiguous(), w2.t().contiguous()
    bias1, bias2 = bias1.contiguous(), bias2.contiguous()
    _core.compiled().cuda_epic_local_forward(x, mask, w1t, bias1, w2t, bias2, slope, sum_scale, y, pooled, stream_of(x))
    return y, pooled


def _cuda_backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, slope):
    B, N, H = x.shape
    H1 = w1.shape[0]
    new = lambda *shape: torch.empty(shape, dtype=x.dtype, device=x.device)  # noqa: E731
    dx, dz1, h, dz2, gb1, gb2 = new(B, N, H), new(B, N, H1), new(B, N, H1), new(B, N, H), new(B, H1), new(B, H)
    if B == 0 or (H == 0 and H1 == 0):
        return dx, torch.zeros_like(w1), gb1.zero_(), torch.zeros_like(w2), gb2.zero_()
    grad_y, grad_pooled, y = grad_y.contiguous(), grad_pooled.contiguous(), y.contiguous()
    w1, w2, bias1 = w1.contiguous(), w2.contiguous(), bias1.contiguous()
    w1t = w1.t().contiguous()
    _core.compiled().cuda_epic_local_backward(
        grad_y, grad_pooled, x, y, mask, w1, w1t, bias1, w2, slope, sum_scale, dx, dz1, h, dz2, gb1, gb2, stream_of(x)
    )
    dw1, dw2 = _weight_grads(x, mask, dz1, h, dz2)
    return dx, dw1, gb1, dw2, gb2
