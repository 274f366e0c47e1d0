"""hepgen: fast generative models for LHC simulation on fused kernels.

The model layer is PyTorch; its hot paths (set pooling / EPiC layers, rational-quadratic
splines, ODE steps, masked attention) are custom ops in :mod:`hepgen.ops`, each with a
pure-PyTorch reference and compiled C++/OpenMP, Triton and CUDA backends.
"""

from hepgen._version import __version__

__all__ = ["__version__", "cmake_dir", "include_dir"]


def include_dir() -> str:
    """Directory of the C++ headers of the torch-free core (``hepgen/...h``)."""
    from hepgen._core import install_path

    return install_path("include")


def cmake_dir() -> str:
    """Directory to pass as ``-Dhepgen_DIR=...`` for ``find_package(hepgen)`` in C++ projects."""
    from hepgen._core import install_path

    return install_path("lib", "cmake", "hepgen")
