"""The fused local update of an EPiC layer, with the pooling the next global update needs.

For particles ``x`` [B, N, H], a ``mask`` [B, N], weights ``w1`` [H1, H] and ``w2`` [H, H1]
and per-set biases ``bias1`` [B, H1] and ``bias2`` [B, H]:

    z1 = x · w1ᵀ + bias1[b]          h = act(z1)             act = LeakyReLU(negative_slope)
    z2 = h · w2ᵀ + bias2[b] + x      y = mask · act(z2)      (exactly 0 on padding)
    pooled = set_pool(y, mask, sum_scale) = [masked mean of y, sum_scale · masked sum of y]

This is EPiC's x' = act(W4·act(W3·[x, g', t, c]) + x) without the per-particle
concatenation: the columns of W3 (and W4) that multiply the per-set vector [g', t, c] are
applied once per set by the caller and enter here as ``bias1`` (``bias2``). Padded particles
are never computed and never read, and get exactly 0 as output and gradient. Returns
``(y, pooled)``.

Mask values follow set_pool's rule (hepgen/ops/set_pool.py): 0 marks padding, other weights
are used as given. A negative weight flips y's sign, so the backward reads act'(z2) from the
sign of y relative to the weight's, not from y alone (which gave such rows wrong gradients).
Validation: ``_validate``/``_validate_backward`` hold the rules on the schema's arguments and
run in the registered ops (body and fake); the public function converts (the mask to x's
dtype, a shared [H] bias to [B, H]) and runs the same rule.

The backward is its own op, ``hepgen::epic_local_backward``, returning the gradients of x,
w1, bias1, w2 and bias2; it recomputes h instead of saving it. It has no autograd formula
itself (no double backward).

Backends: ``cpu`` runs the two matrix products in BLAS (torch.mm) over the packed real
particles, and everything around them (bias, activation, residual, mask, pooling, and the
gradients of those) in fused C++ passes — on the CPU, BLAS beats a hand-written GEMM
(docs/epic.md). ``triton`` and ``cuda`` run the whole forward, and the whole backward except
the weight-gradient GEMMs (torch), in one kernel per set.

Spec: hepgen/ops/reference/epic_local.py. Kernels: hepgen/ops/compiled/epic_local.py (cpu, cuda),
hepgen/triton/epic_local.py. Tests: tests/ops/conformance (fed by tests/ops/samples/epic_local.py)
and tests/ops/test_epic_local.py (the published layer, CPU chunking);
tests/ops/fuzz/test_fuzz_epic_local.py (Hypothesis) and tests/ops/test_registered_ops.py (the
registered ops and the compiled core refuse bad calls).
"""

from __future__ import annotations

import torch

from hepgen.ops import _checks
from hepgen.ops._declare import Backward, Op
from hepgen.ops.compiled import epic_local as compiled
from hepgen.ops.reference.epic_local import (
    DEFAULT_NEGATIVE_SLOPE,
    epic_local_backward_reference,
    epic_local_reference,
)
from hepgen.ops.reference.set_pool import DEFAULT_SUM_SCALE

__all__ = [
    "BACKENDS",
    "DEFAULT_NEGATIVE_SLOPE",
    "EPIC_LOCAL",
    "EPIC_LOCAL_BACKWARD",
    "epic_local",
    "epic_local_backward_reference",
    "epic_local_reference",
]


# ---- triton: one kernel per set; weight-gradient GEMMs in torch ---------------------------


def _triton_forward(x, mask, w1, bias1, w2, bias2, sum_scale, slope):
    from hepgen.triton import epic_local as kernels

    return kernels.forward(x, mask, w1, bias1.contiguous(), w2, bias2.contiguous(), sum_scale, slope)


