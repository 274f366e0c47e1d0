"""Rational-quadratic spline in Triton (see hepgen.ops.rq_spline for the semantics and
csrc/cpu/rq_spline_bin.h for the per-bin maths and the derivation of the gradients).

One program per BLOCK elements; each element's rows of K parameters are loaded as a
[BLOCK, KP] tile (KP = next power of two >= K): softmax, cumulative knots and the bin search
are tile operations, the bin's knots are picked out with a masked sum, and only the bin's
two knot derivatives are loaded and go through softplus. Half types compute in float32.
The scalars (bound, minimum sizes, end derivative) come in a small tensor of the compute
dtype, so float64 runs are not rounded to float32 scalars.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from hepgen.ops.reference.rq_spline import boundary_derivative_logit


@triton.jit
def _softplus(v):
    return tl.maximum(v, 0.0) + tl.log(1.0 + tl.exp(-tl.abs(v)))


@triton.jit
def _smallest_normal(v):
    if v.dtype == tl.float64:
        return 2.2250738585072014e-308
    return 1.17549435e-38


@triton.jit
def _softmax_knots(u_ptr, row_stride, i, ok, j, K, min_size, bound, KP: tl.constexpr):
    """Softmax p [BLOCK, KP] of a row tile, and the interior knots: column j holds knot j + 1."""
    cols = j[None, :] < K
    u = tl.load(u_ptr + i[:, None] * row_stride + j[None, :], mask=ok[:, None] & cols, other=0)
    u = tl.where(cols, u.to(min_size.dtype), float("-inf"))  # padding columns get no probability
    mx = tl.max(u, axis=1)
    e = tl.exp(u - mx[:, None])
    e = tl.where(cols, e, 0.0)
    p = e / tl.sum(e, axis=1)[:, None]
    sizes = tl.where(cols, min_size + (1.0 - min_size * K) * p, 0.0)
    # Cumulate in float64, as the CPU and CUDA kernels do: a knot's rounding error is
    # amplified by 1 / (bin width) in the bin position.
    c = tl.cumsum(sizes.to(tl.float64), axis=1)
    knots = (2.0 * bound.to(tl.float64) * c - bound.to(tl.float64)).to(min_size.dtype)
    return p, knots


@triton.jit
def _pick(tile, j, idx):
    """tile[r, idx[r]] per row (0 where idx is out of the tile)."""
    return tl.sum(tl.where(j[None, :] == idx[:, None], tile, 0.0), axis=1)


@triton.jit
def _locate(
    x_ptr,
    w_ptr,
    ws,
    h_ptr,
    hs,
    d_ptr,
    ds,
    consts_ptr,
    n,
    K,
    pid,
    INVERSE: tl.constexpr,
    BLOCK: tl.constexpr,
    KP: tl.constexpr,
):
    bound = tl.load(consts_ptr + 0)
    min_w = tl.load(consts_ptr + 1)
    min_h = tl.load(consts_ptr + 2)
    min_d = tl.load(consts_ptr + 3)
    d_end = tl.load(consts_ptr + 4)
    i = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    ok = i < n
    j = tl.arange(0, KP)
    v = tl.load(x_ptr + i, mask=ok, other=0).to(bound.dtype)
    inside = (v >= -bound) & (v <= bound)  # False for NaN and +-inf
    vs = tl.where(inside, v, 0.0)  # a safe point for the identity-tail elements
    pw, xk = _softmax_knots(w_ptr, ws, i, ok, j, K, min_w, bound, KP)
    ph, yk = _softmax_knots(h_ptr, hs, i, ok, j, K, min_h, bound, KP)
    if INVERSE:
        search = yk
    else:
        search = xk
    # Bin: number of interior knots <= the value, in [0, K-1] whatever the comparisons say.
    k = tl.sum(((vs[:, None] >= search) & (j[None, :] < K - 1)).to(tl.int32), axis=1)
    x0 = tl.where(k == 0, -bound, _pick(xk, j, k - 1))
    x1 = tl.where(k == K - 1, bound, _pick(xk, j, k))
    y0 = tl.where(k == 0, -bound, _pick(yk, j, k - 1))
    y1 = tl.where(k == K - 1, bound, _pick(yk, j, k))
    use = ok & inside
    ud0 = tl.load(d_ptr + i * ds + (k - 1), mask=use & (k > 0), other=0).to(bound.dtype)
    ud1 = tl.load(d_ptr + i * ds + k, mask=use & (k < K - 1), other=0).to(bound.dtype)
    d0 = tl.where(k == 0, d_end, min_d + _softplus(ud0))
    d1 = tl.where(k == K - 1, d_end, min_d + _softplus(ud1))
    return i, ok, j, v, vs, inside, k, pw, ph, x0, x1 - x0, y0, y1 - y0, d0, d1, ud0, ud1, bound, min_w, min_h


@triton.jit
def _position(vs, x0, w, y0, h, d0, d1, INVERSE: tl.constexpr):
    """The position t in [0, 1] of the value in its bin (the inverse solves the quadratic)."""
    if INVERSE:
        s = h / w
        dy = vs - y0
        curv = d0 + d1 - 2.0 * s
        a = h * (s - d0) + dy * curv
        b = h * d0 - dy * curv
        c = -s * dy
        disc = tl.maximum(b * b - 4.0 * a * c, 0.0)
        t = (2.0 * c) / (-b - tl.sqrt(disc))
    else:
        t = (vs - x0) / w
    return t


@triton.jit
def _forward_kernel(
    x_ptr,
    w_ptr,
    ws,
    h_ptr,
    hs,
    d_ptr,
    ds,
    consts_ptr,
    out_ptr,
    ld_ptr,
    n,
    K,
    INVERSE: tl.constexpr,
    BLOCK: tl.constexpr,
    KP: tl.constexpr,
):
    i, ok, _j, v, vs, inside, _k, _pw, _ph, x0, w, y0, h, d0, d1, _ud0, _ud1, _bound, _min_w, _min_h = _locate(
        x_ptr, w_ptr, ws, h_ptr, hs, d_ptr, ds, consts_ptr, n, K, tl.program_id(0), INVERSE, BLOCK, KP
    )
    t = _position(vs, x0, w, y0, h, d0, d1, INVERSE)
    s = h / w
    q = t * (1.0 - t)
    den = s + (d0 + d1 - 2.0 * s) * q
    m = d1 * t * t + 2.0 * s * q + d0 * (1.0 - t) * (1.0 - t)
    arg = s * s * m / (den * den)
    # Where the quotient over- or underflows (huge derivatives), by parts (csrc/cpu/rq_spline_bin.h).
    normal = (arg >= _smallest_normal(arg)) & (arg - arg == 0.0)
    logdet = tl.where(normal, tl.log(arg), 2.0 * (tl.log(s) - tl.log(den)) + tl.log(m))
    if INVERSE:
        out = x0 + t * w
        logdet = -logdet
    else:
        out = y0 + h * (s * t * t + d0 * q) / den
    out = tl.where(inside, out, v)
    logdet = tl.where(inside, logdet, 0.0)
    tl.store(out_ptr + i, out.to(out_ptr.dtype.element_ty), mask=ok)
    tl.store(ld_ptr + i, logdet.to(ld_ptr.dtype.element_ty), mask=ok)


@triton.jit
def _softmax_backward(p, j, k, c, g_left, g_width):
    # g_u_j = c p_j ([j < k] g_left + [j == k] g_width - (g_left P_<k + g_width p_k))
    below = tl.sum(tl.where(j[None, :] < k[:, None], p, 0.0), axis=1)
    mean = g_left * below + g_width * _pick(p, j, k)
    g = tl.where(j[None, :] < k[:, None], g_left[:, None], tl.where(j[None, :] == k[:, None], g_width[:, None], 0.0))
    return c * p * (g - mean[:, None])


@triton.jit
def _backward_kernel(
    x_ptr,
    w_ptr,
    ws,
    h_ptr,
    hs,
    d_ptr,
    ds,
    consts_ptr,
    gout_ptr,
    gld_ptr,
    gx_ptr,
    gw_ptr,
    gh_ptr,
    gd_ptr,
    n,
    K,
    INVERSE: tl.constexpr,
    BLOCK: tl.constexpr,
    KP: tl.constexpr,
):
    i, ok, j, _v, vs, inside, k, pw, ph, x0, w, y0, h, d0, d1, ud0, ud1, bound, min_w, min_h = _locate(
        x_ptr, w_ptr, ws, h_ptr, hs, d_ptr, ds, consts_ptr, n, K, tl.program_id(0), INVERSE, BLOCK, KP
    )
    g_out = tl.load(gout_ptr + i, mask=ok, other=0).to(bound.dtype)
    g_ld = tl.load(gld_ptr + i, mask=ok, other=0).to(bound.dtype)
    t = _position(vs, x0, w, y0, h, d0, d1, INVERSE)
    # Partial derivatives of one bin (derivation in csrc/cpu/rq_spline_bin.h).
    s = h / w
    q = t * (1.0 - t)
    curv = d0 + d1 - 2.0 * s
    den = s + curv * q
    nn = s * t * t + d0 * q
    m = d1 * t * t + 2.0 * s * q + d0 * (1.0 - t) * (1.0 - t)
    inv_den = 1.0 / den
    inv_den2 = inv_den * inv_den
    inv_m = 1.0 / m
    y_t = h * s * m * inv_den2
    y_s = h * (t * t * den - nn * (1.0 - 2.0 * q)) * inv_den2
    y_h = nn * inv_den
    y_d0 = h * q * (den - nn) * inv_den2
    y_d1 = -h * nn * q * inv_den2
    m_t = 2.0 * (d1 * t + s * (1.0 - 2.0 * t) - d0 * (1.0 - t))
    l_t = m_t * inv_m - 2.0 * curv * (1.0 - 2.0 * t) * inv_den
    l_s = 2.0 / s + 2.0 * q * inv_m - 2.0 * (1.0 - 2.0 * q) * inv_den
    l_d0 = (1.0 - t) * (1.0 - t) * inv_m - 2.0 * q * inv_den
    l_d1 = t * t * inv_m - 2.0 * q * inv_den
    if INVERSE:
        lam = (g_out * w - g_ld * l_t) / y_t
        g_s = -g_ld * l_s - lam * y_s
        g_in = lam
        g_x0 = g_out
        g_w = g_out * t - g_s * s / w
        g_y0 = -lam
        g_h = -lam * y_h + g_s / w
        g_d0 = -g_ld * l_d0 - lam * y_d0
        g_d1 = -g_ld * l_d1 - lam * y_d1
    else:
        g_t = g_out * y_t + g_ld * l_t
        g_s = g_out * y_s + g_ld * l_s
        g_in = g_t / w
        g_x0 = -g_in
        g_w = -(g_t * t + g_s * s) / w
        g_y0 = g_out
        g_h = g_out * y_h + g_s / w
        g_d0 = g_out * y_d0 + g_ld * l_d0
        g_d1 = g_out * y_d1 + g_ld * l_d1
    g_in = tl.where(inside, g_in, g_out)
    tl.store(gx_ptr + i, g_in.to(gx_ptr.dtype.element_ty), mask=ok)

    rows = i[:, None] * K + j[None, :]
    cols = ok[:, None] & (j[None, :] < K)
    keep = inside[:, None]
    gu = _softmax_backward(pw, j, k, 2.0 * bound * (1.0 - min_w * K), g_x0, g_w)
    tl.store(gw_ptr + rows, tl.where(keep, gu, 0.0).to(gw_ptr.dtype.element_ty), mask=cols)
    gu = _softmax_backward(ph, j, k, 2.0 * bound * (1.0 - min_h * K), g_y0, g_h)
    tl.store(gh_ptr + rows, tl.where(keep, gu, 0.0).to(gh_ptr.dtype.element_ty), mask=cols)
    # Interior derivatives: softplus' = sigmoid; only the bin's two knots.
    gv0 = g_d0 / (1.0 + tl.exp(-ud0))
    gv1 = g_d1 / (1.0 + tl.exp(-ud1))
    gd = tl.where(j[None, :] == (k - 1)[:, None], gv0[:, None], tl.where(j[None, :] == k[:, None], gv1[:, None], 0.0))
    gd_rows = i[:, None] * (K - 1) + j[None, :]
    tl.store(
        gd_ptr + gd_rows, tl.where(keep, gd, 0.0).to(gd_ptr.dtype.element_ty), mask=ok[:, None] & (j[None, :] < K - 1)
    )


def _compute_dtype(dtype: torch.dtype) -> torch.dtype:
    return torch.float64 if dtype == torch.float64 else torch.float32


def _consts(x, bound, mw, mh, md):
    import math

    d_end = md + math.log1p(math.exp(boundary_derivative_logit(md)))
    return torch.tensor([bound, mw, mh, md, d_end], dtype=_compute_dtype(x.dtype), device=x.device)


def _launch_config(K: int) -> tuple[int, int]:
    kp = triton.next_power_of_2(max(K, 2))
    block = max(16, min(256, 4096 // kp))
    return block, kp


def _row_stride(t: torch.Tensor) -> int:
    return t.stride(0) if t.shape[0] > 1 else t.shape[1]


def forward(x, uw, uh, ud, inverse, bound, mw, mh, md):
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    logdet = torch.empty_like(out)
    n, K = uw.shape
    if n == 0:
        return out, logdet
    block, kp = _launch_config(K)
    _forward_kernel[(triton.cdiv(n, block),)](
        x,
        uw,
        _row_stride(uw),
        uh,
        _row_stride(uh),
        ud,
        _row_stride(ud),
        _consts(x, bound, mw, mh, md),
        out,
        logdet,
        n,
        K,
        INVERSE=bool(inverse),
        BLOCK=block,
        KP=kp,
    )
    return out, logdet


def backward(g_out, g_ld, x, uw, uh, ud, inverse, bound, mw, mh, md):
    g_out, g_ld = g_out.contiguous(), g_ld.contiguous()
    n, K = uw.shape
    gx = torch.empty((n,), dtype=x.dtype, device=x.device)
    gw = torch.empty((n, K), dtype=x.dtype, device=x.device)
    gh = torch.empty((n, K), dtype=x.dtype, device=x.device)
    gd = torch.empty((n, K - 1), dtype=x.dtype, device=x.device)
    if n == 0:
        return gx, gw, gh, gd
    block, kp = _launch_config(K)
    _backward_kernel[(triton.cdiv(n, block),)](
        x,
        uw,
        _row_stride(uw),
        uh,
        _row_stride(uh),
        ud,
        _row_stride(ud),
        _consts(x, bound, mw, mh, md),
        g_out,
        g_ld,
        gx,
        gw,
        gh,
        gd,
        n,
        K,
        INVERSE=bool(inverse),
        BLOCK=block,
        KP=kp,
    )
    return gx, gw, gh, gd
