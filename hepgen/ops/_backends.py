"""Backend tables: which implementations of an op exist, which can run, which is chosen.

Every op has up to four backends:

- ``reference``: plain PyTorch; the spec and test oracle; runs anywhere.
- ``cpu``: the compiled core (C++/OpenMP) on CPU tensors.
- ``triton``: Triton kernels on CUDA tensors (and on CPU tensors under ``TRITON_INTERPRET=1``,
  which is how CI tests them; never chosen by default on the CPU).
- ``cuda``: the compiled core's CUDA kernels on CUDA tensors.

By default each call takes the first backend of the op's preference list for the tensor's
device that can run the inputs' dtype. ``use_backend(name)`` (a context manager) or the
environment variable ``HEPGEN_BACKEND`` force one; a forced backend that cannot run the
call is an error that says why, never a silent fallback.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib.util
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from hepgen import _core

BACKEND_NAMES = ("reference", "cpu", "triton", "cuda")

_HALF_AND_UP = frozenset({torch.float16, torch.bfloat16, torch.float32, torch.float64})
_SINGLE_AND_DOUBLE = frozenset({torch.float32, torch.float64})

# Forced backend for ops in this context: None, a name, or {op name: backend name}.
_forced: contextvars.ContextVar[str | dict[str, str] | None] = contextvars.ContextVar(
    "hepgen_forced_backend", default=None
)


def triton_interpreted() -> bool:
    """Triton kernels run on the CPU through the interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.cache
def _triton_import_error() -> str:
    if importlib.util.find_spec("triton") is None:
        return "triton is not installed (pip install 'hepgen[triton]')"
    try:
        import triton  # noqa: F401
    except Exception as err:  # a broken install must not break hepgen
        return f"triton failed to import ({err})"
    return ""


def why_unavailable(backend: str, device: torch.device, dtype: torch.dtype, op: str | None = None) -> str:
    """Why `backend` cannot run a call on (device, dtype) (of `op`, if given); "" when it can."""
    why = _why_backend_unavailable(backend, device, dtype)
    if not why and op is not None:
        if op not in _REGISTRY:
            raise ValueError(f"unknown op {op!r}; ops are {', '.join(sorted(_REGISTRY))}")
        why = _REGISTRY[op].why_restricted(backend, device, dtype)
    return why


def _why_backend_unavailable(backend: str, device: torch.device, dtype: torch.dtype) -> str:
    kind = device.type
    if backend == "reference":
        return ""
    if backend == "cpu":
        if kind != "cpu":
            return f"the cpu backend runs on CPU tensors, not {kind}"
        if _core.compiled_or_none() is None:
            return _core.why_not_compiled()
        if dtype not in _SINGLE_AND_DOUBLE:
            return f"the cpu backend supports float32 and float64, not {dtype}"
        return ""
    if backend == "cuda":
        if kind != "cuda":
            return f"the cuda backend runs on CUDA tensors, not {kind}"
        if _core.compiled_or_none() is None:
            return _core.why_not_compiled()
        if not _core.cuda_built():
            return "hepgen was built without CUDA kernels (rebuild with nvcc available, HEPGEN_CUDA=ON)"
        if dtype not in _HALF_AND_UP:
            return f"the cuda backend supports float16, bfloat16, float32 and float64, not {dtype}"
        return ""
    if backend == "triton":
        why = _triton_import_error()
        if why:
            return why
        if kind == "cpu" and not triton_interpreted():
            return "triton runs on CUDA tensors (or on CPU tensors with TRITON_INTERPRET=1)"
        if kind not in ("cpu", "cuda"):
            return f"triton does not run on {kind} tensors"
        if dtype not in _HALF_AND_UP:
            return f"the triton backend supports float16, bfloat16, float32 and float64, not {dtype}"
        return ""
    return f"unknown backend {backend!r}; expected one of {', '.join(BACKEND_NAMES)}"


