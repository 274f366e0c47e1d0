"""What an op gives the conformance suite: its public function, its reference, its samples.

Each op has a module ``cases_<op>.py`` here defining ``CASES = OpCases(...)``. Samples are
built by ``sample_inputs(device, dtype)``: the same values (drawn in float64, then rounded)
for every dtype, so the float64 and float32 runs of a sample are comparable, and the strided
views built after the rounding (``Tensor.to`` would make them contiguous).
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch


@dataclass
class Sample:
    """One call of a public function: args/kwargs, and which tensors get gradients.

    grad: paths of the differentiable tensors, ``i`` (args[i]) or ``(i, j)`` (args[i][j]).
    fn: the public function to call when it is not the op's main one (e.g. a decode step).
    """

    name: str
    args: tuple
    kwargs: dict = field(default_factory=dict)
    grad: tuple = ()
    fn: Callable | None = None

    def tensors(self) -> list[torch.Tensor]:
        out = []
        for a in list(self.args) + list(self.kwargs.values()):
            if isinstance(a, torch.Tensor):
                out.append(a)
            elif isinstance(a, (list, tuple)):
                out.extend(t for t in a if isinstance(t, torch.Tensor))
        return out

    def with_leaves(self) -> tuple[Sample, list[torch.Tensor]]:
        """A copy whose `grad` tensors are fresh leaves with requires_grad (strides kept), and those leaves."""
        args = [list(a) if isinstance(a, list) else a for a in self.args]
        leaves = []
        for path in self.grad:
            i, j = (path, None) if isinstance(path, int) else path
            t = (args[i] if j is None else args[i][j]).detach().requires_grad_()
            if j is None:
                args[i] = t
            else:
                args[i][j] = t
            leaves.append(t)
        return Sample(self.name, tuple(args), dict(self.kwargs), self.grad, self.fn), leaves

    def contiguous(self) -> Sample:
        """The same values with every tensor contiguous (and padded inputs kept as they are)."""

        def dense(a):
            if isinstance(a, torch.Tensor):
                return a.contiguous()
            if isinstance(a, list):
                return [dense(t) for t in a]
            return a

        return Sample(
            self.name,
            tuple(dense(a) for a in self.args),
            {k: dense(v) for k, v in self.kwargs.items()},
            self.grad,
            self.fn,
        )

    def strided(self) -> bool:
        return any(not t.is_contiguous() for t in self.tensors())


@dataclass
class BadInput:
    """A call the public function must refuse with `error` whose message matches `match`."""

    name: str
    fn: Callable
    args: tuple
    kwargs: dict
    error: type
    match: str


@dataclass
class OpCases:
    """The conformance suite's view of one op (its backend table's name is `op`).

    reference: the spec with the public function's signature, returning a tensor or a tuple.
    factor, grad_factor, floor_ulps: the oracle bound (tests/oracle.py) for outputs and
        gradients; floor_ulps=None keeps the oracle's default floor.
    float64_rtol: bound of a float64 run against the float64 reference, relative to the
        largest reference value (or 1).
    layout_exact: strides must not change a single bit of the outputs.
    known_limits: (backend, message) of documented refusals (a RuntimeError whose message
        holds `message`): the test is skipped with that message, not failed.
    """

    op: str
    public: Callable
    reference: Callable
    sample_inputs: Callable[[str, torch.dtype], Iterator[Sample]]
    opcheck_samples: Callable[[torch.dtype], Iterator[Sample]]
    gradcheck_samples: Callable[[], Iterator[Sample]]
    bad_inputs: list[BadInput]
    factor: float = 4.0
    grad_factor: float = 4.0
    floor_ulps: float | None = None
    float64_rtol: float = 1e-12
    layout_exact: bool = False
    double_backward: bool = False
    # Tighter than gradcheck's default rtol of 1e-3, which lets a 0.1% error in a backward pass.
    gradcheck_tolerance: dict = field(default_factory=lambda: dict(rtol=1e-5, atol=1e-8))
    known_limits: tuple = ()

    def sample(self, name: str, device: str, dtype: torch.dtype) -> Sample:
        for s in self.sample_inputs(device, dtype):
            if s.name == name:
                return s
        raise KeyError(name)

    def sample_names(self) -> list[str]:
        return [s.name for s in self.sample_inputs("cpu", torch.float64)]

    def call(self, sample: Sample):
        """Outputs of the public function as a tuple of tensors."""
        out = (sample.fn or self.public)(*sample.args, **sample.kwargs)
        return out if isinstance(out, tuple) else (out,)

    def call_reference(self, sample: Sample):
        out = self.reference(*sample.args, **sample.kwargs)
        return out if isinstance(out, tuple) else (out,)


def seeded(name: str) -> torch.Generator:
    """A generator seeded from a sample's name: fresh inputs per sample, reproducible."""
    return torch.Generator().manual_seed(zlib.crc32(name.encode()))


def converter(device: str, dtype: torch.dtype) -> Callable:
    """t -> t on `device`, in `dtype` if it is floating point (masks and indices keep theirs)."""

    def to(t: torch.Tensor) -> torch.Tensor:
        return t.to(device=device, dtype=dtype if t.is_floating_point() else t.dtype)

    return to
