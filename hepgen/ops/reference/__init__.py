"""The specs of hepgen's ops: plain PyTorch, readable, the oracle of every backend.

One module per op (as gsplat keeps a ``_torch_impl.py`` beside its CUDA ops). These modules
import nothing from the kernel layer or the op layer; the kernels (hepgen/triton, the compiled
glue in hepgen/ops/compiled) take their shared constants from here.
"""
