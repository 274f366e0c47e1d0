"""The stage and update arithmetic of explicit ODE/SDE solvers, fused into one pass.

    out = mask · (y_coeff · y + h[s] · Σ_i coeffs[i] · k_i)

for a state ``y`` [S, ...] of S samples, derivatives ``ks`` (same shape as y), a step per
sample ``h`` [S] and an optional ``mask`` [S, R] over the state's second axis (particles):
padded particles come out exactly 0 and their inputs are never read. Every Runge–Kutta stage,
update and error estimate, an Euler–Maruyama step (a noise term) and a DDIM step
(y_coeff ≠ 1) has this form, so a solver step is one launch per combination instead of one
per multiply and add.

The backward is its own op (``hepgen::ode_combine_backward``). It is elementwise and runs in
plain PyTorch on every backend: solvers sample under no_grad, and differentiating through a
sampling loop is rare enough not to deserve kernels of its own.

Spec: hepgen/ops/reference/ode_combine.py. Kernels: hepgen/ops/compiled/ode_combine.py (cpu,
cuda), hepgen/triton/ode_combine.py. Tests: tests/ops/conformance (fed by
tests/ops/samples/ode_combine.py) and tests/ops/test_ode_combine.py.
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


def _check(y, ks, coeffs, h, mask=None, y_coeff=1.0):
    """ode_combine's argument checks: its arguments -> ODE_COMBINE's (TypeError/ValueError naming the argument)."""
    y = _checks.tensor("y", y)
    _checks.floating("y", y)
    if y.dim() < 1:
        raise ValueError(f"y must have a leading sample dimension [S, ...], got shape {tuple(y.shape)}")
    ks = list(ks)
    coeffs = [_checks.finite_float(f"coeffs[{i}]", c) for i, c in enumerate(coeffs)]
    if len(ks) != len(coeffs):
        raise ValueError(f"coeffs must have one entry per term in ks ({len(ks)}), got {len(coeffs)}")
    if len(ks) > MAX_TERMS:
        raise ValueError(f"ks may hold at most {MAX_TERMS} terms, got {len(ks)}")
    for i, k in enumerate(ks):
        _checks.tensor(f"ks[{i}]", k)
        if k.shape != y.shape:
            raise ValueError(f"ks[{i}] must have y's shape {tuple(y.shape)}, got {tuple(k.shape)}")
        if k.dtype != y.dtype:
            raise TypeError(f"ks[{i}] must have y's dtype {y.dtype}, got {k.dtype}")
        _checks.same_device(f"ks[{i}]", k, "y", y)
    S = y.shape[0]
    if isinstance(h, torch.Tensor):
        _checks.same_device("h", h, "y", y)
        if h.dim() == 0:
            h = h.expand(S)
        if tuple(h.shape) != (S,):
            raise ValueError(f"h must be a float or a tensor of shape (samples,) = ({S},), got {tuple(h.shape)}")
        h = h.to(y.dtype)
    else:
        h = torch.full((S,), _checks.finite_float("h", h), dtype=y.dtype, device=y.device)
    if mask is not None:
        _checks.tensor("mask", mask)
        _checks.rank("mask", mask, 2, "[samples, particles]")
        if y.dim() < 2 or tuple(mask.shape) != tuple(y.shape[:2]):
            raise ValueError(f"mask must have shape y.shape[:2] = {tuple(y.shape[:2])}, got {tuple(mask.shape)}")
        if mask.dtype != torch.bool and not mask.is_floating_point():
            raise TypeError(f"mask must be bool or floating point, got {mask.dtype}")
        _checks.same_device("mask", mask, "y", y)
        mask = mask.to(y.dtype)
    y_coeff = _checks.finite_float("y_coeff", y_coeff)
    return y, ks, coeffs, h, mask, y_coeff


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
            particles come out 0 and are not read.
        y_coeff: factor on y (1 for Runge–Kutta, DDIM uses √(ᾱ'/ᾱ)).
    """
    return ODE_COMBINE(*_check(y, ks, coeffs, h, mask, y_coeff))
