"""The compiled-core glue of ode_combine: unpacks tensors for hepgen._C (cpu and cuda).

These functions are moved verbatim from hepgen/ops/ode_combine.py (the cpu and cuda backends of the
op's declaration); keep their bodies in step with the C++ entry points they call.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops._compiled import stream_of
from hepgen.ops.reference.ode_combine import _view


def _core_forward(y, ks, coeffs, h, mask, y_coeff, device_kind):
    out = torch.empty_like(y, memory_format=torch.contiguous_format)
    S, R, F = _view(y, mask)
    if out.numel() == 0:
        return out
    # The core sees every state as [S, R, F] (views: all are contiguous here).
    y = y.contiguous().view(S, R, F)
    ks = [k.contiguous().view(S, R, F) for k in ks]
    h = h.contiguous()
    mask = None if mask is None else mask.contiguous().view(S, R)
    args = (y, float(y_coeff), ks, [float(c) for c in coeffs], h, mask, out.view(S, R, F))
    C = _core.compiled()
    if device_kind == "cuda":
        C.cuda_ode_combine(*args, stream_of(y))
    else:
        C.ode_combine(*args)
    return out
