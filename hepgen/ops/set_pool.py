"""Masked set pooling: the global read-out of an EPiC layer.

For particles ``x`` [B, N, D] and a ``mask`` [B, N] (bool, or non-negative float weights):

    count = Σ_n mask                    (per set)
    total = Σ_n mask · x                (per set and feature)
    out   = [total / count,  total · sum_scale]      → [B, 2D]

An empty set (count = 0) has mean 0, never NaN. Padded particles are ignored whatever
they hold (the compiled kernels never read them), and their gradient is exactly 0 whatever
the output gradient holds. The mask is a constant for autograd (it gets no gradient).

Mask values (issue 19): a weight of 0 (False) marks padding; every other weight is used as
given, on every backend alike. Negative weights count with their sign (a set whose weights sum
to 0 has mean 0, as an empty set); a NaN or ±inf weight makes its set's outputs NaN/inf as IEEE
arithmetic has it (NaN in, NaN out), it is not refused: refusing would need a look at the
values, a host synchronisation on the GPU that CUDA-graph capture forbids, and a CPU-only
check would make the backends disagree.

Validation: ``_validate`` holds the rules on the schema's arguments (shapes, dtypes, devices,
a finite sum_scale) and runs in the registered ops ``torch.ops.hepgen.set_pool`` and
``set_pool_backward`` (body and fake); the public function converts a bool mask to x's dtype
and runs the same rule. The compiled core checks its views again (csrc/core/set_pool_args.cpp).

The backward is its own op, ``hepgen::set_pool_backward``; it is linear in the incoming
gradient and its adjoint is the forward pooling, so gradients of any order are available.

Spec: hepgen/ops/reference/set_pool.py. Kernels: hepgen/ops/compiled/set_pool.py (cpu, cuda),
hepgen/triton/set_pool.py. Tests: tests/ops/conformance (fed by tests/ops/samples/set_pool.py)
and tests/ops/test_set_pool.py;
tests/ops/fuzz/test_fuzz_set_pool.py (Hypothesis) and tests/ops/test_registered_ops.py (the
registered ops and the compiled core refuse bad calls).
"""

from __future__ import annotations

import torch

from hepgen.ops import _checks
from hepgen.ops._declare import Backward, Op
from hepgen.ops.compiled import set_pool as compiled
from hepgen.ops.reference.set_pool import (
    DEFAULT_SUM_SCALE,
    set_pool_backward_reference,
    set_pool_reference,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_SUM_SCALE",
    "SET_POOL",
    "SET_POOL_BACKWARD",
    "set_pool",
    "set_pool_backward_reference",
    "set_pool_reference",
]


def _triton(name):
    def call(*args):
        from hepgen.triton import set_pool as kernels

        return getattr(kernels, name)(*args)

    return call


# ---- argument checks (run once, before any kernel) ---------------------------------------
#
# `_validate` is the rule, on the schema's arguments as the registered ops receive them;
# `_check` (the public function's) only converts (a bool mask to x's dtype) and then runs the
# same rule, so the two cannot drift apart.


def _validate(x, mask, sum_scale):
    x = _checks.tensor("x", x)
    _checks.floating("x", x)
    _checks.rank("x", x, 3, "[batch, set size, features]")
    mask = _checks.tensor("mask", mask)
    _checks.rank("mask", mask, 2, "[batch, set size]")
    _checks.like("mask", mask, "x", x, tuple(x.shape[:2]), "(batch, set size)")
    _checks.finite_float("sum_scale", sum_scale)


def _validate_backward(grad_out, mask, sum_scale):
    grad_out = _checks.tensor("grad_out", grad_out)
    _checks.floating("grad_out", grad_out)
    _checks.rank("grad_out", grad_out, 2, "[batch, 2 x features]")
    if grad_out.shape[1] % 2:
        raise ValueError(f"grad_out must have an even width [batch, 2 x features], got shape {tuple(grad_out.shape)}")
    mask = _checks.tensor("mask", mask)
    _checks.rank("mask", mask, 2, "[batch, set size]")
    _checks.same_device("mask", mask, "grad_out", grad_out)
    _checks.same_dtype("mask", mask, "grad_out", grad_out)
    if mask.shape[0] != grad_out.shape[0]:
        raise ValueError(f"mask must have grad_out's batch {grad_out.shape[0]}, got shape {tuple(mask.shape)}")
    _checks.finite_float("sum_scale", sum_scale)


def _check(x, mask, sum_scale=DEFAULT_SUM_SCALE):
    x = _checks.tensor("x", x)
    mask = _checks.tensor("mask", mask)
    _checks.floating("x", x)
    _checks.mask_kind("mask", mask)
    sum_scale = _checks.finite_float("sum_scale", sum_scale)
    # One dtype for both inputs keeps every kernel to one template parameter; [B, N] is small.
    args = (x, mask.to(x.dtype), sum_scale)
    _validate(*args)
    return args


# ---- the declarations ---------------------------------------------------------------------

SET_POOL_BACKWARD = Op(
    "set_pool_backward",
    "(Tensor grad_out, Tensor mask, float sum_scale) -> Tensor",
    family="set_pool",
    reference=set_pool_backward_reference,
    fake=lambda grad_out, mask, sum_scale: grad_out.new_empty((mask.shape[0], mask.shape[1], grad_out.shape[1] // 2)),
    backends={
        "cpu": lambda g, m, s: compiled._core_backward(g, m, s, "cpu"),
        "cuda": lambda g, m, s: compiled._core_backward(g, m, s, "cuda"),
        "triton": _triton("backward"),
    },
    # set_pool_backward is linear in grad_out and its adjoint is the pooling itself.
    backward=Backward(
        save=("mask", "sum_scale"),
        op="set_pool",
        grads=lambda pool, s, grad_grad_x: (pool(grad_grad_x, s.mask, s.sum_scale), None, None),
    ),
    validate=_validate_backward,
)

SET_POOL = Op(
    "set_pool",
    "(Tensor x, Tensor mask, float sum_scale) -> Tensor",
    reference=set_pool_reference,
    fake=lambda x, mask, sum_scale: x.new_empty((x.shape[0], 2 * x.shape[2])),
    backends={
        "cpu": lambda x, m, s: compiled._core_forward(x, m, s, "cpu"),
        "cuda": lambda x, m, s: compiled._core_forward(x, m, s, "cuda"),
        "triton": _triton("forward"),
    },
    preference={"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")},
    backward=Backward(
        save=("mask", "sum_scale"),
        op="set_pool_backward",
        grads=lambda pool_backward, s, grad_out: (pool_backward(grad_out, s.mask, s.sum_scale), None, None),
    ),
    check=_check,
    validate=_validate,
)

BACKENDS = SET_POOL.table


# ---- public entry point -----------------------------------------------------------------


def set_pool(x: torch.Tensor, mask: torch.Tensor, sum_scale: float = DEFAULT_SUM_SCALE) -> torch.Tensor:
    """Masked mean and scaled masked sum over a set: [B, N, D], [B, N] → [B, 2D].

    Args:
        x: particle features [B, N, D], floating point; any strides.
        mask: [B, N], bool or floating weights; False/0 marks padding. Other weights are used as
            given: negative ones count with their sign, NaN/inf ones make the set's outputs NaN/inf.
        sum_scale: factor applied to the masked sum (EPiC uses 0.01).

    Returns:
        [B, 2D]: the masked mean (0 for an empty set), then the scaled masked sum.
    """
    return SET_POOL(*_check(x, mask, sum_scale))
