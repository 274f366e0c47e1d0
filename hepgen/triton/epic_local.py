"""The fused EPiC local update in Triton (see hepgen.ops.epic_local for the maths).

One program per set walks the set in tiles of BLOCK_N particles; both weight matrices stay
in registers for the whole set, each tile goes through both layers, the residual, the mask
and the pooling without leaving the program. Padded rows are excluded from every load, so
padding is never read. float32 products use IEEE precision (no TF32): the tests hold every
backend to the float64 reference.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl
from triton.runtime.errors import OutOfResources

from hepgen.triton._scalars import joined, split_scalar


@triton.jit
def _act(v, slope):
    return tl.where(v > 0, v, v * slope)


@triton.jit
def _forward_kernel(
    x_ptr,
    mask_ptr,
    w1_ptr,
    b1_ptr,
    w2_ptr,
    b2_ptr,
    y_ptr,
    pooled_ptr,
    N,
    H,
    H1,
    sxb,
    sxn,
    sxd,
    smb,
    smn,
    sw1o,
    sw1i,
    sw2o,
    sw2i,
    slope_hi,
    slope_lo,
    sum_scale_hi,
    sum_scale_lo,
    ACC: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_H1: tl.constexpr,
):
    slope = joined(slope_hi, slope_lo, ACC)
    sum_scale = joined(sum_scale_hi, sum_scale_lo, ACC)
    b = tl.program_id(0).to(tl.int64)
    f = tl.arange(0, BLOCK_H)
    j = tl.arange(0, BLOCK_H1)
    f_ok = f < H
    j_ok = j < H1
    # w1ᵀ [H, H1] and w2ᵀ [H1, H], loaded once per set.
    w1t = tl.load(w1_ptr + j[None, :] * sw1o + f[:, None] * sw1i, mask=f_ok[:, None] & j_ok[None, :], other=0).to(ACC)
    w2t = tl.load(w2_ptr + f[None, :] * sw2o + j[:, None] * sw2i, mask=j_ok[:, None] & f_ok[None, :], other=0).to(ACC)
    b1 = tl.load(b1_ptr + b * H1 + j, mask=j_ok, other=0).to(ACC)
    b2 = tl.load(b2_ptr + b * H + f, mask=f_ok, other=0).to(ACC)
    total = tl.zeros((BLOCK_H,), dtype=ACC)
    count = tl.zeros((BLOCK_N,), dtype=ACC)
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_ok = n < N
        m = tl.load(mask_ptr + b * smb + n * smn, mask=n_ok, other=0).to(ACC)
        real = m != 0
        rows = real[:, None] & f_ok[None, :]
        x = tl.load(x_ptr + b * sxb + n[:, None] * sxn + f[None, :] * sxd, mask=rows, other=0).to(ACC)
        # The padding columns of the block (j >= H1) are 0 · x: NaN where x is infinite, and the
        # next product would spread that NaN to every feature; select them to 0.
        h = tl.where(j_ok[None, :], _act(tl.dot(x, w1t, input_precision=PRECISION) + b1[None, :], slope), 0.0)
        z2 = tl.dot(h, w2t, input_precision=PRECISION) + b2[None, :] + x
        y = tl.where(rows, m[:, None] * _act(z2, slope), 0.0)
        total += tl.sum(m[:, None] * y, axis=0)
        count += m
        tl.store(
            y_ptr + (b * N + n[:, None]) * H + f[None, :],
            y.to(y_ptr.dtype.element_ty),
            mask=n_ok[:, None] & f_ok[None, :],
        )
    c = tl.sum(count, axis=0)
    inv = tl.where(c != 0, 1.0 / tl.where(c != 0, c, 1.0), 0.0).to(ACC)
    mean = tl.where(c != 0, total * inv, 0.0)  # not total * 0: NaN for an infinite total
    tl.store(pooled_ptr + b * 2 * H + f, mean.to(pooled_ptr.dtype.element_ty), mask=f_ok)
    tl.store(pooled_ptr + b * 2 * H + H + f, (total * sum_scale).to(pooled_ptr.dtype.element_ty), mask=f_ok)


@triton.jit
def _backward_kernel(
    gy_ptr,
    gp_ptr,
    x_ptr,
    y_ptr,
    mask_ptr,
    w1_ptr,
    b1_ptr,
    w2_ptr,
    dx_ptr,
    dz1_ptr,
    h_ptr,
    dz2_ptr,
    gb1_ptr,
    gb2_ptr,
    N,
    H,
    H1,
    sxb,
    sxn,
    sxd,
    smb,
    smn,
    sw1o,
    sw1i,
    sw2o,
    sw2i,
    slope_hi,
    slope_lo,
    sum_scale_hi,
    sum_scale_lo,
    ACC: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_H: tl.constexpr,
    BLOCK_H1: tl.constexpr,
):
    slope = joined(slope_hi, slope_lo, ACC)
    sum_scale = joined(sum_scale_hi, sum_scale_lo, ACC)
    b = tl.program_id(0).to(tl.int64)
    f = tl.arange(0, BLOCK_H)
    j = tl.arange(0, BLOCK_H1)
    f_ok = f < H
    j_ok = j < H1
    w1t = tl.load(w1_ptr + j[None, :] * sw1o + f[:, None] * sw1i, mask=f_ok[:, None] & j_ok[None, :], other=0).to(ACC)
    w1 = tl.load(w1_ptr + j[:, None] * sw1o + f[None, :] * sw1i, mask=j_ok[:, None] & f_ok[None, :], other=0).to(ACC)
    w2 = tl.load(w2_ptr + f[:, None] * sw2o + j[None, :] * sw2i, mask=f_ok[:, None] & j_ok[None, :], other=0).to(ACC)
    b1 = tl.load(b1_ptr + b * H1 + j, mask=j_ok, other=0).to(ACC)
    cnt = tl.zeros((BLOCK_N,), dtype=ACC)
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        cnt += tl.load(mask_ptr + b * smb + n * smn, mask=n < N, other=0).to(ACC)
    c = tl.sum(cnt, axis=0)
    inv = tl.where(c != 0, 1.0 / tl.where(c != 0, c, 1.0), 0.0).to(ACC)
    # pooled reads y with weight m: its gradient reaches y as m · coef
    coef = (
        tl.load(gp_ptr + b * 2 * H + f, mask=f_ok, other=0).to(ACC) * inv
        + tl.load(gp_ptr + b * 2 * H + H + f, mask=f_ok, other=0).to(ACC) * sum_scale
    )
    gb1 = tl.zeros((BLOCK_H1,), dtype=ACC)
    gb2 = tl.zeros((BLOCK_H,), dtype=ACC)
    for n0 in range(0, N, BLOCK_N):
        n = n0 + tl.arange(0, BLOCK_N)
        n_ok = n < N
        m = tl.load(mask_ptr + b * smb + n * smn, mask=n_ok, other=0).to(ACC)
        real = m != 0
        rows_f = real[:, None] & f_ok[None, :]
        rows_j = real[:, None] & j_ok[None, :]
        out_f = n_ok[:, None] & f_ok[None, :]
        out_j = n_ok[:, None] & j_ok[None, :]
        x = tl.load(x_ptr + b * sxb + n[:, None] * sxn + f[None, :] * sxd, mask=rows_f, other=0).to(ACC)
        h = tl.where(rows_j, _act(tl.dot(x, w1t, input_precision=PRECISION) + b1[None, :], slope), 0.0)
        dense_f = (b * N + n[:, None]) * H + f[None, :]
        gy = tl.load(gy_ptr + dense_f, mask=rows_f, other=0).to(ACC)
        y = tl.load(y_ptr + dense_f, mask=rows_f, other=0).to(ACC)
        # z2 > 0 where y = m · act(z2) has m's sign (a negative weight flips it).
        sign = tl.where(m > 0, 1.0, -1.0).to(ACC)
        act_grad = tl.where(y * sign[:, None] > 0, 1.0, slope)
        dz2 = tl.where(rows_f, (gy + m[:, None] * coef[None, :]) * m[:, None] * act_grad, 0.0)
        dz1 = tl.dot(dz2, w2, input_precision=PRECISION) * tl.where(h > 0, 1.0, slope)
        dz1 = tl.where(rows_j, dz1, 0.0)
        dx = tl.where(rows_f, tl.dot(dz1, w1, input_precision=PRECISION) + dz2, 0.0)
        gb1 += tl.sum(dz1, axis=0)
        gb2 += tl.sum(dz2, axis=0)
        dense_j = (b * N + n[:, None]) * H1 + j[None, :]
        tl.store(dx_ptr + dense_f, dx.to(dx_ptr.dtype.element_ty), mask=out_f)
        tl.store(dz2_ptr + dense_f, dz2.to(dz2_ptr.dtype.element_ty), mask=out_f)
        tl.store(dz1_ptr + dense_j, dz1.to(dz1_ptr.dtype.element_ty), mask=out_j)
        tl.store(h_ptr + dense_j, h.to(h_ptr.dtype.element_ty), mask=out_j)
    tl.store(gb1_ptr + b * H1 + j, gb1.to(gb1_ptr.dtype.element_ty), mask=j_ok)
    tl.store(gb2_ptr + b * H + f, gb2.to(gb2_ptr.dtype.element_ty), mask=f_ok)


def _meta(dtype: torch.dtype, N: int, H: int, H1: int) -> dict:
    # tl.dot needs every block dimension to be at least 16.
    return dict(
        ACC=tl.float64 if dtype == torch.float64 else tl.float32,
        PRECISION="ieee",
        BLOCK_N=max(16, min(triton.next_power_of_2(max(N, 1)), 32)),
        BLOCK_H=max(16, triton.next_power_of_2(max(H, 1))),
        BLOCK_H1=max(16, triton.next_power_of_2(max(H1, 1))),
    )


def forward(x, mask, w1, bias1, w2, bias2, sum_scale, slope):
    B, N, H = x.shape
    H1 = w1.shape[0]
    y = torch.empty((B, N, H), dtype=x.dtype, device=x.device)
    pooled = torch.empty((B, 2 * H), dtype=x.dtype, device=x.device)
    if B == 0 or H == 0:
        return y, pooled.zero_()
    _forward_kernel[(B,)](
        x,
        mask,
        w1,
        bias1,
        w2,
        bias2,
        y,
        pooled,
        N,
        H,
        H1,
        *x.stride(),
        *mask.stride(),
        *w1.stride(),
        *w2.stride(),
        *split_scalar(slope),
        *split_scalar(sum_scale),
        **_meta(x.dtype, N, H, H1),
    )
    return y, pooled


def backward(grad_y, grad_pooled, x, y, mask, w1, bias1, w2, sum_scale, slope):
    """(dx, dz1, h, dz2, grad_bias1, grad_bias2); the weight gradients are GEMMs left to the caller."""
    B, N, H = x.shape
    H1 = w1.shape[0]
    new = lambda *shape: torch.empty(shape, dtype=x.dtype, device=x.device)  # noqa: E731
    dx, dz1, h, dz2, gb1, gb2 = new(B, N, H), new(B, N, H1), new(B, N, H1), new(B, N, H), new(B, H1), new(B, H)
    if B == 0 or (H == 0 and H1 == 0):
        return dx, dz1, h, dz2, gb1.zero_(), gb2.zero_()
    try:
        _backward_kernel[(B,)](
            grad_y,
            grad_pooled,
            x,
            y,
            mask,
            w1,
            bias1,
            w2,
            dx,
            dz1,
            h,
            dz2,
            gb1,
            gb2,
            N,
            H,
            H1,
            *x.stride(),
            *mask.stride(),
            *w1.stride(),
            *w2.stride(),
            *split_scalar(slope),
            *split_scalar(sum_scale),
            **_meta(x.dtype, N, H, H1),
        )
    except OutOfResources as err:
        # Seen on an H100 at H = H1 = 128 in float32: the kernel keeps both weight matrices in
        # shared memory for its four products (311 kB needed, 227 kB there).
        raise RuntimeError(
            f"epic_local: the triton backward kernel does not fit this GPU's shared memory at "
            f"hidden sizes H={H}, H1={H1} in {x.dtype} ({err}); use the cuda backend, the "
            f"default on GPUs"
        ) from err
    return dx, dz1, h, dz2, gb1, gb2
