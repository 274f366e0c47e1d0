"""Causal multi-head attention with a key-padding mask, and its KV-cache decode step.

For q, k, v [B, H, L, Dh], an optional key_padding_mask [B, L] (True = real token) and
a causal flag, query i of sequence b may look at key j ("j is admissible for i") when

    key_padding_mask[b, j]  and  (j <= i  or not causal)

and then

    s_ij   = scale · q_i · k_j                      (admissible j only)
    lse_i  = log Σ_j exp(s_ij)
    p_ij   = exp(s_ij − lse_i)
    out_i  = Σ_j p_ij v_j

A query row with no admissible key (e.g. query 0 when token 0 is padding, or every row of a
fully padded sequence) gives out_i = 0, never NaN, and receives zero gradient; its saved
lse_i is +inf, so that exp(s − lse) = 0 in the backward pass needs no special case.
Padded keys are never read by the compiled kernels (they may hold anything, NaN included).
Queries at padded positions are computed like any other row (as in
scaled_dot_product_attention); mask their outputs downstream if they matter.

The forward op also returns lse [B, H, L] (float32, float64 for float64 inputs), which the
backward op (``hepgen::masked_attention_backward``) uses to recompute p without a second
softmax, flash-attention style. Derivation, with dO the incoming gradient of out:

    dv_j  = Σ_i p_ij dO_i                           (out is linear in v)
    dp_ij = dO_i · v_j                              (gradient of the loss w.r.t. p_ij)
    ds_ij = p_ij (dp_ij − Σ_k p_ik dp_ik)           (softmax Jacobian: dp/ds = diag(p) − p pᵀ)
          = p_ij (dp_ij − delta_i),   delta_i = dO_i · out_i   (since out_i = Σ_k p_ik v_k)
    dq_i  = scale Σ_j ds_ij k_j,      dk_j = scale Σ_i ds_ij q_i

lse is a saved statistic, not a differentiable output. The backward has no autograd of its
own (no double backward).

The decode step ``masked_attention_decode`` (op ``hepgen::masked_attention_decode``) is the
inference path of autoregressive sampling: it writes one new key/value per sequence into a
KV cache at position lengths[b] and attends the new query over positions 0..lengths[b]
(causal, all cached tokens real). It mutates the caches in place, returns the output and has
no autograd. :class:`hepgen.nn.KVCache` holds the buffers and the lengths.
"""

from __future__ import annotations

import math

import torch

from hepgen import _core
from hepgen.ops import _checks
from hepgen.ops._backends import op_backends, records_forced_backend, under_forced_backend
from hepgen.ops._compiled import stream_of

__all__ = ["masked_attention", "masked_attention_decode", "masked_attention_reference",
           "masked_attention_backward_reference", "masked_attention_decode_reference", "BACKENDS",
           "MAX_HEAD_DIM"]

# The CUDA kernels keep a query row in registers, four values per lane of a warp.
MAX_HEAD_DIM = 128


def lse_dtype(dtype: torch.dtype) -> torch.dtype:
    """dtype of the saved log-sum-exp (and of every kernel's accumulation)."""
    return torch.float64 if dtype == torch.float64 else torch.float32


# ---- reference: the spec ----------------------------------------------------------------

def admissible_keys(key_padding_mask: torch.Tensor | None, length: int, causal: bool,
                    device: torch.device) -> torch.Tensor:
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
    return (p @ v).to(dtype), lse


def masked_attention_backward_reference(grad_out, q, k, v, key_padding_mask, out, lse, causal: bool,
                                        scale: float):
    """Plain-PyTorch backward: (dq, dk, dv), each [B, H, L, Dh] in q's dtype (see module doc)."""
    dtype, acc = q.dtype, lse_dtype(q.dtype)
    dO, q, k, v, out = (t.to(acc) for t in (grad_out, q, k, v, out))
    k, v = _zero_padded_keys(k, v, key_padding_mask)
    scores, _ = _scores(q, k, key_padding_mask, causal, scale)
    p = torch.exp(scores - lse.unsqueeze(-1))  # 0 where inadmissible or the row is empty
    dv = p.transpose(-1, -2) @ dO
    dp = dO @ v.transpose(-1, -2)
    delta = (dO * out).sum(dim=-1, keepdim=True)  # = sum_j p_ij dp_ij
    ds = p * (dp - delta)
    dq = (ds @ k) * scale
    dk = (ds.transpose(-1, -2) @ q) * scale
    return dq.to(dtype), dk.to(dtype), dv.to(dtype)


