"""Adaptive Dormand–Prince 5(4) with per-sample step control.

Every sample (jet) has its own time and step size: a sample whose error estimate is too
large repeats its step with a smaller h while the others go on, and a finished sample
takes steps of size 0 until all are done. The network is still called once per stage for
the whole batch (that is what makes batching pay), with t as a tensor [S] of per-sample
times. Stage inputs, the solution and the error estimate are fused ``ode_combine`` calls with
a per-sample h.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from hepgen.ode.tableaus import DOPRI5
from hepgen.ops.ode_combine import ode_combine

_ERR = tuple(b - bl for b, bl in zip(DOPRI5.b, DOPRI5.b_low))


@dataclass
class AdaptiveStats:
    nfe: int  # network evaluations (batched calls of func)
    accepted: torch.Tensor  # [S] accepted steps per sample
    rejected: torch.Tensor  # [S] rejected steps per sample


def _rms(v: torch.Tensor, count: torch.Tensor, real: torch.Tensor | None) -> torch.Tensor:
    """Per-sample root mean square over the real particles (padding may hold anything)."""
    if real is not None:
        v = torch.where(real, v, torch.zeros((), dtype=v.dtype, device=v.device))
    return torch.sqrt((v * v).reshape(v.shape[0], -1).sum(dim=1) / count)


def dopri5(
    func,
    y0: torch.Tensor,
    t0: float,
    t1: float,
    *,
    mask: torch.Tensor | None = None,
    rtol: float = 1e-6,
    atol: float = 1e-8,
    first_step: float | None = None,
    max_steps: int = 10_000,
    safety: float = 0.9,
    min_factor: float = 0.2,
    max_factor: float = 10.0,
) -> tuple[torch.Tensor, AdaptiveStats]:
    """Integrate dy/dt = func(t [S], y) from t0 to t1 per sample; returns (y(t1), stats)."""
    S = y0.shape[0]
    dev, dt = y0.device, y0.dtype
    span = t1 - t0
    if span == 0 or S == 0:
        return y0.clone(), AdaptiveStats(0, torch.zeros(S, dtype=torch.long), torch.zeros(S, dtype=torch.long))
    direction = 1.0 if span > 0 else -1.0
    per_sample = y0[0].numel() if S else 0
    if mask is not None:
        count = (mask != 0).sum(dim=1).to(dt) * (per_sample // max(mask.shape[1], 1))
    else:
        count = torch.full((S,), float(per_sample), dtype=dt, device=dev)
    count = count.clamp_min(1)
    real = None if mask is None else (mask != 0).reshape(mask.shape + (1,) * (y0.dim() - 2))
    t = torch.full((S,), float(t0), dtype=dt, device=dev)
    y = y0
    k1 = func(t, y)
    nfe = 1
    if first_step is None:
        scale = atol + rtol * y.abs()
        d0, d1 = _rms(y / scale, count, real), _rms(k1 / scale, count, real)
        h_abs = torch.where((d0 > 1e-5) & (d1 > 1e-5), 0.01 * d0 / d1.clamp_min(1e-30), torch.full_like(d0, 1e-6))
    else:
        h_abs = torch.full((S,), abs(first_step), dtype=dt, device=dev)
    h_abs = h_abs.clamp(max=abs(span))
    accepted = torch.zeros(S, dtype=torch.long, device=dev)
    rejected = torch.zeros(S, dtype=torch.long, device=dev)
    for _ in range(max_steps):
        remaining = (t1 - t) * direction
        active = remaining > abs(span) * 1e-12
        if not bool(active.any()):
            break
        last = h_abs >= remaining
        h = torch.where(active, torch.minimum(h_abs, remaining), torch.zeros_like(h_abs)) * direction
        ks = [k1]
        for i in range(1, DOPRI5.stages):
            pairs = [(c, k) for c, k in zip(DOPRI5.a[i], ks) if c != 0.0]
            y_i = ode_combine(y, [k for _, k in pairs], [c for c, _ in pairs], h, mask)
            if i == DOPRI5.stages - 1:
                y_new = y_i  # the last stage is evaluated at the 5th-order solution (FSAL)
            ks.append(func(t + DOPRI5.c[i] * h, y_i))
        nfe += DOPRI5.stages - 1
        pairs = [(c, k) for c, k in zip(_ERR, ks) if c != 0.0]
        err = ode_combine(torch.zeros_like(y), [k for _, k in pairs], [c for c, _ in pairs], h, mask)
        scale = atol + rtol * torch.maximum(y.abs(), y_new.abs())
        err_norm = _rms(err / scale, count, real)
        ok = (err_norm <= 1.0) & active
        okb = ok.reshape((S,) + (1,) * (y.dim() - 1))
        y = torch.where(okb, y_new, y)
        k1 = torch.where(okb, ks[-1], k1)
        t = torch.where(ok, torch.where(last, torch.full_like(t, float(t1)), t + h), t)
        accepted += ok.long()
        rejected += (active & ~ok).long()
        factor = (safety * err_norm.clamp_min(1e-10) ** -0.2).clamp(min_factor, max_factor)
        factor = torch.where(ok, factor, factor.clamp(max=1.0))
        h_abs = torch.where(active, h.abs() * factor, h_abs).clamp_min(abs(span) * 1e-14)
    else:
        raise RuntimeError(f"dopri5 did not reach t1 = {t1} within max_steps = {max_steps} steps")
    return y, AdaptiveStats(nfe, accepted, rejected)
