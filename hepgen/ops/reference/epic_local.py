"""The spec of epic_local in plain PyTorch (the oracle of every backend; see hepgen.ops.epic_local)."""

from __future__ import annotations

import torch

from hepgen.ops.reference.set_pool import DEFAULT_SUM_SCALE, set_pool_reference

__all__ = ["DEFAULT_NEGATIVE_SLOPE", "epic_local_backward_reference", "epic_local_reference"]

DEFAULT_NEGATIVE_SLOPE = 0.01  # EPiC's LeakyReLU


def _act(v: torch.Tensor, slope: float) -> torch.Tensor:
    return torch.where(v > 0, v, v * slope)


def _act_grad_from_output(out: torch.Tensor, slope: float) -> torch.Tensor:
    # LeakyReLU keeps the sign: act'(z) = 1 where act(z) > 0, slope elsewhere.
    return torch.where(out > 0, torch.ones_like(out), torch.full_like(out, slope))


def epic_local_reference(
    x, mask, w1, bias1, w2, bias2, sum_scale=DEFAULT_SUM_SCALE, negative_slope=DEFAULT_NEGATIVE_SLOPE
):
    """Plain-PyTorch fused local update: (y [B, N, H], pooled [B, 2H])."""
    m = mask.to(x.dtype).unsqueeze(-1)
    real = m != 0
    x = torch.where(real, x, torch.zeros((), dtype=x.dtype, device=x.device))  # padding is never read
    h = _act(x @ w1.t() + bias1.unsqueeze(1), negative_slope)
    z2 = h @ w2.t() + bias2.unsqueeze(1) + x
    y = torch.where(real, m * _act(z2, negative_slope), torch.zeros((), dtype=x.dtype, device=x.device))
    return y, set_pool_reference(y, mask, sum_scale)


def epic_local_backward_reference(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, negative_slope):
    """Gradients (x, w1, bias1, w2, bias2) of epic_local, written out; y is the forward's output."""
    H = x.shape[-1]
    slope = negative_slope
    m = mask.to(x.dtype).unsqueeze(-1)
    real = m != 0
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    x = torch.where(real, x, zero)
    count = m.sum(dim=1)  # [B, 1]
    inv = torch.where(count != 0, 1 / torch.where(count != 0, count, torch.ones_like(count)), torch.zeros_like(count))
    coef = grad_pooled[:, :H] * inv + grad_pooled[:, H:] * sum_scale  # [B, H]
    # pooled reads y with weight m; y = m · act(z2), so z2 > 0 where y has m's sign (a negative
    # weight flips it: reading act' from y alone gave such rows the wrong derivative).
    sign = torch.where(m > 0, 1.0, -1.0).to(x.dtype)
    dz2 = torch.where(real, (grad_y + m * coef.unsqueeze(1)) * m * _act_grad_from_output(sign * y, slope), zero)
    h = torch.where(real, _act(x @ w1.t() + bias1.unsqueeze(1), slope), zero)
    # Selects, not products with the zero rows: a non-finite weight must not turn padding into NaN.
    dz1 = torch.where(real, (dz2 @ w2) * _act_grad_from_output(h, slope), zero)
    dx = torch.where(real, dz1 @ w1 + dz2, zero)
    dw1 = dz1.flatten(0, 1).t() @ x.flatten(0, 1)
    dw2 = dz2.flatten(0, 1).t() @ h.flatten(0, 1)
    return dx, dw1, dz1.sum(dim=1), dw2, dz2.sum(dim=1)
