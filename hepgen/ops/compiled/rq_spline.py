"""The compiled-core glue of rq_spline: unpacks tensors for hepgen._C (cpu and cuda).

These functions are moved verbatim from hepgen/ops/rq_spline.py (the cpu and cuda backends of the
op's declaration); keep their bodies in step with the C++ entry points they call.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops._compiled import dtype_code, stream_of


def _row_stride(t: torch.Tensor) -> int:
    # The kernels read row r of a [N, K] parameter tensor at r * stride(0), unit stride in K.
    return t.stride(0) if t.shape[0] > 1 else t.shape[1]


def _core_forward(x, uw, uh, ud, inverse, bound, mw, mh, md, device_kind):
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    logdet = torch.empty_like(out)
    if x.numel() == 0:
        return out, logdet
    C = _core.compiled()
    args = (dtype_code(x), x.numel(), uw.shape[1], x.data_ptr(),
            uw.data_ptr(), _row_stride(uw), uh.data_ptr(), _row_stride(uh), ud.data_ptr(), _row_stride(ud),
            bool(inverse), float(bound), float(mw), float(mh), float(md), out.data_ptr(), logdet.data_ptr())
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
    args = (dtype_code(x), N, K, x.data_ptr(),
            uw.data_ptr(), _row_stride(uw), uh.data_ptr(), _row_stride(uh), ud.data_ptr(), _row_stride(ud),
            bool(inverse), float(bound), float(mw), float(mh), float(md), gy.data_ptr(), gl.data_ptr(),
            gx.data_ptr(), gw.data_ptr(), gh.data_ptr(), gd.data_ptr())
    if device_kind == "cuda":
        C.cuda_rq_spline_backward(*args, stream_of(x))
    else:
        C.rq_spline_backward(*args)
    return gx, gw, gh, gd
