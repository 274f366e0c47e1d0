"""Access to the compiled core, hepgen._C, which may be absent.

Nothing here imports torch. The extension is loaded once, on first use; when it is
missing (a source tree without a build) every compiled backend reports itself unavailable
with the reason, and the pure-PyTorch references still work.
"""

from __future__ import annotations

import functools
import os
from types import ModuleType


@functools.cache
def _load() -> tuple[ModuleType | None, str]:
    try:
        from hepgen import _C
    except ImportError as err:
        return None, f"the compiled core hepgen._C is not built or failed to load ({err})"
    return _C, ""


def compiled() -> ModuleType:
    """The hepgen._C module; RuntimeError saying why when it cannot be loaded."""
    module, why = _load()
    if module is None:
        raise RuntimeError(why + "; reinstall hepgen with `pip install .`")
    return module


def compiled_or_none() -> ModuleType | None:
    return _load()[0]


def why_not_compiled() -> str:
    return _load()[1]


@functools.cache
def build_info() -> dict:
    """What the compiled core contains (empty dict when it is not built)."""
    module = compiled_or_none()
    return dict(module.build_info()) if module is not None else {}


def cuda_built() -> bool:
    return bool(build_info().get("cuda", False))


def install_path(*parts: str) -> str:
    """A path inside the installed package next to the compiled core (headers, CMake files)."""
    root = os.path.dirname(compiled().__file__)
    path = os.path.join(root, *parts)
    if not os.path.exists(path):
        raise FileNotFoundError(f"{path} does not exist: is hepgen installed from a wheel or `pip install .`?")
    return path
