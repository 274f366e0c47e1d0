"""Masked set pooling in Triton (see hepgen.ops.set_pool for the maths).

One program per (set, block of features). The set is walked in tiles of BLOCK_N rows; a
row whose mask is 0 is excluded from the load mask, so padding is never read from memory.
Half types accumulate in float32, float64 in float64.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from hepgen.triton._scalars import joined, split_scalar


@triton.jit
def _forward_kernel(
    x_ptr,
    mask_ptr,
    out_ptr,
    N,
    D,
    sxb,
    sxn,
    sxd,
    smb,
    smn,
    sum_scale_hi,
    sum_scale_lo,
    ACC: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    sum_scale = joined(sum_scale_hi, sum_scale_lo, ACC)
    b = tl.program_id(0).to(tl.int64)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    d_ok = d < D
    total = tl.zeros((BLOCK_D,), dtype=ACC)
    count = tl.zeros((BLOCK_N,), dtype=ACC)
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        m = tl.load(mask_ptr + b * smb + n * smn, mask=n < N, other=0).to(ACC)
        count += m
        rows = (m != 0)[:, None] & d_ok[None, :]
        xv = tl.load(x_ptr + b * sxb + n[:, None] * sxn + d[None, :] * sxd, mask=rows, other=0).to(ACC)
        total += tl.sum(xv * m[:, None], axis=0)
    c = tl.sum(count, axis=0)
    inv = tl.where(c != 0, 1.0 / tl.where(c != 0, c, 1.0), 0.0).to(ACC)
    row = out_ptr + b * 2 * D
    # A set whose weights sum to 0 has mean 0, not total * 0 (NaN for an infinite total).
    tl.store(row + d, tl.where(c != 0, total * inv, 0.0).to(out_ptr.dtype.element_ty), mask=d_ok)
    tl.store(row + D + d, (total * sum_scale).to(out_ptr.dtype.element_ty), mask=d_ok)


@triton.jit
def _backward_kernel(
    g_ptr,
    mask_ptr,
    gx_ptr,
    N,
    D,
    smb,
    smn,
    sum_scale_hi,
    sum_scale_lo,
    ACC: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    sum_scale = joined(sum_scale_hi, sum_scale_lo, ACC)
    b = tl.program_id(0).to(tl.int64)
    d = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
    d_ok = d < D
    count = tl.zeros((BLOCK_N,), dtype=ACC)
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        count += tl.load(mask_ptr + b * smb + n * smn, mask=n < N, other=0).to(ACC)
    c = tl.sum(count, axis=0)
    inv = tl.where(c != 0, 1.0 / tl.where(c != 0, c, 1.0), 0.0).to(ACC)
    g_mean = tl.load(g_ptr + b * 2 * D + d, mask=d_ok, other=0).to(ACC)
    g_sum = tl.load(g_ptr + b * 2 * D + D + d, mask=d_ok, other=0).to(ACC)
    coef = g_mean * inv + g_sum * sum_scale
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_ok = n < N
        m = tl.load(mask_ptr + b * smb + n * smn, mask=n_ok, other=0).to(ACC)
        # A padded particle's gradient is 0, not 0 * coef (a NaN in grad_out must not reach it).
        gx = tl.where((m != 0)[:, None], m[:, None] * coef[None, :], 0.0)
        tl.store(
            gx_ptr + (b * N + n[:, None]) * D + d[None, :],
            gx.to(gx_ptr.dtype.element_ty),
            mask=n_ok[:, None] & d_ok[None, :],
        )


def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _blocks(N: int, D: int) -> tuple[int, int]:
    block_d = min(triton.next_power_of_2(max(D, 1)), 128)
    block_n = min(triton.next_power_of_2(max(N, 1)), max(2048 // block_d, 1), 64)
    return block_n, block_d


def forward(x: torch.Tensor, mask: torch.Tensor, sum_scale: float) -> torch.Tensor:
    B, N, D = x.shape
    out = torch.empty((B, 2 * D), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    block_n, block_d = _blocks(N, D)
    grid = (B, triton.cdiv(D, block_d))
    _forward_kernel[grid](
        x,
        mask,
        out,
        N,
        D,
        *x.stride(),
        *mask.stride(),
        *split_scalar(sum_scale),
        ACC=_acc(x.dtype),
        BLOCK_N=block_n,
        BLOCK_D=block_d,
    )
    return out


def backward(grad_out: torch.Tensor, mask: torch.Tensor, sum_scale: float) -> torch.Tensor:
    grad_out = grad_out.contiguous()
    B, N = mask.shape
    D = grad_out.shape[1] // 2
    grad_x = torch.empty((B, N, D), dtype=grad_out.dtype, device=grad_out.device)
    if grad_x.numel() == 0:
        return grad_x
    block_n, block_d = _blocks(N, D)
    grid = (B, triton.cdiv(D, block_d))
    _backward_kernel[grid](
        grad_out,
        mask,
        grad_x,
        N,
        D,
        *mask.stride(),
        *split_scalar(sum_scale),
        ACC=_acc(grad_out.dtype),
        BLOCK_N=block_n,
        BLOCK_D=block_d,
    )
    return grad_x
