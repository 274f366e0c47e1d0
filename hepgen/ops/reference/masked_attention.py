"""The spec of masked_attention and its decode step in plain PyTorch (the oracle of every
backend; the maths and the backward's derivation are in hepgen.ops.masked_attention), and the
constants its kernels share.
"""

from __future__ import annotations

import torch

__all__ = [
    "MAX_HEAD_DIM",
    "admissible_keys",
    "admissible_matmul",
    "lse_dtype",
    "masked_attention_backward_reference",
    "masked_attention_decode_reference",
    "masked_attention_reference",
]

# The CUDA kernels keep a query row in registers, four values per lane of a warp.
MAX_HEAD_DIM = 128


def lse_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of the saved log-sum-exp (and of every kernel's accumulation)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


def admissible_keys(
    key_padding_mask: torch.Tensor | None, length: int, causal: bool, device: torch.device
) -> torch.Tensor:
    """Bool [B or 1, 1, L, L]: may query i (dim 2) look at key j (dim 3)?"""
    allowed = torch.ones(length, length, dtype=torch.bool, device=device)
    if causal:
        allowed = allowed.tril()
    allowed = allowed[None, None]
    if key_padding_mask is not None:
        allowed = allowed & key_padding_mask[:, None, None, :]
    return allowed


def _scores(q, k, key_padding_mask, causal, scale):
    """Scaled scores with inadmissible entries at -inf, and the admissibility mask."""
    allowed = admissible_keys(key_padding_mask, q.shape[2], causal, q.device)
    scores = (q @ k.transpose(-1, -2)) * scale
    return scores.masked_fill(~allowed, float("-inf")), allowed


def admissible_matmul(a: torch.Tensor, b: torch.Tensor, allowed: torch.Tensor) -> torch.Tensor:
    """Σ_j a_ij b_jd over the admissible j of each i only: [..., M, N] @ [..., N, D].

    A plain matmul adds 0 · b_jd for the other j, which is NaN where b_jd is ±inf or NaN (a
    future token's value in causal attention, a key no query may see): the kernels never
    form those terms, and neither may the spec. The admissible terms follow IEEE arithmetic
    (NaN · x, 0 · inf give NaN; a sum with +inf and -inf terms is NaN), counted with
    indicator matmuls where any operand is non-finite; all-finite inputs cost one matmul.
    """
    allowed = allowed.expand(a.shape)
    a = a.masked_fill(~allowed, 0)
    fa, fb = a.isfinite(), b.isfinite()
    if bool(fa.all()) and bool(fb.all()):
        return a @ b
    out = torch.where(fa, a, 0) @ torch.where(fb, b, 0)

    def count(x, y):  # how many admissible j have x_ij and y_jd true
        return (allowed & x).to(a.dtype) @ y.to(a.dtype)

    inf = float("inf")
    pinf, ninf = (a == inf), (a == -inf)
    nan_terms = count(a.isnan(), torch.ones_like(fb)) + count(torch.ones_like(fa), b.isnan())
    nan_terms += count(pinf | ninf, b == 0) + count(a == 0, b.isinf())
    plus = count(pinf, b > 0) + count(ninf, b < 0) + count(a > 0, b == inf) + count(a < 0, b == -inf)
    minus = count(pinf, b < 0) + count(ninf, b > 0) + count(a > 0, b == -inf) + count(a < 0, b == inf)
    out = torch.where(plus > 0, inf, out)
    out = torch.where(minus > 0, -inf, out)
    return torch.where((nan_terms > 0) | ((plus > 0) & (minus > 0)), float("nan"), out)


def _zero_padded_keys(k, v, key_padding_mask):
    """Padded keys never contribute, whatever they hold (NaN included): 0 · NaN would be NaN."""
    if key_padding_mask is None:
        return k, v
    padded = ~key_padding_mask[:, None, :, None]
    return k.masked_fill(padded, 0), v.masked_fill(padded, 0)


def masked_attention_reference(q, k, v, key_padding_mask, causal: bool, scale: float):
    """Plain-PyTorch forward: (out [B, H, Lq, Dh] in q's dtype, lse [B, H, Lq]).

    Half inputs are computed in float32, like the kernels. (Lq may differ from the key
    length only when causal is False; the decode reference uses that.)
    """
    dtype, acc = q.dtype, lse_dtype(q.dtype)
    q, k, v = q.to(acc), k.to(acc), v.to(acc)
    k, v = _zero_padded_keys(k, v, key_padding_mask)
    scores, allowed = _scores(q, k, key_padding_mask, causal, scale)
    lse = torch.logsumexp(scores, dim=-1)  # -inf on rows with no admissible key
    lse = torch.where(allowed.any(dim=-1), lse, float("inf"))  # so that exp(s - lse) = 0 there
    p = torch.exp(scores - lse.unsqueeze(-1))
    return admissible_matmul(p, v, allowed).to(dtype), lse


def masked_attention_backward_reference(grad_out, q, k, v, key_padding_mask, out, lse, causal: bool, scale: float):
    """Plain-PyTorch backward: (dq, dk, dv), each [B, H, L, Dh] in q's dtype (see module doc)."""
    dtype, acc = q.dtype, lse_dtype(q.dtype)
    dO, q, k, v, out = (t.to(acc) for t in (grad_out, q, k, v, out))
    k, v = _zero_padded_keys(k, v, key_padding_mask)
    scores, allowed = _scores(q, k, key_padding_mask, causal, scale)
    p = torch.exp(scores - lse.unsqueeze(-1))  # 0 where inadmissible or the row is empty
    # Every sum runs over admissible (query, key) pairs only (see admissible_matmul).
    allowed_t = allowed.transpose(-1, -2)
    dv = admissible_matmul(p.transpose(-1, -2), dO, allowed_t)
    dp = dO @ v.transpose(-1, -2)
    delta = (dO * out).sum(dim=-1, keepdim=True)  # = sum_j p_ij dp_ij
    ds = torch.where(allowed, p * (dp - delta), 0)
    dq = admissible_matmul(ds, k, allowed) * scale
    dk = admissible_matmul(ds.transpose(-1, -2), q, allowed_t) * scale
    return dq.to(dtype), dk.to(dtype), dv.to(dtype)


def masked_attention_decode_reference(q, k_new, v_new, k_cache, v_cache, lengths, scale: float):
    """Plain-PyTorch decode step: writes the caches at lengths[b], returns out [B, H, 1, Dh].

    A row whose length lies outside [0, Lmax) (possible only where the public check cannot
    see the values: GPU tensors) gets no cache write and a NaN output, as in every kernel;
    an index out of range would otherwise stop a CUDA context.
    """
    B, H, Lmax, Dh = k_cache.shape
    valid = ((lengths >= 0) & (lengths < Lmax)).view(B, 1, 1, 1)
    where = torch.where(valid, lengths.view(B, 1, 1, 1), 0).expand(B, H, 1, Dh)
    k_cache.scatter_(2, where, torch.where(valid, k_new, k_cache.gather(2, where)))
    v_cache.scatter_(2, where, torch.where(valid, v_new, v_cache.gather(2, where)))
    # The new query sits at position lengths[b]: it sees cache positions 0..lengths[b].
    seen = torch.arange(Lmax, device=q.device)[None, :] <= lengths[:, None]  # [B, Lmax]
    out, _ = masked_attention_reference(q, k_cache, v_cache, seen, False, scale)
    return torch.where(valid, out, float("nan"))
