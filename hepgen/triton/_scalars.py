"""Float scalars at float64 accuracy in Triton kernels.

Triton passes a Python float to a kernel as float32 (the interpreter too), which costs a
float64 kernel its accuracy (measured on an H100: set_pool in float64 off by 4e-9 through
sum_scale alone). A scalar therefore travels as two float32 parts, hi + lo, whose sum is
within 2^-48 of the value; ``joined`` adds them in the kernel's accumulation type (in
float32 that is hi itself).
"""

from __future__ import annotations

import struct

import triton
import triton.language as tl


def split_scalar(value: float) -> tuple[float, float]:
    """(hi, lo): hi = value rounded to float32, lo = the rest (itself exact in float32 to 2^-24)."""
    hi = struct.unpack("f", struct.pack("f", float(value)))[0]
    return hi, float(value) - hi


@triton.jit
def joined(hi, lo, ACC: tl.constexpr):
    return tl.cast(hi, ACC) + tl.cast(lo, ACC)
