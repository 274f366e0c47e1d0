"""Fused ODE stage/update combination in Triton (see hepgen.ops.ode_combine).

One program per block of elements; up to 8 terms, passed as separate pointers (unused ones
point at y and have a compile-time count that skips them). The coefficients travel in a small
cached tensor, not as scalar arguments: Triton passes Python floats as float32, which would
cost float64 solvers their accuracy. Cached, so a warmed-up loop allocates nothing (and can be
captured in a CUDA graph).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

# The op layer's reference module owns the limit (the kernel below is written for 8 pointers).
from hepgen.ops.reference.ode_combine import TRITON_MAX_TERMS as MAX_TERMS


@triton.jit
def _term(acc, k_ptr, c_ptr, offs, ok, I: tl.constexpr, K: tl.constexpr, ACC: tl.constexpr):
    if I < K:
        acc += tl.load(c_ptr + I).to(ACC) * tl.load(k_ptr + offs, mask=ok, other=0).to(ACC)
    return acc


@triton.jit
def _combine_kernel(
    y_ptr,
    out_ptr,
    h_ptr,
    mask_ptr,
    k0,
    k1,
    k2,
    k3,
    k4,
    k5,
    k6,
    k7,
    c_ptr,
    RF,
    F,
    total,
    K: tl.constexpr,
    HAS_MASK: tl.constexpr,
    ACC: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    in_range = offs < total
    if HAS_MASK:
        m = tl.load(mask_ptr + offs // F, mask=in_range, other=0).to(ACC)
    else:
        m = tl.full((BLOCK,), 1.0, ACC)
    ok = in_range & (m != 0)  # padding is never read
    acc = tl.zeros((BLOCK,), dtype=ACC)
    acc = _term(acc, k0, c_ptr, offs, ok, 0, K, ACC)
    acc = _term(acc, k1, c_ptr, offs, ok, 1, K, ACC)
    acc = _term(acc, k2, c_ptr, offs, ok, 2, K, ACC)
    acc = _term(acc, k3, c_ptr, offs, ok, 3, K, ACC)
    acc = _term(acc, k4, c_ptr, offs, ok, 4, K, ACC)
    acc = _term(acc, k5, c_ptr, offs, ok, 5, K, ACC)
    acc = _term(acc, k6, c_ptr, offs, ok, 6, K, ACC)
    acc = _term(acc, k7, c_ptr, offs, ok, 7, K, ACC)
    h = tl.load(h_ptr + offs // RF, mask=in_range, other=0).to(ACC)
    y = tl.load(y_ptr + offs, mask=ok, other=0).to(ACC)
    y_coeff = tl.load(c_ptr + 8).to(ACC)  # after the MAX_TERMS coefficients
    out = tl.where(ok, m * (y_coeff * y + h * acc), 0.0)
    tl.store(out_ptr + offs, out.to(out_ptr.dtype.element_ty), mask=in_range)


_COEFFS: dict = {}


def _coeff_tensor(coeffs, y_coeff, like: torch.Tensor) -> torch.Tensor:
    key = (tuple(coeffs), y_coeff, like.device, like.dtype)
    t = _COEFFS.get(key)
    if t is None:
        if len(_COEFFS) > 256:
            _COEFFS.clear()
        values = list(coeffs) + [0.0] * (MAX_TERMS - len(coeffs)) + [y_coeff]
        t = _COEFFS[key] = torch.tensor(
            values, dtype=torch.float64 if like.dtype == torch.float64 else torch.float32, device=like.device
        )
    return t


def combine(y, ks, coeffs, h, mask, y_coeff, S, R, F):
    if len(ks) > MAX_TERMS:
        raise ValueError(
            f"the triton ode_combine takes at most {MAX_TERMS} terms, got {len(ks)}; use the cpu or cuda backend"
        )
    out = torch.empty_like(y)
    total = y.numel()
    if total == 0:
        return out
    ptrs = list(ks) + [y] * (MAX_TERMS - len(ks))
    BLOCK = 1024
    _combine_kernel[(triton.cdiv(total, BLOCK),)](
        y,
        out,
        h,
        mask if mask is not None else y,
        *ptrs,
        _coeff_tensor([float(c) for c in coeffs], float(y_coeff), y),
        R * F,
        F,
        total,
        K=len(ks),
        HAS_MASK=mask is not None,
        ACC=tl.float64 if y.dtype == torch.float64 else tl.float32,
        BLOCK=BLOCK,
    )
    return out
