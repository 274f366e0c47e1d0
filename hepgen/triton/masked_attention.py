"""Masked attention in Triton (see hepgen.ops.masked_attention for the maths).

Flash-attention structure, sized for short sequences:

- forward: one program per (sequence·head, block of queries); loops over key blocks with an
  online softmax; causal programs stop at their last query. Writes out and lse.
- backward: two kernels with disjoint outputs (no atomics): dk/dv (one program per key
  block, looping over the queries that see it) and dq (one program per query block, looping
  over keys). Both recompute p = exp(s − lse) and delta = rowsum(dO · out).
- decode: one program per (sequence, head); writes the new key/value into the caches and
  attends over positions < lengths[b] read from the cache plus the new token from registers
  (never read back from the cache, so there is no write-then-read ordering to worry about).

Padded keys are excluded from the load masks, so they are never read. A row with no
admissible key keeps m = −inf; the kernels guard exp(−inf − (−inf)) by using 0 as the shift
there, and store out = 0, lse = +inf. Half types go through tensor-core dots with float32
accumulation; float32 dots use IEEE precision (not TF32) so results match the float64
reference to float32 accuracy.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from hepgen.triton._scalars import joined, split_scalar


@triton.jit
def _forward_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    mask_ptr,
    out_ptr,
    lse_ptr,
    sqb,
    sqh,
    sql,
    sqd,
    skb,
    skh,
    skl,
    skd,
    svb,
    svh,
    svl,
    svd,
    smb,
    sml,
    H,
    L,
    D,
    scale_hi,
    scale_lo,
    HAS_MASK: tl.constexpr,
    CAUSAL: tl.constexpr,
    ACC: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    scale = joined(scale_hi, scale_lo, ACC)
    bh = tl.program_id(0).to(tl.int64)
    b = bh // H
    h = bh % H
    offs_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    m_ok = offs_m < L
    q = tl.load(
        q_ptr + b * sqb + h * sqh + offs_m[:, None] * sql + offs_d[None, :] * sqd,
        mask=m_ok[:, None] & d_ok[None, :],
        other=0,
    )
    m_i = tl.full((BLOCK_M,), float("-inf"), dtype=ACC)
    l_i = tl.zeros((BLOCK_M,), dtype=ACC)
    acc = tl.zeros((BLOCK_M, BLOCK_D), dtype=ACC)
    hi = L
    if CAUSAL:
        hi = tl.minimum(L, (tl.program_id(1) + 1) * BLOCK_M)
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        key_ok = offs_n < L
        if HAS_MASK:
            key_ok = key_ok & (tl.load(mask_ptr + b * smb + offs_n * sml, mask=offs_n < L, other=0) != 0)
        kv_mask = key_ok[:, None] & d_ok[None, :]
        k = tl.load(k_ptr + b * skb + h * skh + offs_n[:, None] * skl + offs_d[None, :] * skd, mask=kv_mask, other=0)
        v = tl.load(v_ptr + b * svb + h * svh + offs_n[:, None] * svl + offs_d[None, :] * svd, mask=kv_mask, other=0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION, out_dtype=ACC) * scale
        allowed = key_ok[None, :]
        if CAUSAL:
            allowed = allowed & (offs_n[None, :] <= offs_m[:, None])
        s = tl.where(allowed, s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=1))
        shift = tl.where(m_new == float("-inf"), 0.0, m_new)  # rows with nothing admissible yet
        p = tl.exp(s - shift[:, None])
        alpha = tl.exp(m_i - shift)
        l_i = l_i * alpha + tl.sum(p, axis=1)
        acc = acc * alpha[:, None] + tl.dot(p.to(v.dtype), v, input_precision=PRECISION, out_dtype=ACC)
        m_i = m_new
    empty = l_i == 0
    out = acc / tl.where(empty, 1.0, l_i)[:, None]
    lse = tl.where(empty, float("inf"), m_i + tl.log(tl.where(empty, 1.0, l_i)))
    tl.store(
        out_ptr + (bh * L + offs_m[:, None]) * D + offs_d[None, :],
        out.to(out_ptr.dtype.element_ty),
        mask=m_ok[:, None] & d_ok[None, :],
    )
    tl.store(lse_ptr + bh * L + offs_m, lse, mask=m_ok)


@triton.jit
def _dkdv_kernel(
    do_ptr,
    q_ptr,
    k_ptr,
    v_ptr,
    mask_ptr,
    o_ptr,
    lse_ptr,
    dk_ptr,
    dv_ptr,
    sqb,
    sqh,
    sql,
    sqd,
    skb,
    skh,
    skl,
    skd,
    svb,
    svh,
    svl,
    svd,
    smb,
    sml,
    H,
    L,
    D,
    scale_hi,
    scale_lo,
    HAS_MASK: tl.constexpr,
    CAUSAL: tl.constexpr,
    ACC: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    scale = joined(scale_hi, scale_lo, ACC)
    bh = tl.program_id(0).to(tl.int64)
    b = bh // H
    h = bh % H
    start_n = tl.program_id(1) * BLOCK_N
    offs_n = start_n + tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    n_ok = offs_n < L
    key_ok = n_ok
    if HAS_MASK:
        key_ok = key_ok & (tl.load(mask_ptr + b * smb + offs_n * sml, mask=n_ok, other=0) != 0)
    kv_mask = key_ok[:, None] & d_ok[None, :]
    k = tl.load(k_ptr + b * skb + h * skh + offs_n[:, None] * skl + offs_d[None, :] * skd, mask=kv_mask, other=0)
    v = tl.load(v_ptr + b * svb + h * svh + offs_n[:, None] * svl + offs_d[None, :] * svd, mask=kv_mask, other=0)
    dk = tl.zeros((BLOCK_N, BLOCK_D), dtype=ACC)
    dv = tl.zeros((BLOCK_N, BLOCK_D), dtype=ACC)
    lo = 0
    if CAUSAL:
        lo = (start_n // BLOCK_M) * BLOCK_M  # queries before the block's first key see none of it
    for start_m in range(lo, L, BLOCK_M):
        offs_m = start_m + tl.arange(0, BLOCK_M)
        m_ok = offs_m < L
        row_mask = m_ok[:, None] & d_ok[None, :]
        q = tl.load(q_ptr + b * sqb + h * sqh + offs_m[:, None] * sql + offs_d[None, :] * sqd, mask=row_mask, other=0)
        dense = (bh * L + offs_m[:, None]) * D + offs_d[None, :]
        do = tl.load(do_ptr + dense, mask=row_mask, other=0)
        o = tl.load(o_ptr + dense, mask=row_mask, other=0)
        lse = tl.load(lse_ptr + bh * L + offs_m, mask=m_ok, other=float("inf"))
        delta = tl.sum(do.to(ACC) * o.to(ACC), axis=1)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION, out_dtype=ACC) * scale
        allowed = key_ok[None, :]
        if CAUSAL:
            allowed = allowed & (offs_n[None, :] <= offs_m[:, None])
        p = tl.exp(tl.where(allowed, s - lse[:, None], float("-inf")))  # lse = +inf on empty rows: p = 0
        dv += tl.dot(tl.trans(p.to(do.dtype)), do, input_precision=PRECISION, out_dtype=ACC)
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION, out_dtype=ACC)
        ds = p * (dp - delta[:, None])
        dk += tl.dot(tl.trans(ds.to(q.dtype)), q, input_precision=PRECISION, out_dtype=ACC)
    out_mask = n_ok[:, None] & d_ok[None, :]
    dense_n = (bh * L + offs_n[:, None]) * D + offs_d[None, :]
    tl.store(dk_ptr + dense_n, (dk * scale).to(dk_ptr.dtype.element_ty), mask=out_mask)
    tl.store(dv_ptr + dense_n, dv.to(dv_ptr.dtype.element_ty), mask=out_mask)


@triton.jit
def _dq_kernel(
    do_ptr,
    q_ptr,
    k_ptr,
    v_ptr,
    mask_ptr,
    o_ptr,
    lse_ptr,
    dq_ptr,
    sqb,
    sqh,
    sql,
    sqd,
    skb,
    skh,
    skl,
    skd,
    svb,
    svh,
    svl,
    svd,
    smb,
    sml,
    H,
    L,
    D,
    scale_hi,
    scale_lo,
    HAS_MASK: tl.constexpr,
    CAUSAL: tl.constexpr,
    ACC: tl.constexpr,
    PRECISION: tl.constexpr,
    BLOCK_M: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    scale = joined(scale_hi, scale_lo, ACC)
    bh = tl.program_id(0).to(tl.int64)
    b = bh // H
    h = bh % H
    offs_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    m_ok = offs_m < L
    row_mask = m_ok[:, None] & d_ok[None, :]
    q = tl.load(q_ptr + b * sqb + h * sqh + offs_m[:, None] * sql + offs_d[None, :] * sqd, mask=row_mask, other=0)
    dense = (bh * L + offs_m[:, None]) * D + offs_d[None, :]
    do = tl.load(do_ptr + dense, mask=row_mask, other=0)
    o = tl.load(o_ptr + dense, mask=row_mask, other=0)
    lse = tl.load(lse_ptr + bh * L + offs_m, mask=m_ok, other=float("inf"))
    delta = tl.sum(do.to(ACC) * o.to(ACC), axis=1)
    dq = tl.zeros((BLOCK_M, BLOCK_D), dtype=ACC)
    hi = L
    if CAUSAL:
        hi = tl.minimum(L, (tl.program_id(1) + 1) * BLOCK_M)
    for start_n in range(0, hi, BLOCK_N):
        offs_n = start_n + tl.arange(0, BLOCK_N)
        key_ok = offs_n < L
        if HAS_MASK:
            key_ok = key_ok & (tl.load(mask_ptr + b * smb + offs_n * sml, mask=offs_n < L, other=0) != 0)
        kv_mask = key_ok[:, None] & d_ok[None, :]
        k = tl.load(k_ptr + b * skb + h * skh + offs_n[:, None] * skl + offs_d[None, :] * skd, mask=kv_mask, other=0)
        v = tl.load(v_ptr + b * svb + h * svh + offs_n[:, None] * svl + offs_d[None, :] * svd, mask=kv_mask, other=0)
        s = tl.dot(q, tl.trans(k), input_precision=PRECISION, out_dtype=ACC) * scale
        allowed = key_ok[None, :]
        if CAUSAL:
            allowed = allowed & (offs_n[None, :] <= offs_m[:, None])
        p = tl.exp(tl.where(allowed, s - lse[:, None], float("-inf")))
        dp = tl.dot(do, tl.trans(v), input_precision=PRECISION, out_dtype=ACC)
        ds = p * (dp - delta[:, None])
        dq += tl.dot(ds.to(k.dtype), k, input_precision=PRECISION, out_dtype=ACC)
    tl.store(dq_ptr + dense, (dq * scale).to(dq_ptr.dtype.element_ty), mask=row_mask)


@triton.jit
def _decode_kernel(
    q_ptr,
    kn_ptr,
    vn_ptr,
    kc_ptr,
    vc_ptr,
    len_ptr,
    out_ptr,
    sqb,
    sqh,
    sqd,
    sknb,
    sknh,
    sknd,
    svnb,
    svnh,
    svnd,
    skcb,
    skch,
    skcl,
    skcd,
    svcb,
    svch,
    svcl,
    svcd,
    H,
    LMAX,
    D,
    scale_hi,
    scale_lo,
    ACC: tl.constexpr,
    BLOCK_N: tl.constexpr,
    BLOCK_D: tl.constexpr,
):
    scale = joined(scale_hi, scale_lo, ACC)
    bh = tl.program_id(0).to(tl.int64)
    b = bh // H
    h = bh % H
    offs_d = tl.arange(0, BLOCK_D)
    d_ok = offs_d < D
    length = tl.load(len_ptr + b)
    valid = (length >= 0) & (length < LMAX)
    q = tl.load(q_ptr + b * sqb + h * sqh + offs_d * sqd, mask=d_ok, other=0).to(ACC) * scale
    k_new = tl.load(kn_ptr + b * sknb + h * sknh + offs_d * sknd, mask=d_ok, other=0)
    v_new = tl.load(vn_ptr + b * svnb + h * svnh + offs_d * svnd, mask=d_ok, other=0)
    kc = kc_ptr + b * skcb + h * skch
    vc = vc_ptr + b * svcb + h * svch
    row = offs_d * 0 + length  # the write position, as a block (for a block-shaped store mask)
    write_ok = d_ok & (row >= 0) & (row < LMAX)
    tl.store(kc + row * skcl + offs_d * skcd, k_new, mask=write_ok)
    tl.store(vc + row * svcl + offs_d * svcd, v_new, mask=write_ok)
    # The new token first, then the cached prefix 0..length-1 in blocks (online softmax).
    m_i = tl.sum(q * k_new.to(ACC), axis=0)
    l_i = m_i * 0 + 1.0
    acc = v_new.to(ACC)
    n_prev = tl.where(valid, length, 0)
    for start in range(0, n_prev, BLOCK_N):
        offs_n = start + tl.arange(0, BLOCK_N)
        n_ok = offs_n < n_prev
        tile = n_ok[:, None] & d_ok[None, :]
        k = tl.load(kc + offs_n[:, None] * skcl + offs_d[None, :] * skcd, mask=tile, other=0).to(ACC)
        v = tl.load(vc + offs_n[:, None] * svcl + offs_d[None, :] * svcd, mask=tile, other=0).to(ACC)
        s = tl.where(n_ok, tl.sum(k * q[None, :], axis=1), float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, axis=0))
        p = tl.exp(s - m_new)
        alpha = tl.exp(m_i - m_new)
        l_i = l_i * alpha + tl.sum(p, axis=0)
        acc = acc * alpha + tl.sum(p[:, None] * v, axis=0)
        m_i = m_new
    out = tl.where(valid, acc / l_i, float("nan"))
    tl.store(out_ptr + bh * D + offs_d, out.to(out_ptr.dtype.element_ty), mask=d_ok)


# ---- launchers --------------------------------------------------------------------------


def _acc(dtype: torch.dtype):
    return tl.float64 if dtype == torch.float64 else tl.float32


def _precision(dtype: torch.dtype) -> str:
    # IEEE for float32/float64 (accuracy of the reference); half types use tensor cores anyway.
    return "ieee" if dtype in (torch.float32, torch.float64) else "tf32"


def _blocks(L: int, D: int) -> tuple[int, int, int, int]:
    """(BLOCK_M, BLOCK_N, BLOCK_D, num_warps) for sequences of length L and head size D.

    From a sweep on an H100 (benchmarks/gpu/attention_backends.py, float32, L = 17…150,
    D = 16…64; BLOCK_M, BLOCK_N in {16, 32, 64}): 32×32 tiles were fastest or within 25% of
    it everywhere except D = 64, where 16×16 was (64×64 tiles spilled: 19× slower at L=33).
    tl.dot needs tiles of at least 16.
    """
    bd = max(16, triton.next_power_of_2(D))
    block = 16 if bd >= 64 else 32
    block = min(block, max(16, triton.next_power_of_2(max(L, 1))))
    return block, block, bd, 4


def _mask_args(mask, like):
    if mask is None:
        return like, 0, 0, False  # never read: HAS_MASK=False
    return mask, mask.stride(0), mask.stride(1), True


def _lse_dtype(dtype):
    return torch.float64 if dtype == torch.float64 else torch.float32


def forward(q, k, v, key_padding_mask, causal, scale):
    B, H, L, D = q.shape
    out = torch.empty((B, H, L, D), dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, L), dtype=_lse_dtype(q.dtype), device=q.device)
    if out.numel() == 0:
        return out, lse
    bm, bn, bd, nw = _blocks(L, D)
    mask, smb, sml, has_mask = _mask_args(key_padding_mask, q)
    grid = (B * H, triton.cdiv(L, bm))
    _forward_kernel[grid](
        q,
        k,
        v,
        mask,
        out,
        lse,
        *q.stride(),
        *k.stride(),
        *v.stride(),
        smb,
        sml,
        H,
        L,
        D,
        *split_scalar(scale),
        HAS_MASK=has_mask,
        CAUSAL=causal,
        ACC=_acc(q.dtype),
        PRECISION=_precision(q.dtype),
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_D=bd,
        num_warps=nw,
    )
    return out, lse


def backward(grad_out, q, k, v, key_padding_mask, out, lse, causal, scale):
    B, H, L, D = q.shape
    dq, dk, dv = (torch.empty((B, H, L, D), dtype=q.dtype, device=q.device) for _ in range(3))
    if dq.numel() == 0:
        return dq, dk, dv
    grad_out, out, lse = grad_out.contiguous(), out.contiguous(), lse.contiguous()
    bm, bn, bd, nw = _blocks(L, D)
    mask, smb, sml, has_mask = _mask_args(key_padding_mask, q)
    common = (*q.stride(), *k.stride(), *v.stride(), smb, sml, H, L, D, *split_scalar(scale))
    meta = dict(
        HAS_MASK=has_mask,
        CAUSAL=causal,
        ACC=_acc(q.dtype),
        PRECISION=_precision(q.dtype),
        BLOCK_M=bm,
        BLOCK_N=bn,
        BLOCK_D=bd,
        num_warps=nw,
    )
    _dkdv_kernel[(B * H, triton.cdiv(L, bn))](grad_out, q, k, v, mask, out, lse, dk, dv, *common, **meta)
    _dq_kernel[(B * H, triton.cdiv(L, bm))](grad_out, q, k, v, mask, out, lse, dq, *common, **meta)
    return dq, dk, dv


def decode(q, k_new, v_new, k_cache, v_cache, lengths, scale):
    B, H, Lmax, D = k_cache.shape
    out = torch.empty((B, H, 1, D), dtype=q.dtype, device=q.device)
    if out.numel() == 0:
        return out
    sq, skn, svn = q.stride(), k_new.stride(), v_new.stride()
    lengths = lengths.contiguous()  # read as a dense array
    _decode_kernel[(B * H,)](
        q,
        k_new,
        v_new,
        k_cache,
        v_cache,
        lengths,
        out,
        sq[0],
        sq[1],
        sq[3],
        skn[0],
        skn[1],
        skn[3],
        svn[0],
        svn[1],
        svn[3],
        *k_cache.stride(),
        *v_cache.stride(),
        H,
        Lmax,
        D,
        *split_scalar(scale),
        ACC=_acc(q.dtype),
        BLOCK_N=min(64, max(16, triton.next_power_of_2(Lmax))),
        BLOCK_D=max(16, triton.next_power_of_2(D)),
    )
    return out
