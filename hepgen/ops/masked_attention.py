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

Non-finite values. Padded keys and values never contribute, whatever they hold (NaN, inf),
to any output or gradient, on every backend. The spec sums over admissible (query, key) pairs
only, so a token's inf never reaches a query that may not see it. The kernels' tile products
multiply zero weights by every key of a tile, so inside one (sequence, head) they may form
0 · inf: the outputs and gradients of a (sequence, head) whose real tokens hold a non-finite
(or overflowing, ~1e300) value in q, k or v are unspecified (may be NaN); every other
(sequence, head) is exact. (Making the kernels exact there too would need a per-row path for
such tiles; we chose the documented rule over the cost.)

Validation, one rule per argument for every entry point (TypeError for a wrong kind or dtype,
ValueError for a wrong shape or value; the message names the argument):

- q [B, H, L, Dh] floating (integer, bool, complex refused), 1 <= Dh <= 128; k, v alike;
  key_padding_mask None or bool [B, L] on q's device; causal a bool; scale finite;
- backward: grad_out and out like q, lse [B, H, L] in the accumulation dtype;
- decode: q, k_new, v_new [B, H, 1, Dh]; k_cache, v_cache [B, H, Lmax, Dh] of q's dtype;
  lengths [B] integer (the public function converts to int64; the registered op takes
  int64); 0 <= lengths[b] < Lmax, checked on CPU tensors on every path (on the GPU it would
  cost a sync per token: there every backend, the reference included, writes nothing for an
  out-of-range row and returns NaN for it). The caches are written in place: each must own
  its memory (an expanded view, stride 0 on a dim of size > 1, or any layout where two
  indices reach one element is refused, by the C++ core's sufficient test) and share none
  with the other cache or with q, k_new, v_new, lengths. Refused with a ValueError on every
  backend (the cpu kernel used to write such a cache, the reference failed inside PyTorch).

The public functions convert (scale None -> 1/sqrt(Dh), lengths -> int64) and apply these
rules; the registered ops ``torch.ops.hepgen.masked_attention``, ``masked_attention_backward``
and ``masked_attention_decode`` apply the same rules to their schema arguments in the op's body
(``validate=``) and take any strides. The C++ entry points (cpu, cuda) check the same (scale
included) and return an error status, never reading out of bounds.

Spec: hepgen/ops/reference/masked_attention.py. Kernels: hepgen/ops/compiled/masked_attention.py
(cpu, cuda), hepgen/triton/masked_attention.py. Tests: tests/ops/conformance (fed by
tests/ops/samples/masked_attention.py) and tests/ops/test_masked_attention.py (SDPA, decode),
tests/ops/test_registered_ops_masked_attention.py (bad calls of the registered ops and the
compiled glue), tests/ops/fuzz/test_fuzz_masked_attention.py (Hypothesis).
"""

from __future__ import annotations

import math

import torch
from torch._subclasses.fake_tensor import is_fake

from hepgen.ops import _checks
from hepgen.ops._declare import Backward, Op
from hepgen.ops.compiled import masked_attention as compiled
from hepgen.ops.reference.masked_attention import (
    MAX_HEAD_DIM,
    admissible_keys,
    lse_dtype,
    masked_attention_backward_reference,
    masked_attention_decode_reference,
    masked_attention_reference,
)

__all__ = [
    "BACKENDS",
    "MASKED_ATTENTION",
    "MASKED_ATTENTION_BACKWARD",
    "MASKED_ATTENTION_DECODE",
    "MAX_HEAD_DIM",
    "admissible_keys",
    "lse_dtype",
    "masked_attention",
    "masked_attention_backward_reference",
    "masked_attention_decode",
    "masked_attention_decode_reference",
    "masked_attention_reference",
]


def _triton(name):
    def call(*args):
        from hepgen.triton import masked_attention as kernels

        return getattr(kernels, name)(*args)

    return call


def _compiled(name, device_kind):
    fn = getattr(compiled, name)
    return lambda *args: fn(*args, device_kind)


# ---- argument checks (run once, before any kernel) ---------------------------------------


def _check_scale(scale, head_dim: int) -> float:
    if scale is None:
        return 1.0 / math.sqrt(head_dim)
    return _checks.finite_float("scale", scale)


def _check_head_dim(name: str, t: torch.Tensor) -> None:
    if not 1 <= t.shape[-1] <= MAX_HEAD_DIM:
        raise ValueError(
            f"{name} must have a head dimension (last) between 1 and {MAX_HEAD_DIM}, got shape {tuple(t.shape)}"
        )


def _check_like(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor, shape: tuple) -> None:
    _checks.tensor(name, t)
    if tuple(t.shape) != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)} to match {ref_name}, got {tuple(t.shape)}")
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} must have the dtype of {ref_name} ({ref.dtype}), got {t.dtype}")
    _checks.same_device(name, t, ref_name, ref)


def _check_qkv(q, k, v, key_padding_mask, causal) -> None:
    """The rule on the attention inputs: q [B, H, L, Dh] floating with 1 <= Dh <= 128, k and v
    alike, the mask None or bool [B, L] on q's device, causal a bool."""
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
            raise ValueError(
                f"key_padding_mask must have shape (batch, length) = {expected} to match q, "
                f"got {tuple(key_padding_mask.shape)}"
            )
        _checks.same_device("key_padding_mask", key_padding_mask, "q", q)
    if not isinstance(causal, bool):
        raise TypeError(f"causal must be a bool, got {type(causal).__name__}")


def _check(q, k, v, key_padding_mask=None, *, causal=True, scale=None):
    """masked_attention's argument checks -> MASKED_ATTENTION's arguments (errors name the argument)."""
    _check_qkv(q, k, v, key_padding_mask, causal)
    return q, k, v, key_padding_mask, causal, _check_scale(scale, q.shape[-1])


def _validate(q, k, v, key_padding_mask, causal, scale) -> None:
    """The registered op's check (``torch.ops.hepgen.masked_attention``): the same rules; scale is
    given (finite)."""
    _check_qkv(q, k, v, key_padding_mask, causal)
    _checks.finite_float("scale", scale)


def _validate_backward(grad_out, q, k, v, key_padding_mask, out, lse, causal, scale) -> None:
    """The registered backward op's check: the forward's, grad_out and out like q, lse [B, H, L] in
    the accumulation dtype (float64 for float64 q, float32 otherwise)."""
    _validate(q, k, v, key_padding_mask, causal, scale)
    _check_like("grad_out", grad_out, "q", q, q.shape)
    _check_like("out", out, "q", q, q.shape)
    _checks.tensor("lse", lse)
    if tuple(lse.shape) != tuple(q.shape[:3]):
        raise ValueError(f"lse must have shape (batch, heads, length) = {tuple(q.shape[:3])}, got {tuple(lse.shape)}")
    if lse.dtype != lse_dtype(q.dtype):
        raise TypeError(f"lse must have dtype {lse_dtype(q.dtype)} (the forward's for q of {q.dtype}), got {lse.dtype}")
    _checks.same_device("lse", lse, "q", q)


def _span(t: torch.Tensor) -> tuple[int, int]:
    """The byte range [start, end) a non-empty view reaches (torch strides are never negative)."""
    last = sum((n - 1) * s for n, s in zip(t.shape, t.stride()))
    return t.data_ptr(), t.data_ptr() + (last + 1) * t.element_size()


def _check_owns_memory(name: str, t: torch.Tensor) -> None:
    """A tensor written in place must not overlap itself (an expanded view, stride 0 on a dim of
    size > 1, or any layout where two indices reach one element). The same sufficient test as
    the C++ core's (check_no_self_overlap): every stride, in increasing order, steps past all
    the smaller dims reach; it refuses a few exotic interleaved layouts too."""
    if t.numel() <= 1:
        return
    reach = 0
    for n, stride in sorted(((n, s) for n, s in zip(t.shape, t.stride()) if n > 1), key=lambda d: d[1]):
        if stride <= reach:
            raise ValueError(
                f"{name} is written in place but its elements overlap (shape {tuple(t.shape)}, strides "
                f"{t.stride()}, e.g. an expanded view): pass a tensor that owns its memory, e.g. {name}.clone()"
            )
        reach += (n - 1) * stride


def _check_no_shared_memory(out_name: str, out: torch.Tensor, in_name: str, t: torch.Tensor) -> None:
    """A tensor written in place may share no memory with another argument (as the C++ core's
    check_no_overlap: the byte ranges they reach are disjoint). Traced by torch.compile, tensors
    have no addresses: the registered op's body checks it when the graph runs."""
    if torch.compiler.is_compiling() or out.numel() == 0 or t.numel() == 0 or out.device != t.device:
        return
    if out.device.type == "meta" or is_fake(out) or is_fake(t):  # fake tensors (opcheck, export) have no memory
        return
    (o0, o1), (i0, i1) = _span(out), _span(t)
    if o0 < i1 and i0 < o1:
        raise ValueError(f"{out_name} is written in place and shares memory with {in_name}: pass separate tensors")


def _check_decode_args(q, k_new, v_new, k_cache, v_cache, lengths) -> None:
    """The rule on the decode step's arguments, after the public function's conversion of lengths
    (to int64): shapes, dtypes, devices, caches that own their memory and share it with no other
    argument, and lengths within the cache (see masked_attention_decode)."""
    for name, t in (
        ("q", q),
        ("k_new", k_new),
        ("v_new", v_new),
        ("k_cache", k_cache),
        ("v_cache", v_cache),
        ("lengths", lengths),
    ):
        _checks.tensor(name, t)
    _checks.floating("q", q)
    _checks.rank("q", q, 4, "[batch, heads, 1, head_dim]")
    if q.shape[2] != 1:
        raise ValueError(
            f"q must hold one new token per sequence, shape [batch, heads, 1, head_dim], got {tuple(q.shape)}"
        )
    _check_head_dim("q", q)
    _check_like("k_new", k_new, "q", q, q.shape)
    _check_like("v_new", v_new, "q", q, q.shape)
    _checks.rank("k_cache", k_cache, 4, "[batch, heads, max_length, head_dim]")
    B, H, _, Dh = q.shape
    if (k_cache.shape[0], k_cache.shape[1], k_cache.shape[3]) != (B, H, Dh):
        raise ValueError(
            f"k_cache must have shape (batch, heads, max_length, head_dim) with batch, heads, head_dim "
            f"= {(B, H, Dh)} of q, got {tuple(k_cache.shape)}"
        )
    _check_like("k_cache", k_cache, "q", q, k_cache.shape)
    _check_like("v_cache", v_cache, "k_cache", k_cache, k_cache.shape)
    if lengths.dtype != torch.int64:
        raise TypeError(
            f"lengths must be an int64 tensor, got {lengths.dtype} (the public masked_attention_decode converts "
            f"other integer dtypes)"
        )
    _checks.rank("lengths", lengths, 1, "[batch]")
    if lengths.shape[0] != B:
        raise ValueError(f"lengths must have shape ({B},) to match q's batch, got {tuple(lengths.shape)}")
    _checks.same_device("lengths", lengths, "q", q)
    _check_owns_memory("k_cache", k_cache)
    _check_owns_memory("v_cache", v_cache)
    _check_no_shared_memory("k_cache", k_cache, "v_cache", v_cache)
    for name, t in (("q", q), ("k_new", k_new), ("v_new", v_new), ("lengths", lengths)):
        _check_no_shared_memory("k_cache", k_cache, name, t)
        _check_no_shared_memory("v_cache", v_cache, name, t)
    Lmax = k_cache.shape[2]
    # A value check needs the data: done for CPU tensors only, outside torch.compile's tracing
    # (on the GPU it would cost a sync per token; there every backend writes nothing for an
    # out-of-range row and returns NaN for it, see masked_attention_decode).
    if (
        lengths.device.type == "cpu"
        and B > 0
        and not torch.compiler.is_compiling()
        and not is_fake(lengths)
        and (lengths.min() < 0 or lengths.max() >= Lmax)
    ):
        raise ValueError(
            f"lengths must lie in [0, {Lmax}) (max_length of k_cache): the cache is full or a "
            f"length is negative; got min {int(lengths.min())}, max {int(lengths.max())}"
        )


def _check_decode(q, k_new, v_new, k_cache, v_cache, lengths, *, scale=None):
    """masked_attention_decode's argument checks -> MASKED_ATTENTION_DECODE's arguments (errors name the argument).

    Converts lengths of any integer dtype to int64 (contiguous), then applies the decode rule."""
    _checks.tensor("lengths", lengths)
    if lengths.dtype == torch.bool or lengths.is_floating_point() or lengths.is_complex():
        raise TypeError(f"lengths must be an integer tensor, got {lengths.dtype}")
    lengths = lengths.to(torch.int64).contiguous()
    _check_decode_args(q, k_new, v_new, k_cache, v_cache, lengths)
    # The sampling path: no autograd (the op declares none, so the cache writes are not recorded).
    return q, k_new, v_new, k_cache, v_cache, lengths, _check_scale(scale, q.shape[-1])


def _validate_decode(q, k_new, v_new, k_cache, v_cache, lengths, scale) -> None:
    """The registered decode op's check (``torch.ops.hepgen.masked_attention_decode``): the same
    rule; lengths must be int64 already, scale finite."""
    _check_decode_args(q, k_new, v_new, k_cache, v_cache, lengths)
    _checks.finite_float("scale", scale)


# ---- the declarations ---------------------------------------------------------------------

MASKED_ATTENTION_BACKWARD = Op(
    "masked_attention_backward",
    "(Tensor grad_out, Tensor q, Tensor k, Tensor v, Tensor? key_padding_mask, Tensor out, Tensor lse, "
    "bool causal, float scale) -> (Tensor, Tensor, Tensor)",
    family="masked_attention",
    reference=masked_attention_backward_reference,
    fake=lambda grad_out, q, *rest: (q.new_empty(q.shape), q.new_empty(q.shape), q.new_empty(q.shape)),
    backends={
        "cpu": _compiled("_core_backward", "cpu"),
        "cuda": _compiled("_core_backward", "cuda"),
        "triton": _triton("backward"),
    },
    validate=_validate_backward,
)


def _grads(attention_backward, s, grad_out, grad_lse):
    # lse is a statistic saved for the backward pass, not a differentiable result: the public
    # function never returns it, so grad_lse is unused.
    dq, dk, dv = attention_backward(grad_out, s.q, s.k, s.v, s.key_padding_mask, s.out, s.lse, s.causal, s.scale)
    return dq, dk, dv, None, None, None


MASKED_ATTENTION = Op(
    "masked_attention",
    "(Tensor q, Tensor k, Tensor v, Tensor? key_padding_mask, bool causal, float scale) -> (Tensor, Tensor)",
    outputs=("out", "lse"),
    nondifferentiable=("lse",),
    reference=masked_attention_reference,
    fake=lambda q, k, v, key_padding_mask, causal, scale: (
        q.new_empty(q.shape),
        q.new_empty(q.shape[:3], dtype=lse_dtype(q.dtype)),
    ),
    backends={
        "cpu": _compiled("_core_forward", "cpu"),
        "cuda": _compiled("_core_forward", "cuda"),
        "triton": _triton("forward"),
    },
    # Triton first on the GPU: its kernels use tensor cores for half types and are exercised
    # in CI through the interpreter; the CUDA kernels are plain SIMT code.
    preference={"cpu": ("cpu", "reference"), "cuda": ("triton", "cuda", "reference")},
    # Measured on an H100 (Triton 3.6): float64 tl.dot fails to lower to LLVM, and the float64
    # decode's exp ran at float32 accuracy. The CUDA backend runs float64 on the GPU instead.
    restrictions=[
        (
            "triton",
            "cuda",
            (torch.float16, torch.bfloat16, torch.float32),
            "Triton does not compile this kernel's float64 dots for GPUs (use the cuda backend)",
        )
    ],
    backward=Backward(
        save=("q", "k", "v", "key_padding_mask", "out", "lse", "causal", "scale"),
        op="masked_attention_backward",
        grads=_grads,
    ),
    check=_check,
    validate=_validate,
)

MASKED_ATTENTION_DECODE = Op(
    "masked_attention_decode",
    "(Tensor q, Tensor k_new, Tensor v_new, Tensor(a!) k_cache, Tensor(b!) v_cache, Tensor lengths, "
    "float scale) -> Tensor",
    family="masked_attention",
    mutates=("k_cache", "v_cache"),
    reference=masked_attention_decode_reference,
    fake=lambda q, *rest: q.new_empty(q.shape),
    backends={
        "cpu": _compiled("_core_decode", "cpu"),
        "cuda": _compiled("_core_decode", "cuda"),
        "triton": _triton("decode"),
    },
    check=_check_decode,
    validate=_validate_decode,
)

BACKENDS = MASKED_ATTENTION.table


# ---- public entry points ----------------------------------------------------------------


def masked_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    key_padding_mask: torch.Tensor | None = None,
    *,
    causal: bool = True,
    scale: float | None = None,
) -> torch.Tensor:
    """Multi-head attention with a key-padding mask, causal by default.

    Args:
        q, k, v: [B, H, L, Dh], one floating dtype, any strides (e.g. a transposed
            [B, L, H, Dh] projection); 1 <= Dh <= 128.
        key_padding_mask: [B, L] bool, True for real tokens; None means all real.
        causal: query i sees keys j <= i only (autoregressive).
        scale: score scale; default 1/sqrt(Dh).

    Returns:
        [B, H, L, Dh]. A query with no admissible key (all keys it may see are padding)
        gives 0, never NaN, and gets no gradient. Padded keys never contribute, whatever
        they hold; a non-finite value in a real token leaves its (sequence, head)'s results
        unspecified (module docstring).

    Raises:
        TypeError: non-tensors, a non-floating q, k or v of another dtype, a non-bool mask or
            causal. ValueError: wrong ranks or shapes, Dh outside 1..128, another device, a
            non-finite scale. The registered op refuses the same.
    """
    return MASKED_ATTENTION(*_check(q, k, v, key_padding_mask, causal=causal, scale=scale))[0]


