"""The two training objectives and their samplers, on preprocessed particles y [B, P, 3].

EPiC-FM (the authors' "FM-OT", data at t = 0, noise at t = 1):
    y_t = (1 - t) x + (sigma + (1 - sigma) t) z,   target velocity u = (1 - sigma) z - x,
    loss = squared error over real particles; sampling integrates dy/dt = v(y, t) from 1 to 0.

EPiC-JeDi (PC-JeDi's variance-preserving cosine schedule, noise prediction):
    theta(t) = theta_0 + t (theta_1 - theta_0), theta_0 = arccos(0.999), theta_1 = arccos(0.02),
    y_t = cos(theta) x + sin(theta) eps,   loss = Huber(eps_hat, eps) over real particles.
    Departure: the paper adds a small likelihood-weighted term to the Huber loss; we train
    with the Huber loss alone (the simpler objective; the term is a refinement of the weighting).
    Samplers, all from t = 1 to 0:
    - probability-flow ODE  dy/dt = theta' (eps_hat - sin(theta) y) / cos(theta)
      (= -beta/2 (y + score) with score = -eps_hat / sin(theta), beta = 2 theta' tan(theta)),
      with any fixed-grid method of hepgen.ode or dopri5;
    - Euler–Maruyama on the reverse SDE  dy = [-beta/2 y + beta eps_hat / sin(theta)] dt + sqrt(beta) dW;
    - DDIM (eta = 0) with alpha_bar = cos(theta)^2.
    Like PC-JeDi, sampling stops at t = 0 (signal rate 0.999) without a final denoising step.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch.nn import functional as F

from hepgen.ode import ddim_step, dopri5, euler_maruyama_step, integrate
from hepgen.ode.fixed_grid import method_tableau

# A field: (y [B, P, 3], t scalar or [B]) -> [B, P, 3]
Field = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

ODE_METHODS = ("euler", "midpoint", "heun", "heun3", "rk4", "rk4_classic", "rk4_38", "dopri5")
SDE_METHODS = ("em", "ddim")


def _per_set(v: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """A time (scalar or [B]) broadcastable against [B, P, F]."""
    v = torch.as_tensor(v, dtype=like.dtype, device=like.device)
    return v.view(-1, 1, 1) if v.dim() == 1 else v


def _masked_mean(per_element: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    return (per_element * m).sum() / (m.sum() * per_element.shape[-1]).clamp_min(1)


# ---------------------------------------------------------------- flow matching
def fm_loss(
    field: Field, x: torch.Tensor, mask: torch.Tensor, sigma: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    m = mask.to(x.dtype).unsqueeze(-1)
    t = torch.rand(x.shape[0], generator=generator).to(x)
    z = torch.randn(x.shape, generator=generator).to(x) * m
    tt = t.view(-1, 1, 1)
    y = (1 - tt) * x + (sigma + (1 - sigma) * tt) * z
    u = (1 - sigma) * z - x
    return _masked_mean((field(y, t) - u) ** 2, m)


def nfe(method: str, steps: int) -> int | None:
    """Network evaluations of a fixed-grid sampler (None for adaptive dopri5)."""
    if method == "dopri5":
        return None
    if method in SDE_METHODS:
        return steps
    return steps * method_tableau(method).stages


def solve_ode(
    velocity: Field,
    y0: torch.Tensor,
    mask: torch.Tensor,
    method: str,
    steps: int,
    rtol: float = 1e-3,
    atol: float = 1e-3,
) -> torch.Tensor:
    """Integrate dy/dt = velocity(y, t) from t = 1 to 0 (``steps`` steps; dopri5: adaptive).

    dopri5's tolerances are loose on purpose: the published time embedding cos(pi t e^k) with
    k up to 31 makes the network a rough function of t (its top frequencies are
    pseudo-random in float32), so tight tolerances make the step control shrink the step
    without end (measured: an untrained network took minutes for 64 jets at rtol 1e-5)."""
    if method == "dopri5":
        y, _ = dopri5(lambda t, y: velocity(y, t), y0, 1.0, 0.0, mask=mask, rtol=rtol, atol=atol)
        return y
    grid = torch.linspace(1.0, 0.0, steps + 1, dtype=y0.dtype, device=y0.device)
    return integrate(lambda t, y: velocity(y, t), y0, grid, method, mask)


# ---------------------------------------------------------------- VP cosine diffusion
class CosineSchedule:
    """Signal rate cos(theta(t)), noise rate sin(theta(t)), theta linear in t."""

    def __init__(self, max_signal_rate: float = 0.999, min_signal_rate: float = 0.02):
        self.theta0, self.theta1 = math.acos(max_signal_rate), math.acos(min_signal_rate)
        self.dtheta = self.theta1 - self.theta0

    def theta(self, t):
        return self.theta0 + t * self.dtheta

    def rates(self, t):
        th = self.theta(t)
        return (torch.cos(th), torch.sin(th)) if isinstance(th, torch.Tensor) else (math.cos(th), math.sin(th))


def jedi_loss(
    eps_model: Field,
    x: torch.Tensor,
    mask: torch.Tensor,
    schedule: CosineSchedule,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    m = mask.to(x.dtype).unsqueeze(-1)
    t = torch.rand(x.shape[0], generator=generator).to(x)
    eps = torch.randn(x.shape, generator=generator).to(x) * m
    signal, noise = schedule.rates(t.view(-1, 1, 1))
    y = signal * x + noise * eps
    return _masked_mean(F.huber_loss(eps_model(y, t), eps, reduction="none"), m)


def jedi_ode_velocity(eps_model: Field, schedule: CosineSchedule) -> Field:
    def velocity(y, t):
        tt = _per_set(t, y)
        signal, noise = schedule.rates(tt)
        return schedule.dtheta * (eps_model(y, t) - noise * y) / signal

    return velocity


def jedi_sample(
    eps_model: Field,
    y0: torch.Tensor,
    mask: torch.Tensor,
    schedule: CosineSchedule,
    method: str,
    steps: int,
    generator: torch.Generator | None = None,
    rtol: float = 1e-3,
    atol: float = 1e-3,
) -> torch.Tensor:
    """Denoise y0 ~ N(0, 1) at t = 1 down to t = 0 with ``method`` (an ODE method, 'em' or
    'ddim'); ``rtol``/``atol`` are dopri5's."""
    if method in ODE_METHODS:
        return solve_ode(jedi_ode_velocity(eps_model, schedule), y0, mask, method, steps, rtol, atol)
    times = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64).tolist()
    y = y0
    for t0, t1 in zip(times[:-1], times[1:]):
        t = torch.tensor(t0, dtype=y.dtype, device=y.device)
        eps = eps_model(y, t)
        signal, noise = schedule.rates(t0)
        if method == "ddim":
            signal1, _ = schedule.rates(t1)
            y = ddim_step(y, eps, signal**2, signal1**2, mask)
        else:  # Euler–Maruyama on the reverse-time SDE
            beta = 2 * schedule.dtheta * noise / signal
            drift = -0.5 * beta * y + (beta / noise) * eps
            noise_draw = torch.randn(y.shape, generator=generator).to(y)
            y = euler_maruyama_step(y, drift, math.sqrt(beta), t1 - t0, noise=noise_draw, mask=mask)
    return y
