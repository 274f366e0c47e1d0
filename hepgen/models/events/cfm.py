"""Conditional flow matching on event vectors: a straight path from noise to data.

x_t = (1 - t) x_0 + t x_1 with x_0 ~ N(0, 1), x_1 an event; the network v(x_t, t, n) learns
x_1 - x_0 (mean squared error on the real components); sampling integrates dx/dt = v from
t = 0 to 1 with hepgen.ode's fixed-grid solver (config.ode_method, config.ode_steps).
One network for 1, 2, 3 jets: the multiplicity is a one-hot condition and the absent
jets' components are zero in both noise and data (masked out of loss and velocity).
"""

from __future__ import annotations

import torch

from hepgen.models.base import positive_int
from hepgen.models.events.base import EventGenerator, check_batch, gaussian_noise
from hepgen.models.events.config import EventModelConfig
from hepgen.models.events.nets import ResNetMLP
from hepgen.models.events.vectors import MAX_COMPONENTS, component_mask, condition
from hepgen.ode.fixed_grid import method_tableau


class CFM(EventGenerator):
    def __init__(self, config: EventModelConfig):
        super().__init__(config)
        method_tableau(config.ode_method)  # an unknown solver fails at build, not after training
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

    def loss(self, x, n_jets):
        check_batch(x, n_jets)
        mask = component_mask(n_jets).to(x.dtype)
        x0 = torch.randn_like(x) * mask
        t = torch.rand(len(x), 1, dtype=x.dtype, device=x.device)
        xt = (1 - t) * x0 + t * x
        v = self.net(xt, t[:, 0], condition(n_jets))
        return (((v - (x - x0)) * mask) ** 2).sum() / mask.sum()

    def vector_settings(self, method: str | None = None, steps: int | None = None) -> dict:
        """``method``: a fixed-grid solver of hepgen.ode; ``steps``: its steps (defaults: the
        config's ode_method, ode_steps)."""
        method = self.config.ode_method if method is None else method
        method_tableau(method)
        return {"method": method, "steps": positive_int("steps", steps, self.config.ode_steps)}

    @torch.no_grad()
    def sample_vectors(self, n_jets, generator=None, method: str | None = None, steps: int | None = None):
        from hepgen.ode import integrate

        method, steps = self.vector_settings(method, steps).values()
        check_batch(None, n_jets)
        p = next(self.parameters())
        n_jets = n_jets.to(p.device)
        mask = component_mask(n_jets).to(p.dtype)
        c = condition(n_jets)
        x0 = gaussian_noise((len(n_jets), MAX_COMPONENTS), p, generator) * mask

        def velocity(t, y):
            return self.net(y, t.expand(len(y)), c) * mask

        grid = torch.linspace(0.0, 1.0, steps + 1, dtype=p.dtype)
        return integrate(velocity, x0, grid, method=method) * mask


def build(config: EventModelConfig) -> CFM:
    return CFM(config)