def masked_attention_decode(
    q: torch.Tensor,
    k_new: torch.Tensor,
    v_new: torch.Tensor,
    k_cache: torch.Tensor,
    v_cache: torch.Tensor,
    lengths: torch.Tensor,
    *,
    scale: float | None = None,
) -> torch.Tensor:
    """One autoregressive step with a KV cache: append a token, attend over the prefix.

    Writes k_new, v_new into k_cache, v_cache at position lengths[b] of each sequence b
    (in place), then attends q over cache positions 0..lengths[b], the new token included.
    This equals the last row of causal ``masked_attention`` over the sequence so far.
    ``lengths`` is not changed: the caller (e.g. :class:`hepgen.nn.KVCache`) advances it.

    Args:
        q, k_new, v_new: [B, H, 1, Dh], one floating dtype, any strides.
        k_cache, v_cache: [B, H, Lmax, Dh], q's dtype, any strides that do not overlap;
            written in place.
        lengths: [B] integer, tokens already cached per sequence; 0 <= lengths[b] < Lmax
            (checked for CPU tensors, by the public function and by the registered op's
            body, so in torch.compile graphs too; not on the GPU, where it would cost a
            device sync: there every backend writes nothing for an out-of-range row and
            returns NaN for it).
        scale: score scale; default 1/sqrt(Dh).

    Returns:
        [B, H, 1, Dh]. No autograd: this is the sampling path.

    Raises:
        TypeError: wrong dtypes (lengths not an integer tensor). ValueError: wrong shapes or
            devices, lengths outside [0, Lmax) (CPU tensors), a cache that overlaps itself
            (e.g. an expanded view) or shares memory with another argument, a non-finite
            scale. Refused alike on every backend and by the registered op; nothing is
            written before the refusal.
    """
    return MASKED_ATTENTION_DECODE(*_check_decode(q, k_new, v_new, k_cache, v_cache, lengths, scale=scale))
