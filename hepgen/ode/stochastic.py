"""Stochastic and diffusion-model update steps, each one fused ``ode_combine`` pass.

- Euler–Maruyama for dy = f dt + g dW:  y' = y + f h + g √|h| ε
- DDIM (deterministic, η = 0) for ε-prediction models:
  x' = √ᾱ' · x̂₀ + √(1 − ᾱ') · ε̂,  x̂₀ = (x − √(1 − ᾱ) ε̂) / √ᾱ
     = a x + b ε̂  with a = √(ᾱ'/ᾱ), b = √(1 − ᾱ') − a √(1 − ᾱ).
"""

from __future__ import annotations

import math

import torch

from hepgen.ops.ode_combine import ode_combine


def euler_maruyama_step(
    y: torch.Tensor,
    drift: torch.Tensor,
    diffusion: float,
    h: float,
    noise: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """y + drift·h + diffusion·√|h|·noise (noise ~ N(0, 1) drawn when not given)."""
    if noise is None:
        noise = torch.randn(y.shape, dtype=y.dtype, device=y.device, generator=generator)
    if h == 0:
        return ode_combine(y, [], [], 0.0, mask)
    # h·(drift + c·noise) with c = diffusion·√|h|/h gives diffusion·√|h|·noise.
    return ode_combine(y, [drift, noise], [1.0, diffusion * math.sqrt(abs(h)) / h], h, mask)


def euler_maruyama(
    drift_fn,
    diffusion_fn,
    y0: torch.Tensor,
    t: torch.Tensor,
    mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Integrate dy = drift_fn(t, y) dt + diffusion_fn(t) dW over the grid t; returns y(t[-1])."""
    times = [float(v) for v in t]
    y = y0
    for t0, t1 in zip(times[:-1], times[1:]):
        y = euler_maruyama_step(
            y,
            drift_fn(torch.tensor(t0, dtype=y.dtype, device=y.device), y),
            float(diffusion_fn(t0)),
            t1 - t0,
            mask=mask,
            generator=generator,
        )
    return y


def ddim_coefficients(alpha_bar: float, alpha_bar_next: float) -> tuple[float, float]:
    """(a, b) of the DDIM update x' = a x + b ε̂."""
    for name, v in (("alpha_bar", alpha_bar), ("alpha_bar_next", alpha_bar_next)):
        if not 0 < v <= 1:
            raise ValueError(f"{name} must be in (0, 1], got {v}")
    a = math.sqrt(alpha_bar_next / alpha_bar)
    return a, math.sqrt(1 - alpha_bar_next) - a * math.sqrt(1 - alpha_bar)


def ddim_step(
    x: torch.Tensor, eps: torch.Tensor, alpha_bar: float, alpha_bar_next: float, mask: torch.Tensor | None = None
) -> torch.Tensor:
    """One deterministic DDIM step from noise level ᾱ to ᾱ' given the predicted noise ε̂."""
    a, b = ddim_coefficients(alpha_bar, alpha_bar_next)
    return ode_combine(x, [eps], [b], 1.0, mask, y_coeff=a)