def masked_attention_decode_reference(q, k_new, v_new, k_cache, v_cache, lengths, scale: float):
    """Plain-PyTorch decode step: writes the caches at lengths[b], returns out [B, H, 1, Dh]."""
    B, H, Lmax, Dh = k_cache.shape
    where = lengths.view(B, 1, 1, 1).expand(B, H, 1, Dh)
    k_cache.scatter_(2, where, k_new)
    v_cache.scatter_(2, where, v_new)
    # The new query sits at position lengths[b]: it sees cache positions 0..lengths[b].
    seen = torch.arange(Lmax, device=q.device)[None, :] <= lengths[:, None]  # [B, Lmax]
    out, _ = masked_attention_reference(q, k_cache, v_cache, seen, False, scale)
    return out


# ---- compiled core (cpu, cuda) ----------------------------------------------------------

def _core_forward(q, k, v, key_padding_mask, causal, scale, device_kind):
    B, H, L, Dh = q.shape
    out = torch.empty((B, H, L, Dh), dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, L), dtype=lse_dtype(q.dtype), device=q.device)
    if out.numel() == 0:
        return out, lse
    C = _core.compiled()
    args = (q, k, v, key_padding_mask, bool(causal), float(scale), out, lse)
    if device_kind == "cuda":
        C.cuda_masked_attention_forward(*args, stream_of(q))
    else:
        C.masked_attention_forward(*args)
    return out, lse


def _core_backward(grad_out, q, k, v, key_padding_mask, out, lse, causal, scale, device_kind):
    B, H, L, Dh = q.shape
    grads = tuple(torch.empty((B, H, L, Dh), dtype=q.dtype, device=q.device) for _ in range(3))
    if grads[0].numel() == 0:
        return grads
    grad_out, out, lse = grad_out.contiguous(), out.contiguous(), lse.contiguous()
    C = _core.compiled()
    args = (grad_out, q, k, v, key_padding_mask, out, lse, bool(causal), float(scale), *grads)
    if device_kind == "cuda":
        C.cuda_masked_attention_backward(*args, stream_of(q))
    else:
        C.masked_attention_backward(*args)
    return grads


def _core_decode(q, k_new, v_new, k_cache, v_cache, lengths, scale, device_kind):
    B, H, Lmax, Dh = k_cache.shape
    out = torch.empty((B, H, 1, Dh), dtype=q.dtype, device=q.device)
    if out.numel() == 0:
        return out
    C = _core.compiled()
    args = (q, k_new, v_new, k_cache, v_cache, lengths, float(scale), out)
    if device_kind == "cuda":
        C.cuda_masked_attention_decode(*args, stream_of(q))
    else:
        C.masked_attention_decode(*args)
    return out


def _triton(name):
    def call(*args):
        from hepgen.triton import masked_attention as kernels

        return getattr(kernels, name)(*args)
    return call


# Triton first on the GPU: its kernels use tensor cores for half types and are exercised in
# CI through the interpreter; the CUDA kernels are plain SIMT code.
BACKENDS = op_backends("masked_attention",
                       preference={"cpu": ("cpu", "reference"), "cuda": ("triton", "cuda", "reference")})
BACKENDS.register("reference", forward=masked_attention_reference, backward=masked_attention_backward_reference,
                  decode=masked_attention_decode_reference)
