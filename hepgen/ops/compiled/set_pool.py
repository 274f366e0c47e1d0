"""The compiled-core glue of set_pool: unpacks tensors for hepgen._C (cpu and cuda).

These functions are moved verbatim from hepgen/ops/set_pool.py (the cpu and cuda backends of the
op's declaration); keep their bodies in step with the C++ entry points they call.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops._compiled import stream_of


def _core_forward(x: torch.Tensor, mask: torch.Tensor, sum_scale: float, device_kind: str) -> torch.Tensor:
    B, _N, D = x.shape
    out = torch.empty((B, 2 * D), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    C = _core.compiled()
    args = (x, mask, float(sum_scale), out)
    if device_kind == "cuda":
        C.cuda_set_pool_forward(*args, stream_of(x))
    else:
        C.set_pool_forward(*args)
    return out


def _core_backward(grad_out: torch.Tensor, mask: torch.Tensor, sum_scale: float, device_kind: str) -> torch.Tensor:
    grad_out = grad_out.contiguous()
    B, N = mask.shape
    D = grad_out.shape[1] // 2
    grad_x = torch.empty((B, N, D), dtype=grad_out.dtype, device=grad_out.device)
    if grad_x.numel() == 0:
        return grad_x
    C = _core.compiled()
    args = (grad_out, mask, float(sum_scale), grad_x)
    if device_kind == "cuda":
        C.cuda_set_pool_backward(*args, stream_of(grad_out))
    else:
        C.set_pool_backward(*args)
    return grad_x
