"""The compiled-core glue of masked_attention: unpacks tensors for hepgen._C (cpu and cuda; forward, backward and decode).

These functions are moved verbatim from hepgen/ops/masked_attention.py (the cpu and cuda backends of the
op's declaration); keep their bodies in step with the C++ entry points they call.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops._compiled import dtype_code, stream_of
from hepgen.ops.reference.masked_attention import lse_dtype


def _mask_args(key_padding_mask):
    if key_padding_mask is None:
        return 0, (0, 0)
    return key_padding_mask.data_ptr(), tuple(key_padding_mask.stride())


def _core_forward(q, k, v, key_padding_mask, causal, scale, device_kind):
    B, H, L, Dh = q.shape
    out = torch.empty((B, H, L, Dh), dtype=q.dtype, device=q.device)
    lse = torch.empty((B, H, L), dtype=lse_dtype(q.dtype), device=q.device)
    if out.numel() == 0:
        return out, lse
    C = _core.compiled()
    args = (dtype_code(q), q.data_ptr(), tuple(q.stride()), k.data_ptr(), tuple(k.stride()),
            v.data_ptr(), tuple(v.stride()), *_mask_args(key_padding_mask), B, H, L, Dh, bool(causal),
            float(scale), out.data_ptr(), lse.data_ptr())
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
    args = (dtype_code(q), grad_out.data_ptr(), q.data_ptr(), tuple(q.stride()), k.data_ptr(),
            tuple(k.stride()), v.data_ptr(), tuple(v.stride()), *_mask_args(key_padding_mask),
            out.data_ptr(), lse.data_ptr(), B, H, L, Dh, bool(causal), float(scale),
            *(g.data_ptr() for g in grads))
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
    args = (dtype_code(q), q.data_ptr(), tuple(q.stride()), k_new.data_ptr(), tuple(k_new.stride()),
            v_new.data_ptr(), tuple(v_new.stride()), k_cache.data_ptr(), tuple(k_cache.stride()),
            v_cache.data_ptr(), tuple(v_cache.stride()), lengths.data_ptr(), B, H, Lmax, Dh, float(scale),
            out.data_ptr())
    if device_kind == "cuda":
        C.cuda_masked_attention_decode(*args, stream_of(q))
    else:
        C.masked_attention_decode(*args)
    return out