for _kind in ("cpu", "cuda"):
    BACKENDS.register(_kind,
                      forward=lambda *a, _k=_kind: _core_forward(*a, _k),
                      backward=lambda *a, _k=_kind: _core_backward(*a, _k),
                      decode=lambda *a, _k=_kind: _core_decode(*a, _k))
BACKENDS.register("triton", forward=_triton("forward"), backward=_triton("backward"), decode=_triton("decode"))
# Measured on an H100 (Triton 3.6): float64 tl.dot fails to lower to LLVM, and the float64
# decode's exp ran at float32 accuracy. The CUDA backend runs float64 on the GPU instead.
BACKENDS.restrict("triton", "cuda", (torch.float16, torch.bfloat16, torch.float32),
                  "Triton does not compile this kernel's float64 dots for GPUs (use the cuda backend)")


# ---- dispatch: one place that picks the backend --------------------------------------------

def _forward(q, k, v, key_padding_mask, causal, scale):
    return BACKENDS.get(BACKENDS.choose(q.device, q.dtype), "forward")(q, k, v, key_padding_mask, causal, scale)


def _backward(grad_out, q, k, v, key_padding_mask, out, lse, causal, scale):
    return BACKENDS.get(BACKENDS.choose(q.device, q.dtype), "backward")(
        grad_out, q, k, v, key_padding_mask, out, lse, causal, scale)


def _decode(q, k_new, v_new, k_cache, v_cache, lengths, scale):
    return BACKENDS.get(BACKENDS.choose(q.device, q.dtype), "decode")(q, k_new, v_new, k_cache, v_cache, lengths, scale)


# ---- the custom ops: what torch.compile and export see --------------------------------------

@torch.library.custom_op("hepgen::masked_attention", mutates_args=())
def _attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, key_padding_mask: torch.Tensor | None,
                  causal: bool, scale: float) -> tuple[torch.Tensor, torch.Tensor]:
    return _forward(q, k, v, key_padding_mask, causal, scale)


@_attention_op.register_fake
def _(q, k, v, key_padding_mask, causal, scale):
    return q.new_empty(q.shape), q.new_empty(q.shape[:3], dtype=lse_dtype(q.dtype))