def _triton_backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, slope):
    from hepgen.triton import epic_local as kernels

    dx, dz1, h, dz2, gb1, gb2 = kernels.backward(
        grad_y.contiguous(),
        grad_pooled.contiguous(),
        x,
        y.contiguous(),
        mask,
        w1,
        bias1.contiguous(),
        w2,
        sum_scale,
        slope,
    )
    dw1, dw2 = compiled._weight_grads(x, mask, dz1, h, dz2)
    return dx, dw1, gb1, dw2, gb2


# ---- argument checks (run once, before any kernel) ---------------------------------------
#
# `_validate` is the rule, on the schema's arguments as the registered ops receive them;
# `_check` (the public function's) only converts (the mask to x's dtype, a shared [H1] bias to
# [B, H1]) and then runs the same rule, so the two cannot drift apart.


def _validate_params(x, mask, w1, bias1, w2, sum_scale, negative_slope) -> tuple[int, int, int, int]:
    """The arguments forward and backward share; returns (B, N, H, H1)."""
    x = _checks.tensor("x", x)
    _checks.floating("x", x)
    _checks.rank("x", x, 3, "[batch, set size, features]")
    B, N, H = x.shape
    mask = _checks.tensor("mask", mask)
    _checks.rank("mask", mask, 2, "[batch, set size]")
    _checks.like("mask", mask, "x", x, (B, N), "(batch, set size)")
    for name, w in (("w1", w1), ("w2", w2)):
        _checks.rank(name, _checks.tensor(name, w), 2, "[out features, in features]")
        _checks.same_device(name, w, "x", x)
        _checks.same_dtype(name, w, "x", x)
    H1 = w1.shape[0]
    if w1.shape[1] != H:
        raise ValueError(f"w1 must have shape (hidden, features) = (H1, {H}), got {tuple(w1.shape)}")
    _checks.shape("w2", w2, (H, H1), "(features, hidden)")
    _checks.like("bias1", bias1, "x", x, (B, H1), f"(batch, {H1})")
    _checks.finite_float("sum_scale", sum_scale)
    slope = _checks.finite_float("negative_slope", negative_slope)
    if slope <= 0:
        # The backward reads act'(z) from the sign of act(z), which needs a positive slope.
        raise ValueError(f"negative_slope must be > 0, got {slope}")
    return B, N, H, H1


def _validate(x, mask, w1, bias1, w2, bias2, sum_scale, negative_slope):
    B, _N, H, _H1 = _validate_params(x, mask, w1, bias1, w2, sum_scale, negative_slope)
    _checks.like("bias2", bias2, "x", x, (B, H), f"(batch, {H})")


def _validate_backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, negative_slope):
    B, N, H, _H1 = _validate_params(x, mask, w1, bias1, w2, sum_scale, negative_slope)
    _checks.like("grad_y", grad_y, "x", x, (B, N, H), "x's shape")
    _checks.like("grad_pooled", grad_pooled, "x", x, (B, 2 * H), "(batch, 2 x features)")
    _checks.like("y", y, "x", x, (B, N, H), "x's shape")


def _shared_bias(bias: object, x: torch.Tensor) -> object:
    """A bias [size] shared by every set, as the [B, size] view the op takes (no copy)."""
    if isinstance(bias, torch.Tensor) and bias.dim() == 1 and x.dim() == 3:
        return bias.unsqueeze(0).expand(x.shape[0], bias.shape[0])
    return bias


def _check(x, mask, w1, bias1, w2, bias2, sum_scale=DEFAULT_SUM_SCALE, negative_slope=DEFAULT_NEGATIVE_SLOPE):
    """epic_local's argument checks: its arguments -> EPIC_LOCAL's (TypeError/ValueError naming the argument)."""
    x = _checks.tensor("x", x)
    mask = _checks.tensor("mask", mask)
    _checks.floating("x", x)
    _checks.mask_kind("mask", mask)
    args = (
        x,
        mask.to(x.dtype),
        w1,
        _shared_bias(bias1, x),
        w2,
        _shared_bias(bias2, x),
        _checks.finite_float("sum_scale", sum_scale),
        _checks.finite_float("negative_slope", negative_slope),
    )
    _validate(*args)
    return args


