"""Test-wide setup.

Without a GPU, Triton kernels are tested on the CPU through Triton's interpreter; the
variable must be set before any Triton kernel module is imported, hence here.
"""

import os

import torch

if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")