@dataclass
class OpBackends:
    """The implementations of one op and its preference order per device type."""

    op: str
    preference: dict[str, tuple[str, ...]]
    impls: dict[str, dict[str, Callable]] = field(default_factory=dict)
    # (backend, device type) -> (dtypes it runs, why not others): an op's own limits beyond
    # the backend's (e.g. a Triton kernel whose float64 dots the GPU compiler cannot lower).
    restrictions: dict[tuple[str, str], tuple[frozenset, str]] = field(default_factory=dict)

    def register(self, backend: str, **fns: Callable) -> None:
        """Set `backend`'s functions (forward=..., backward=..., ...), replacing any it had."""
        if backend not in BACKEND_NAMES:
            raise ValueError(f"backend must be one of {BACKEND_NAMES}, got {backend!r}")
        self.impls[backend] = fns

    def add(self, backend: str, entry: str, fn: Callable) -> None:
        """Add one function (an op's "forward", "backward", "decode", ...) to `backend`'s entries."""
        if backend not in BACKEND_NAMES:
            raise ValueError(f"backend must be one of {BACKEND_NAMES}, got {backend!r}")
        self.impls.setdefault(backend, {})[entry] = fn

    def restrict(self, backend: str, device_type: str, dtypes, reason: str) -> None:
        """Limit `backend` on `device_type` to `dtypes` for this op; `reason` says why."""
        self.restrictions[(backend, device_type)] = (frozenset(dtypes), reason)

    def why_restricted(self, backend: str, device: torch.device, dtype: torch.dtype) -> str:
        limit = self.restrictions.get((backend, device.type))
        if limit is None or dtype in limit[0]:
            return ""
        return f"{self.op}'s {backend} backend does not run {dtype} on {device.type}: {limit[1]}"

    def why_not(self, backend: str, device: torch.device, dtype: torch.dtype) -> str:
        return _why_backend_unavailable(backend, device, dtype) or self.why_restricted(backend, device, dtype)

    def available(self, device: torch.device, dtype: torch.dtype) -> list[str]:
        return [b for b in BACKEND_NAMES if b in self.impls and not self.why_not(b, device, dtype)]

    def choose(self, device: torch.device, dtype: torch.dtype) -> str:
        forced = forced_backend(self.op)
        if forced is not None:
            if forced not in self.impls:
                raise RuntimeError(
                    f"{self.op}: backend {forced!r} is not implemented for this op (it has {', '.join(self.impls)})"
                )
            why = self.why_not(forced, device, dtype)
            if why:
                raise RuntimeError(
                    f"{self.op}: backend {forced!r} was requested but cannot run {dtype} tensors on {device}: {why}"
                )
            return forced
        for backend in self.preference.get(device.type, ("reference",)):
            if backend in self.impls and not self.why_not(backend, device, dtype):
                return backend
        return "reference"

    def get(self, backend: str, fn: str) -> Callable:
        return self.impls[backend][fn]


_REGISTRY: dict[str, OpBackends] = {}


def op_backends(op: str, preference: dict[str, tuple[str, ...]] | None = None) -> OpBackends:
    """The backend table of an op, created and registered on first use."""
    table = _REGISTRY.get(op)
    if table is None:
        table = _REGISTRY[op] = OpBackends(op=op, preference=dict(preference or {}))
    elif preference is not None:
        table.preference = dict(preference)
    return table


def registered_ops() -> dict[str, OpBackends]:
    """{op name: backend table} of every op (a backward or decode op shares its op's table)."""
    return dict(_REGISTRY)


def _validate_name(name: str) -> str:
    if name not in BACKEND_NAMES:
        raise ValueError(f"backend must be one of {', '.join(BACKEND_NAMES)}, got {name!r}")
    return name


def forced_backend(op: str) -> str | None:
    """The backend that ``use_backend`` (this context) or HEPGEN_BACKEND forces on ``op``'s
    family, or None: for an op's own paths that bypass the backend table (rq_spline's
    nflows-compatible derivative count runs on the reference alone and must refuse a forced
    compiled backend rather than ignore it)."""
    forced = _forced.get()
    if forced is None:
        env = os.environ.get("HEPGEN_BACKEND", "").strip()
        if not env:
            return None
        if env not in BACKEND_NAMES:
            raise ValueError(f"HEPGEN_BACKEND must be one of {', '.join(BACKEND_NAMES)}, got {env!r}")
        return env
    if isinstance(forced, dict):
        return forced.get(op)
    return forced


def records_forced_backend(fn: Callable) -> Callable:
    """Decorates a forward (or setup_context) taking ``ctx`` first: remembers the override in force.

    Autograd runs the backward pass of CUDA tensors on its own worker thread, where the
    (context-local) setting of ``use_backend`` is not seen; the backward must run on the backend
    its forward ran on, so the override travels in ``ctx`` (see ``under_forced_backend``).
    """

    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        ctx.hepgen_forced_backend = _forced.get()
        return fn(ctx, *args, **kwargs)

    return wrapper


def under_forced_backend(fn: Callable) -> Callable:
    """Decorates a backward taking ``ctx`` first: runs it under the override its forward saw."""

    @functools.wraps(fn)
    def wrapper(ctx, *args, **kwargs):
        token = _forced.set(getattr(ctx, "hepgen_forced_backend", None))
        try:
            return fn(ctx, *args, **kwargs)
        finally:
            _forced.reset(token)

    return wrapper


@contextlib.contextmanager
def use_backend(backend: str | dict[str, str]) -> Iterator[None]:
    """Force a backend for every op (a name) or for some ops ({op: name}) inside the block.

    >>> with hepgen.ops.use_backend("reference"):
    ...     out = hepgen.ops.set_pool(x, mask)
    """
    if isinstance(backend, dict):
        for op, name in backend.items():
            _validate_name(name)
            if op not in _REGISTRY:
                raise ValueError(f"unknown op {op!r}; ops are {', '.join(sorted(_REGISTRY))}")
        value: str | dict[str, str] = dict(backend)
    elif isinstance(backend, str):
        value = _validate_name(backend)
    else:
        raise TypeError(f"backend must be a backend name or a dict of op -> name, got {type(backend).__name__}")
    token = _forced.set(value)
    try:
        yield
    finally:
        _forced.reset(token)