# ---- the declarations ---------------------------------------------------------------------

EPIC_LOCAL_BACKWARD = Op(
    "epic_local_backward",
    "(Tensor grad_y, Tensor grad_pooled, Tensor x, Tensor mask, Tensor w1, Tensor bias1, Tensor w2, Tensor y, "
    "float sum_scale, float negative_slope) -> (Tensor, Tensor, Tensor, Tensor, Tensor)",
    family="epic_local",
    reference=epic_local_backward_reference,
    fake=lambda grad_y, grad_pooled, x, mask, w1, bias1, w2, y, *scalars: (
        torch.empty_like(x),
        torch.empty_like(w1),
        x.new_empty((x.shape[0], w1.shape[0])),
        torch.empty_like(w2),
        x.new_empty((x.shape[0], x.shape[2])),
    ),
    backends={"cpu": compiled._cpu_backward, "cuda": compiled._cuda_backward, "triton": _triton_backward},
    validate=_validate_backward,
)


def _grads(local_backward, s, grad_y, grad_pooled):
    # On the custom-op path an output nobody used has no gradient (None).
    if grad_y is None:
        grad_y = torch.zeros_like(s.y)
    if grad_pooled is None:
        grad_pooled = s.x.new_zeros((s.x.shape[0], 2 * s.x.shape[2]))
    dx, dw1, db1, dw2, db2 = local_backward(
        grad_y, grad_pooled, s.x, s.mask, s.w1, s.bias1, s.w2, s.y, s.sum_scale, s.negative_slope
    )
    return dx, None, dw1, db1, dw2, db2, None, None


EPIC_LOCAL = Op(
    "epic_local",
    "(Tensor x, Tensor mask, Tensor w1, Tensor bias1, Tensor w2, Tensor bias2, float sum_scale, "
    "float negative_slope) -> (Tensor, Tensor)",
    outputs=("y", "pooled"),
    reference=epic_local_reference,
    fake=lambda x, *rest: (x.new_empty(x.shape), x.new_empty((x.shape[0], 2 * x.shape[2]))),
    backends={"cpu": compiled._cpu_forward, "cuda": compiled._cuda_forward, "triton": _triton_forward},
    preference={"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")},
    backward=Backward(
        save=("x", "mask", "w1", "bias1", "w2", "y", "sum_scale", "negative_slope"),
        op="epic_local_backward",
        grads=_grads,
    ),
    check=_check,
    validate=_validate,
)

BACKENDS = EPIC_LOCAL.table


# ---- public entry point -----------------------------------------------------------------


def epic_local(
    x: torch.Tensor,
    mask: torch.Tensor,
    w1: torch.Tensor,
    bias1: torch.Tensor,
    w2: torch.Tensor,
    bias2: torch.Tensor,
    sum_scale: float = DEFAULT_SUM_SCALE,
    negative_slope: float = DEFAULT_NEGATIVE_SLOPE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """EPiC local update fused with the next pooling: returns (y [B, N, H], pooled [B, 2H]).

    Args:
        x: particle features [B, N, H], floating point; any strides.
        mask: [B, N], bool or floating (0 marks padding; other values, negative ones included,
            weight y and the pooling; NaN/inf propagate).
        w1: first linear layer's weight on the particle features, [H1, H].
        bias1: per-set bias of the first layer [B, H1] (or [H1], shared): W3's columns on
            [g', t, c] applied to the set's vector, plus W3's bias.
        w2: second linear layer's weight [H, H1].
        bias2: per-set bias of the second layer [B, H] (or [H]).
        sum_scale: factor on the pooled sum (EPiC: 0.01).
        negative_slope: LeakyReLU slope (EPiC: 0.01).
    """
    return EPIC_LOCAL(*_check(x, mask, w1, bias1, w2, bias2, sum_scale, negative_slope))
