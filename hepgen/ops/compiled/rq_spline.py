"""The compiled-core glue of rq_spline: unpacks tensors for hepgen._C (cpu and cuda).

These functions are moved verbatim from hepgen/ops/rq_spline.py (the cpu and cuda backends of the
op's declaration); keep their bodies in step with the C++ entry points they call.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops._compiled import stream_of


def _core_forward(x, uw, uh, ud, inverse, bound, mw, mh, md, device_kind):
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    logdet = torch.empty_like(out)
    if x.numel() == 0:
        return out, logdet
    C = _core.compiled()
    args = (x, uw, uh, ud, bool(inverse), float(bound), float(mw), float(mh), float(md), out, logdet)
    if device_kind == "cuda":
        C.cuda_rq_spline_forward(*args, stream_of(x))
    else:
        C.rq_spline_forward(*args)
    return out, logdet


def _core_backward(gy, gl, x, uw, uh, ud, inverse, bound, mw, mh, md, device_kind):
    gy, gl = gy.contiguous(), gl.contiguous()
    N, K = uw.shape
    gx = torch.empty((N,), dtype=x.dtype, device=x.device)
    gw = torch.empty((N, K), dtype=x.dtype, device=x.device)
    gh = torch.empty((N, K), dtype=x.dtype, device=x.device)
    gd = torch.empty((N, K - 1), dtype=x.dtype, device=x.device)
    if N == 0:
        return gx, gw, gh, gd
    C = _core.compiled()
    args = (x, uw, uh, ud, bool(inverse), float(bound), float(mw), float(mh), float(md), gy, gl, gx, gw, gh, gd)
    if device_kind == "cuda":
        C.cuda_rq_spline_backward(*args, stream_of(x))
    else:
        C.rq_spline_backward(*args)
    return gx, gw, gh, gd
