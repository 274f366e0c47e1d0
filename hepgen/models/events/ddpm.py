"""Denoising diffusion (DDPM) on event vectors, as in the paper: T = 1000 steps, linear
beta from 1e-4 to 0.02, epsilon-prediction, ancestral sampling through all T steps.

x_t = sqrt(abar_t) x_0 + sqrt(1 - abar_t) eps; the network eps(x_t, t / T, n) is trained on
the mean squared error of eps over the real components. One network for 1, 2, 3 jets, the
multiplicity as a one-hot condition, absent components kept at zero. ``options["sampler"]
= "ddim"`` with ``options["sample_steps"] = S`` samples with S deterministic DDIM steps
(hepgen.ode.ddim_step) instead: faster, not the paper's sampler.
"""

from __future__ import annotations

import torch

from hepgen.models.events.base import EventGenerator, check_batch, gaussian_noise
from hepgen.models.events.config import EventModelConfig
from hepgen.models.events.nets import ResNetMLP
from hepgen.models.events.vectors import MAX_COMPONENTS, component_mask, condition


class DDPM(EventGenerator):
    def __init__(self, config: EventModelConfig):
        super().__init__(config)
        self.sampler, self.sample_steps = self._check_sampler(
            config.options.get("sampler", "ancestral"),
            config.options.get("sample_steps", min(100, config.timesteps)),
            "options['sampler']",
            "options['sample_steps']",
        )
        self.net = ResNetMLP(
            MAX_COMPONENTS,
            3,
            config.hidden,
            config.layers,
            config.time_dim,
            config.bayesian,
            config.prior_std,
            config.init_log_var,
        )
        betas = torch.linspace(config.beta_min, config.beta_max, config.timesteps, dtype=torch.float64)
        # Schedules are buffers (move with the model) but not saved: the config defines them.
        self.register_buffer("betas", betas.float(), persistent=False)
        self.register_buffer("alpha_bar", torch.cumprod(1 - betas, 0).float(), persistent=False)

    def _check_sampler(self, sampler, steps, sampler_name="sampler", steps_name="steps"):
        if sampler not in ("ancestral", "ddim"):
            raise ValueError(f"{sampler_name} must be 'ancestral' or 'ddim', got {sampler!r}")
        T = self.config.timesteps
        if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= T:
            raise ValueError(f"{steps_name} must be an int in 1..{T}, got {steps!r}")
        return sampler, steps

    def vector_settings(self, sampler: str | None = None, steps: int | None = None) -> dict:
        """``sampler``: 'ancestral' (all T steps, the paper's) or 'ddim' with ``steps`` steps
        (defaults: the checkpoint's options)."""
        sampler, steps = self._check_sampler(
            self.sampler if sampler is None else sampler, self.sample_steps if steps is None else steps
        )
        return {"sampler": sampler, "steps": steps}

    def _time(self, t_index: torch.Tensor) -> torch.Tensor:
        return (t_index.float() + 1) / self.config.timesteps

    def loss(self, x, n_jets):
        check_batch(x, n_jets)
        mask = component_mask(n_jets).to(x.dtype)
        t = torch.randint(0, self.config.timesteps, (len(x),), device=x.device)
        abar = self.alpha_bar[t][:, None]
        eps = torch.randn_like(x) * mask
        xt = abar.sqrt() * x + (1 - abar).sqrt() * eps
        pred = self.net(xt, self._time(t), condition(n_jets))
        return (((pred - eps) * mask) ** 2).sum() / mask.sum()

    @torch.no_grad()
    def sample_vectors(self, n_jets, generator=None, sampler: str | None = None, steps: int | None = None):
        sampler, steps = self.vector_settings(sampler, steps).values()
        check_batch(None, n_jets)
        p = next(self.parameters())
        n_jets = n_jets.to(p.device)
        mask = component_mask(n_jets).to(p.dtype)
        c = condition(n_jets)
        B = len(n_jets)
        x = gaussian_noise((B, MAX_COMPONENTS), p, generator) * mask
        if sampler == "ddim":
            return self._ddim(x, c, mask, steps)
        for i in reversed(range(self.config.timesteps)):
            t = torch.full((B,), i, device=p.device)
            eps = self.net(x, self._time(t), c)
            beta, abar = float(self.betas[i]), float(self.alpha_bar[i])
            x = (x - beta / (1 - abar) ** 0.5 * eps) / (1 - beta) ** 0.5
            if i > 0:  # sigma_t^2 = beta_t (Ho et al.'s first choice)
                x = x + beta**0.5 * gaussian_noise(x.shape, x, generator)
            x = x * mask
        return x

    def _ddim(self, x, c, mask, sample_steps):
        from hepgen.ode import ddim_step

        T = self.config.timesteps
        steps = torch.linspace(T - 1, 0, sample_steps).round().long().tolist()
        for k, i in enumerate(steps):
            eps = self.net(x, self._time(torch.full((len(x),), i, device=x.device)), c)
            abar_next = float(self.alpha_bar[steps[k + 1]]) if k + 1 < len(steps) else 1.0
            x = ddim_step(x, eps, float(self.alpha_bar[i]), abar_next) * mask
        return x


def build(config: EventModelConfig) -> DDPM:
    return DDPM(config)
