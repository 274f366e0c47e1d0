"""The compiled-core glue of masked_attention: tensors to hepgen._C (cpu, cuda; forward, backward, decode).

These functions are moved verbatim from hepgen/ops/masked_attention.py (the cpu and cuda backends of the
op's declaration); keep their bodies in step with the C++ entry points they call.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops._compiled import stream_of
from hepgen.ops.reference.masked_attention import lse_dtype


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
    B, H, _Lmax, Dh = k_cache.shape
    out = torch.empty((B, H, 1, Dh), dtype=q.dtype, device=q.device)
    if out.numel() == 0:
        return out
    C = _core.compiled()
    # lengths is read as a dense int64 array (a direct call of the registered op may pass a view).
    args = (q, k_new, v_new, k_cache, v_cache, lengths.contiguous(), float(scale), out)
    if device_kind == "cuda":
        C.cuda_masked_attention_decode(*args, stream_of(q))
    else:
        C.masked_attention_decode(*args)
    return out
