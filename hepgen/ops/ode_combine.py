"""The stage and update arithmetic of explicit ODE/SDE solvers, fused into one pass.

    out = mask · (y_coeff · y + h[s] · Σ_i coeffs[i] · k_i)

for a state ``y`` [S, ...] of S samples, derivatives ``ks`` (same shape as y), a step per
sample ``h`` [S] and an optional ``mask`` [S, R] over the state's second axis (particles):
padded particles come out exactly 0 and their inputs are never read.

Every Runge–Kutta stage, update and error estimate, an Euler–Maruyama step (a noise term) and
a DDIM step (y_coeff ≠ 1) has this form, so a solver step is one launch per combination
instead of one per multiply and add.

What a mask means, on every backend: a row whose weight is 0 (False) comes out exactly 0, and
nothing of it (a NaN or inf in y, a k or the output gradient) reaches the output or any
gradient (grad_h included: selects, never products with 0). Any other weight multiplies the
row, NaN and inf included. Validation: ``_validate`` holds the rules on the schema's arguments
(one finite coefficient per term, at most 16 terms, h [S], the mask [S, R], dtypes, devices)
and runs in the registered ops (body and fake); the public function converts (a float or 0-d
h to [S], the mask to y's dtype) and runs the same rule.

The backward is its own op (``hepgen::ode_combine_backward``). It is elementwise and runs in
plain PyTorch on every backend: solvers sample under no_grad, and differentiating through a
sampling loop is rare enough not to deserve kernels of its own.

Spec: hepgen/ops/reference/ode_combine.py. Kernels: hepgen/ops/compiled/ode_combine.py (cpu,
cuda), hepgen/triton/ode_combine.py. Tests: tests/ops/conformance (fed by
tests/ops/samples/ode_combine.py) and tests/ops/test_ode_combine.py;
tests/ops/fuzz/test_fuzz_ode_combine.py (Hypothesis) and tests/ops/test_registered_ops.py (the
registered ops and the compiled core refuse bad calls).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from hepgen.ops import _checks
from hepgen.ops._backends import BACKEND_NAMES
from hepgen.ops._declare import Backward, Op
from hepgen.ops.compiled import ode_combine as compiled
from hepgen.ops.reference.ode_combine import (
    MAX_TERMS,
    _view,
    ode_combine_backward_reference,
    ode_combine_reference,
)

__all__ = [
    "BACKENDS",
    "MAX_TERMS",
    "ODE_COMBINE",
    "ODE_COMBINE_BACKWARD",
    "ode_combine",
    "ode_combine_backward_reference",
    "ode_combine_reference",
]


def _triton_forward(y, ks, coeffs, h, mask, y_coeff):
    from hepgen.triton import ode_combine as kernels

    S, R, F = _view(y, mask)
    return kernels.combine(
        y.contiguous(),
        [k.contiguous() for k in ks],
        coeffs,
        h.contiguous(),
        None if mask is None else mask.contiguous(),
        y_coeff,
        S,
        R,
        F,
    )


# ---- argument checks (run once, before any kernel) ---------------------------------------
#
# `_validate` is the rule, on the schema's arguments as the registered ops receive them;
# `_check` (the public function's) only converts (a float or 0-d h to [S], the mask to y's
# dtype) and then runs the same rule, so the two cannot drift apart.


def _validate_terms(name: str, y: torch.Tensor, ks, coeffs) -> None:
    if isinstance(ks, torch.Tensor) or not isinstance(ks, (list, tuple)):
        raise TypeError(f"ks must be a list of tensors, got {type(ks).__name__}")
    coeffs = _checks.finite_floats("coeffs", coeffs)
    if len(ks) != len(coeffs):
        raise ValueError(f"coeffs must have one entry per term in ks ({len(ks)}), got {len(coeffs)}")
    if len(ks) > MAX_TERMS:
        raise ValueError(f"ks may hold at most {MAX_TERMS} terms, got {len(ks)}")
    for i, k in enumerate(ks):
        k = _checks.tensor(f"ks[{i}]", k)
        if k.shape != y.shape:
            raise ValueError(f"ks[{i}] must have {name}'s shape {tuple(y.shape)}, got {tuple(k.shape)}")
        _checks.same_dtype(f"ks[{i}]", k, name, y)
        _checks.same_device(f"ks[{i}]", k, name, y)


def _validate(y, ks, coeffs, h, mask, y_coeff, name="y"):
    y = _checks.tensor(name, y)
    _checks.floating(name, y)
    if y.dim() < 1:
        raise ValueError(f"{name} must have a leading sample dimension [S, ...], got shape {tuple(y.shape)}")
    _validate_terms(name, y, ks, coeffs)
    S = y.shape[0]
    h = _checks.tensor("h", h)
    _checks.same_device("h", h, name, y)
    if tuple(h.shape) != (S,):
        raise ValueError(f"h must be a float or a tensor of shape (samples,) = ({S},), got {tuple(h.shape)}")
    _checks.same_dtype("h", h, name, y)
    if mask is not None:
        _checks.tensor("mask", mask)
        _checks.rank("mask", mask, 2, "[samples, particles]")
        if y.dim() < 2 or tuple(mask.shape) != tuple(y.shape[:2]):
            raise ValueError(f"mask must have shape {name}.shape[:2] = {tuple(y.shape[:2])}, got {tuple(mask.shape)}")
        _checks.same_device("mask", mask, name, y)
        _checks.same_dtype("mask", mask, name, y)
    _checks.finite_float("y_coeff", y_coeff)


def _validate_backward(grad, ks, coeffs, h, mask, y_coeff):
    _validate(grad, ks, coeffs, h, mask, y_coeff, name="grad")


def _check(y, ks, coeffs, h, mask=None, y_coeff=1.0):
    """ode_combine's argument checks: its arguments -> ODE_COMBINE's (TypeError/ValueError naming the argument)."""
    y = _checks.tensor("y", y)
    _checks.floating("y", y)
    if isinstance(ks, torch.Tensor) or not hasattr(ks, "__iter__"):
        raise TypeError(f"ks must be a sequence of tensors, got {type(ks).__name__}")
    ks = list(ks)
    coeffs = _checks.finite_floats("coeffs", coeffs)
    S = y.shape[0] if y.dim() else 0
    if isinstance(h, torch.Tensor):
        if h.is_complex() or h.dtype == torch.bool:
            raise TypeError(f"h must be real, got {h.dtype}")
        if h.dim() == 0:
            h = h.expand(S)
        h = h.to(y.dtype)
    else:
        h = torch.full((S,), _checks.finite_float("h", h), dtype=y.dtype, device=y.device)
    if mask is not None:
        _checks.mask_kind("mask", _checks.tensor("mask", mask))
        mask = mask.to(y.dtype)
    args = (y, ks, coeffs, h, mask, _checks.finite_float("y_coeff", y_coeff))
    _validate(*args)
    return args


# ---- the declarations ---------------------------------------------------------------------

ODE_COMBINE_BACKWARD = Op(
    "ode_combine_backward",
    "(Tensor grad, Tensor[] ks, float[] coeffs, Tensor h, Tensor? mask, float y_coeff) -> (Tensor, Tensor[], Tensor)",
    family="ode_combine",
    reference=ode_combine_backward_reference,
    fake=lambda grad, ks, coeffs, h, mask, y_coeff: (
        torch.empty_like(grad),
        [torch.empty_like(grad) for _ in ks],
        torch.empty_like(h),
    ),
    # Elementwise: plain PyTorch on every backend (see the module docstring).
    backends={b: ode_combine_backward_reference for b in BACKEND_NAMES if b != "reference"},
    validate=_validate_backward,
)


def _grads(combine_backward, s, grad):
    grad_y, grad_ks, grad_h = combine_backward(grad.contiguous(), s.ks, s.coeffs, s.h, s.mask, s.y_coeff)
    return grad_y, grad_ks, None, grad_h, None, None


ODE_COMBINE = Op(
    "ode_combine",
    "(Tensor y, Tensor[] ks, float[] coeffs, Tensor h, Tensor? mask, float y_coeff) -> Tensor",
    reference=ode_combine_reference,
    fake=lambda y, *rest: torch.empty_like(y, memory_format=torch.contiguous_format),
    backends={
        "cpu": lambda *a: compiled._core_forward(*a, "cpu"),
        "cuda": lambda *a: compiled._core_forward(*a, "cuda"),
        "triton": _triton_forward,
    },
    preference={"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")},
    backward=Backward(save=("ks", "coeffs", "h", "mask", "y_coeff"), op="ode_combine_backward", grads=_grads),
    check=_check,
    validate=_validate,
)

BACKENDS = ODE_COMBINE.table


# ---- public entry point -----------------------------------------------------------------


def ode_combine(
    y: torch.Tensor,
    ks: Sequence[torch.Tensor],
    coeffs: Sequence[float],
    h: torch.Tensor | float,
    mask: torch.Tensor | None = None,
    y_coeff: float = 1.0,
) -> torch.Tensor:
    """mask · (y_coeff · y + h · Σ coeffs[i] · ks[i]), one fused pass.

    Args:
        y: state [S, ...] (S samples), floating point.
        ks: derivatives (stage values), each of y's shape, dtype and device; at most 16.
        coeffs: one float per term (a Butcher-tableau row, or weights b_i).
        h: step, a float or a tensor [S] (one per sample: adaptive solvers).
        mask: optional [S, R], bool or floating, over y's second axis (particles); padded
            particles (0) come out 0 and are not read, not even by the backward; other
            weights multiply their row.
        y_coeff: factor on y (1 for Runge–Kutta, DDIM uses √(ᾱ'/ᾱ)).
    """
    return ODE_COMBINE(*_check(y, ks, coeffs, h, mask, y_coeff))
