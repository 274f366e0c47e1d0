"""The compiled-core glue of ode_combine: unpacks tensors for hepgen._C (cpu and cuda).

These functions are moved verbatim from hepgen/ops/ode_combine.py (the cpu and cuda backends of the
op's declaration); keep their bodies in step with the C++ entry points they call.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops._compiled import dtype_code, stream_of
from hepgen.ops.reference.ode_combine import _view


def _core_forward(y, ks, coeffs, h, mask, y_coeff, device_kind):
    out = torch.empty_like(y, memory_format=torch.contiguous_format)
    S, R, F = _view(y, mask)
    if out.numel() == 0:
        return out
    y = y.contiguous()
    ks = [k.contiguous() for k in ks]
    h = h.contiguous()
    mask_ptr = 0 if mask is None else mask.contiguous().data_ptr()
    args = (dtype_code(y), y.data_ptr(), float(y_coeff), [k.data_ptr() for k in ks], [float(c) for c in coeffs],
            h.data_ptr(), mask_ptr, S, R, F, out.data_ptr())
    C = _core.compiled()
    if device_kind == "cuda":
        C.cuda_ode_combine(*args, stream_of(y))
    else:
        C.ode_combine(*args)
    return out