@torch.library.custom_op("hepgen::masked_attention_backward", mutates_args=())
def _attention_backward_op(grad_out: torch.Tensor, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                           key_padding_mask: torch.Tensor | None, out: torch.Tensor, lse: torch.Tensor,
                           causal: bool, scale: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return _backward(grad_out, q, k, v, key_padding_mask, out, lse, causal, scale)


@_attention_backward_op.register_fake
def _(grad_out, q, k, v, key_padding_mask, out, lse, causal, scale):
    return q.new_empty(q.shape), q.new_empty(q.shape), q.new_empty(q.shape)


@records_forced_backend
def _save_for_backward(ctx, inputs, output):
    q, k, v, key_padding_mask, causal, scale = inputs
    out, lse = output
    ctx.save_for_backward(q, k, v, key_padding_mask, out, lse)
    ctx.causal, ctx.scale = causal, scale


@under_forced_backend
def _op_backward(ctx, grad_out, grad_lse):
    # lse is a statistic saved for the backward pass, not a differentiable result: the public
    # function never returns it, so grad_lse is unused.
    q, k, v, key_padding_mask, out, lse = ctx.saved_tensors
    dq, dk, dv = _attention_backward_op(grad_out, q, k, v, key_padding_mask, out, lse, ctx.causal, ctx.scale)
    return dq, dk, dv, None, None, None


_attention_op.register_autograd(_op_backward, setup_context=_save_for_backward)


@torch.library.custom_op("hepgen::masked_attention_decode", mutates_args=("k_cache", "v_cache"))
def _decode_op(q: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor, k_cache: torch.Tensor,
               v_cache: torch.Tensor, lengths: torch.Tensor, scale: float) -> torch.Tensor:
    return _decode(q, k_new, v_new, k_cache, v_cache, lengths, scale)


@_decode_op.register_fake
def _(q, k_new, v_new, k_cache, v_cache, lengths, scale):
    return q.new_empty(q.shape)


# ---- eager path: the same kernels without the custom-op dispatcher --------------------------
# A custom op costs tens of microseconds per call in eager mode, more than the kernel for a
# decode step. Outside torch.compile, calls take this autograd Function (or no autograd at
# all); both paths run the same _forward/_backward/_decode and are tested alike.

class _AttentionEager(torch.autograd.Function):
    @staticmethod
    @records_forced_backend
    def forward(ctx, q, k, v, key_padding_mask, causal, scale):
        out, lse = _forward(q, k, v, key_padding_mask, causal, scale)
        ctx.save_for_backward(q, k, v, key_padding_mask, out, lse)
        ctx.causal, ctx.scale = causal, scale
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    @under_forced_backend
    def backward(ctx, grad_out):
        q, k, v, key_padding_mask, out, lse = ctx.saved_tensors
        dq, dk, dv = _backward(grad_out, q, k, v, key_padding_mask, out, lse, ctx.causal, ctx.scale)
        return dq, dk, dv, None, None, None


# ---- public entry points ----------------------------------------------------------------

def _check_scale(scale, head_dim: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(head_dim)
    return _checks.finite_float("scale", scale)


def _check_head_dim(name: str, t: torch.Tensor) -> None:
    if not 1 <= t.shape[-1] <= MAX_HEAD_DIM:
        raise ValueError(f"{name} must have a head dimension (last) between 1 and {MAX_HEAD_DIM}, "
                         f"got shape {tuple(t.shape)}")


def _check_like(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor, shape: tuple) -> None:
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} to match {ref_name}, got {tuple(t.shape)}")
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {t.dtype}")
    _checks.same_device(name, t, ref_name, ref)


def masked_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                     key_padding_mask: torch.Tensor | None = None, *, causal: bool = True,
                     scale: float | None = None) -> torch.Tensor:
    """Multi-head attention with a key-padding mask, causal by default.

    Args:
        q, k, v: [B, H, L, Dh], one floating dtype, any strides (e.g. a transposed
            [B, L, H, Dh] projection); 1 <= Dh <= 128.
        key_padding_mask: [B, L] bool, True for real tokens; None means all real.
        causal: query i sees keys j <= i only (autoregressive).
        scale: score scale; default 1/sqrt(Dh).

    Returns:
        [B, H, L, Dh]. A query with no admissible key (all keys it may see are padding)
        gives 0, never NaN, and gets no gradient.
    """
    for name, t in (("q", q), ("k", k), ("v", v)):
        _checks.tensor(name, t)
    _checks.floating("q", q)
    _checks.rank("q", q, 4, "[batch, heads, length, head_dim]")
    _check_like("k", k, "q", q, q.shape)
    _check_like("v", v, "q", q, q.shape)
    _check_head_dim("q", q)
    if key_padding_mask is not None:
        _checks.tensor("key_padding_mask", key_padding_mask)
        if key_padding_mask.dtype != torch.bool:
            raise TypeError(f"key_padding_mask must be a bool tensor (True = real token), got {key_padding_mask.dtype}")
        _checks.rank("key_padding_mask", key_padding_mask, 2, "[batch, length]")
        expected = (q.shape[0], q.shape[2])
        if tuple(key_padding_mask.shape) != expected:
            raise ValueError(f"key_padding_mask must have shape (batch, length) = {expected} to match q, "
                             f"got {tuple(key_padding_mask.shape)}")
        _checks.same_device("key_padding_mask", key_padding_mask, "q", q)
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__}")
    scale = _check_scale(scale, q.shape[-1])
    if torch.compiler.is_compiling():
        return _attention_op(q, k, v, key_padding_mask, causal, scale)[0]
    if torch.is_grad_enabled() and (q.requires_grad or k.requires_grad or v.requires_grad):
        return _AttentionEager.apply(q, k, v, key_padding_mask, causal, scale)
    return _forward(q, k, v, key_padding_mask, causal, scale)[0]


