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
"""

from __future__ import annotations

from typing import Sequence

import torch

from hepgen import _core
from hepgen.ops import _checks
from hepgen.ops._backends import op_backends, records_forced_backend, under_forced_backend
from hepgen.ops._compiled import stream_of

__all__ = ["ode_combine", "ode_combine_reference", "MAX_TERMS", "BACKENDS"]

MAX_TERMS = 16  # hepgen::kOdeMaxTerms; the Triton kernel takes up to TRITON_MAX_TERMS
TRITON_MAX_TERMS = 8


def _view(y: torch.Tensor, mask: torch.Tensor | None) -> tuple[int, int, int]:
    """(samples, rows, features) of the state for the kernels."""
    S = y.shape[0]
    if mask is None:
        return S, 1, y.numel() // S if S else 0
    R = mask.shape[1]
    return S, R, (y.numel() // (S * R)) if S * R else 0


def _bcast(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    return v.reshape(v.shape + (1,) * (like.dim() - v.dim()))


# ---- reference: the spec ----------------------------------------------------------------

def ode_combine_reference(y, ks, coeffs, h, mask=None, y_coeff=1.0):
    """Plain PyTorch: mask · (y_coeff · y + h · Σ coeffs[i] · k_i)."""
    acc = torch.zeros_like(y)
    for c, k in zip(coeffs, ks):
        acc = acc + c * k
    out = y_coeff * y + _bcast(h, y) * acc
    if mask is None:
        return out
    m = _bcast(mask, y)
    return torch.where(m != 0, m * out, torch.zeros((), dtype=y.dtype, device=y.device))


def _backward_reference(grad, ks, coeffs, h, mask, y_coeff, needs_h: bool):
    g = grad if mask is None else torch.where(_bcast(mask, grad) != 0, _bcast(mask, grad) * grad, 0.0)
    hb = _bcast(h, g)
    grad_y = y_coeff * g
    grad_ks = [c * hb * g for c in coeffs]
    grad_h = None
    if needs_h:
        acc = torch.zeros_like(g)
        for c, k in zip(coeffs, ks):
            acc = acc + c * k
        grad_h = (g * acc).reshape(g.shape[0], -1).sum(dim=1)
    return grad_y, grad_ks, grad_h


# ---- compiled core and triton -------------------------------------------------------------

def _core_forward(y, ks, coeffs, h, mask, y_coeff, device_kind):
    out = torch.empty_like(y, memory_format=torch.contiguous_format)
    S, R, F = _view(y, mask)
    if out.numel() == 0:
        return out
    # The core sees every state as [S, R, F] (views: all are contiguous here).
    y = y.contiguous().view(S, R, F)
    ks = [k.contiguous().view(S, R, F) for k in ks]
    h = h.contiguous()
    mask = None if mask is None else mask.contiguous().view(S, R)
    args = (y, float(y_coeff), ks, [float(c) for c in coeffs], h, mask, out.view(S, R, F))
    C = _core.compiled()
    if device_kind == "cuda":
        C.cuda_ode_combine(*args, stream_of(y))
    else:
        C.ode_combine(*args)
    return out


def _triton_forward(y, ks, coeffs, h, mask, y_coeff):
    from hepgen.triton import ode_combine as kernels

    S, R, F = _view(y, mask)
    return kernels.combine(y.contiguous(), [k.contiguous() for k in ks], coeffs, h.contiguous(),
                           None if mask is None else mask.contiguous(), y_coeff, S, R, F)


BACKENDS = op_backends("ode_combine", preference={"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")})
BACKENDS.register("reference", forward=ode_combine_reference)
BACKENDS.register("cpu", forward=lambda *a: _core_forward(*a, "cpu"))
BACKENDS.register("cuda", forward=lambda *a: _core_forward(*a, "cuda"))
BACKENDS.register("triton", forward=_triton_forward)


# ---- dispatch -----------------------------------------------------------------------------

def _forward(y, ks, coeffs, h, mask, y_coeff):
    return BACKENDS.get(BACKENDS.choose(y.device, y.dtype), "forward")(y, ks, coeffs, h, mask, y_coeff)


# ---- the custom ops: what torch.compile and export see --------------------------------------

@torch.library.custom_op("hepgen::ode_combine", mutates_args=())
def _ode_combine_op(y: torch.Tensor, ks: list[torch.Tensor], coeffs: list[float], h: torch.Tensor,
                    mask: torch.Tensor | None, y_coeff: float) -> torch.Tensor:
    return _forward(y, ks, coeffs, h, mask, y_coeff)


@_ode_combine_op.register_fake
def _(y, ks, coeffs, h, mask, y_coeff):
    return torch.empty_like(y, memory_format=torch.contiguous_format)


@torch.library.custom_op("hepgen::ode_combine_backward", mutates_args=())
def _ode_combine_backward_op(grad: torch.Tensor, ks: list[torch.Tensor], coeffs: list[float], h: torch.Tensor,
                             mask: torch.Tensor | None, y_coeff: float
                             ) -> tuple[torch.Tensor, list[torch.Tensor], torch.Tensor]:
    grad_y, grad_ks, grad_h = _backward_reference(grad, ks, coeffs, h, mask, y_coeff, needs_h=True)
    return grad_y, grad_ks, grad_h


@_ode_combine_backward_op.register_fake
def _(grad, ks, coeffs, h, mask, y_coeff):
    return torch.empty_like(grad), [torch.empty_like(grad) for _ in ks], torch.empty_like(h)


@records_forced_backend
def _setup_context(ctx, inputs, output):
    y, ks, coeffs, h, mask, y_coeff = inputs
    ctx.save_for_backward(h, *([] if mask is None else [mask]), *ks)
    ctx.has_mask, ctx.coeffs, ctx.y_coeff, ctx.n = mask is not None, coeffs, y_coeff, len(ks)


@under_forced_backend
def _backward(ctx, grad):
    saved = ctx.saved_tensors
    h = saved[0]
    mask = saved[1] if ctx.has_mask else None
    ks = list(saved[2 if ctx.has_mask else 1:])
    grad_y, grad_ks, grad_h = _ode_combine_backward_op(grad.contiguous(), ks, ctx.coeffs, h, mask, ctx.y_coeff)
    return grad_y, grad_ks, None, grad_h, None, None


_ode_combine_op.register_autograd(_backward, setup_context=_setup_context)


# ---- eager path: the same kernels without the custom-op dispatcher --------------------------
# A sampling loop calls this once per stage; outside torch.compile it skips the dispatcher
# (tens of microseconds per call), with plain autograd where a gradient is wanted.

class _OdeCombineEager(torch.autograd.Function):
    @staticmethod
    @records_forced_backend
    def forward(ctx, y, h, mask, coeffs, y_coeff, *ks):
        ctx.save_for_backward(h, *([] if mask is None else [mask]), *ks)
        ctx.has_mask, ctx.coeffs, ctx.y_coeff = mask is not None, coeffs, y_coeff
        return _forward(y, list(ks), coeffs, h, mask, y_coeff)

    @staticmethod
    @torch.autograd.function.once_differentiable
    @under_forced_backend
    def backward(ctx, grad):
        saved = ctx.saved_tensors
        mask = saved[1] if ctx.has_mask else None
        ks = list(saved[2 if ctx.has_mask else 1:])
        grad_y, grad_ks, grad_h = _backward_reference(grad, ks, ctx.coeffs, saved[0], mask, ctx.y_coeff,
                                                      needs_h=ctx.needs_input_grad[1])
        return (grad_y, grad_h, None, None, None, *grad_ks)


# ---- public entry point -----------------------------------------------------------------

def ode_combine(y: torch.Tensor, ks: Sequence[torch.Tensor], coeffs: Sequence[float], h: torch.Tensor | float,
                mask: torch.Tensor | None = None, y_coeff: float = 1.0) -> torch.Tensor:
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
    if torch.compiler.is_compiling():
        return _ode_combine_op(y, ks, coeffs, h, mask, y_coeff)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (y, h, *ks)):
        return _OdeCombineEager.apply(y, h, mask, coeffs, y_coeff, *ks)
    return _forward(y, ks, coeffs, h, mask, y_coeff)


