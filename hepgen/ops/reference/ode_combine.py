"""The spec of ode_combine in plain PyTorch (the oracle of every backend; see hepgen.ops.ode_combine),
and the shape conventions its kernels share.
"""

from __future__ import annotations

import math

import torch

__all__ = ["MAX_TERMS", "TRITON_MAX_TERMS", "ode_combine_backward_reference", "ode_combine_reference"]

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


def ode_combine_backward_reference(grad, ks, coeffs, h, mask, y_coeff):
    """Gradients (y, [ks], h) of ode_combine_reference for the output gradient `grad`.

    A padded row's output is 0 whatever its inputs hold, so its inputs get exactly 0 and
    nothing of it reaches grad_h: selects, not products with 0 (0 · NaN is NaN), keep a NaN
    or inf in a padded row of grad, ks or y (or a non-finite h) out of every gradient.
    """
    real = None if mask is None else _bcast(mask, grad) != 0
    zero = torch.zeros((), dtype=grad.dtype, device=grad.device)

    def masked(t: torch.Tensor) -> torch.Tensor:
        return t if real is None else torch.where(real, t, zero)

    g = grad if mask is None else masked(_bcast(mask, grad) * grad)
    hb = _bcast(h, g)
    grad_y = y_coeff * g
    grad_ks = [masked(c * hb * g) for c in coeffs]
    acc = torch.zeros_like(g)
    for c, k in zip(coeffs, ks):
        acc = acc + c * k
    # Explicit row size: reshape(S, -1) is ambiguous for an empty batch (S = 0).
    grad_h = masked(g * acc).reshape(g.shape[0], math.prod(g.shape[1:])).sum(dim=1)
    return grad_y, grad_ks, grad_h
