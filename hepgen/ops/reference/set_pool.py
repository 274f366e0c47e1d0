"""The spec of set_pool in plain PyTorch (the oracle of every backend; see hepgen.ops.set_pool).

Also the constants the kernels share: no kernel module imports the op layer.
"""

from __future__ import annotations

import torch

__all__ = ["DEFAULT_SUM_SCALE", "set_pool_backward_reference", "set_pool_reference"]

# EPiC's choice: the sum enters the global update scaled by 0.01 so it stays O(1) for
# O(100) particles.
DEFAULT_SUM_SCALE = 0.01


def set_pool_reference(x: torch.Tensor, mask: torch.Tensor, sum_scale: float = DEFAULT_SUM_SCALE) -> torch.Tensor:
    """Plain-PyTorch masked mean and scaled sum, concatenated to [B, 2D]."""
    m = mask.to(x.dtype).unsqueeze(-1)  # [B, N, 1]
    # Padded entries are ignored whatever they hold (NaN included), as the kernels never read them.
    total = torch.where(m != 0, x * m, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim=1)  # [B, D]
    count = m.sum(dim=1)  # [B, 1]
    safe_count = torch.where(count != 0, count, torch.ones_like(count))
    mean = torch.where(count != 0, total / safe_count, torch.zeros_like(total))
    return torch.cat([mean, total * sum_scale], dim=-1)


def set_pool_backward_reference(grad_out: torch.Tensor, mask: torch.Tensor, sum_scale: float) -> torch.Tensor:
    """Gradient of set_pool with respect to x, given the gradient of its output [B, 2D]."""
    D = grad_out.shape[-1] // 2
    m = mask.to(grad_out.dtype).unsqueeze(-1)  # [B, N, 1]
    count = m.sum(dim=1)  # [B, 1]
    inv_count = torch.where(
        count != 0, 1 / torch.where(count != 0, count, torch.ones_like(count)), torch.zeros_like(count)
    )
    coef = grad_out[:, :D] * inv_count + grad_out[:, D:] * sum_scale  # [B, D]
    # A padded particle's gradient is 0, not 0 * coef: a NaN or inf in grad_out must not reach it.
    return torch.where(m != 0, m * coef.unsqueeze(1), torch.zeros((), dtype=grad_out.dtype, device=grad_out.device))