def masked_attention_decode(q: torch.Tensor, k_new: torch.Tensor, v_new: torch.Tensor, k_cache: torch.Tensor,
                            v_cache: torch.Tensor, lengths: torch.Tensor, *, scale: float | None = None) -> torch.Tensor:
    """One autoregressive step with a KV cache: append a token, attend over the prefix.

    Writes k_new, v_new into k_cache, v_cache at position lengths[b] of each sequence b
    (in place), then attends q over cache positions 0..lengths[b], the new token included.
    This equals the last row of causal ``masked_attention`` over the sequence so far.
    ``lengths`` is not changed: the caller (e.g. :class:`hepgen.nn.KVCache`) advances it.

    Args:
        q, k_new, v_new: [B, H, 1, Dh], one floating dtype, any strides.
        k_cache, v_cache: [B, H, Lmax, Dh], q's dtype, any strides; written in place.
        lengths: [B] integer, tokens already cached per sequence; 0 <= lengths[b] < Lmax
            (checked for CPU tensors in eager mode; not on the GPU, where it would cost a
            device sync, nor under torch.compile: there the compiled kernels write nothing
            for an out-of-range row and return NaN).
        scale: score scale; default 1/sqrt(Dh).

    Returns:
        [B, H, 1, Dh]. No autograd: this is the sampling path.
    """
    for name, t in (("q", q), ("k_new", k_new), ("v_new", v_new), ("k_cache", k_cache), ("v_cache", v_cache),
                    ("lengths", lengths)):
        _checks.tensor(name, t)
    _checks.floating("q", q)
    _checks.rank("q", q, 4, "[batch, heads, 1, head_dim]")
    if q.shape[2] != 1:
        raise ValueError(f"q must hold one new token per sequence, shape [batch, heads, 1, head_dim], got {tuple(q.shape)}")
    _check_head_dim("q", q)
    _check_like("k_new", k_new, "q", q, q.shape)
    _check_like("v_new", v_new, "q", q, q.shape)
    _checks.rank("k_cache", k_cache, 4, "[batch, heads, max_length, head_dim]")
    B, H, _, Dh = q.shape
    if (k_cache.shape[0], k_cache.shape[1], k_cache.shape[3]) != (B, H, Dh):
        raise ValueError(f"k_cache must have shape (batch, heads, max_length, head_dim) with batch, heads, head_dim "
                         f"= {(B, H, Dh)} of q, got {tuple(k_cache.shape)}")
    _check_like("k_cache", k_cache, "q", q, k_cache.shape)
    _check_like("v_cache", v_cache, "k_cache", k_cache, k_cache.shape)
    if lengths.dtype == torch.bool or lengths.is_floating_point() or lengths.is_complex():
        raise TypeError(f"lengths must be an integer tensor, got {lengths.dtype}")
    _checks.rank("lengths", lengths, 1, "[batch]")
    if lengths.shape[0] != B:
        raise ValueError(f"lengths must have shape ({B},) to match q's batch, got {tuple(lengths.shape)}")
    _checks.same_device("lengths", lengths, "q", q)
    Lmax = k_cache.shape[2]
    # A value check needs the data: done for CPU tensors in eager mode only (on the GPU it
    # would cost a sync per token; under torch.compile it would break the graph).
    if (lengths.device.type == "cpu" and B > 0 and not torch.compiler.is_compiling()
            and (lengths.min() < 0 or lengths.max() >= Lmax)):
        raise ValueError(f"lengths must lie in [0, {Lmax}) (max_length of k_cache): the cache is full or a "
                         f"length is negative; got min {int(lengths.min())}, max {int(lengths.max())}")
    scale = _check_scale(scale, Dh)
    lengths = lengths.to(torch.int64).contiguous()
    if torch.compiler.is_compiling():
        return _decode_op(q, k_new, v_new, k_cache, v_cache, lengths, scale)
    with torch.no_grad():  # the sampling path: no autograd (the cache writes are not recorded)
        return _decode(q, k_new, v_new, k_cache, v_cache, lengths, scale)
