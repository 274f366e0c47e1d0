"""Passing tensors to the torch-free core: data pointers, dtype codes, strides, streams."""

from __future__ import annotations

import torch

# Must match hepgen::DType in csrc/include/hepgen/core.h.
_DTYPE_CODES = {torch.float32: 0, torch.float64: 1, torch.float16: 2, torch.bfloat16: 3}


def dtype_code(t: torch.Tensor) -> int:
    return _DTYPE_CODES[t.dtype]


def stream_of(t: torch.Tensor) -> int:
    """The current CUDA stream of t's device, as an integer handle for the core."""
    return torch.cuda.current_stream(t.device).cuda_stream
