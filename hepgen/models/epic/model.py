"""EPiC-FM / EPiC-JeDi: an EPiCNet, its preprocessing and the jet-feature density, with sampling.

    model = hepgen.models.epic.load("pretrained")          # or a checkpoint path
    jets = model.sample(1000, steps=100, method="midpoint", generator=torch.Generator().manual_seed(0))
    jets.particles  # (1000, P, 4) JetNet layout [eta_rel, phi_rel, pt_rel, mask], first N slots real
    jets.jets       # (1000, 4) [pt, eta, mass, n_particles]
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

from hepgen.models.epic import dynamics
from hepgen.models.epic.config import EPiCConfig
from hepgen.models.epic.jet_density import JetFeatureDensity
from hepgen.models.epic.preprocessing import ConditionScaler, ParticleScaler
from hepgen.nn import EPiCNet

DEFAULT_STEPS = {"epic-fm": 100, "epic-jedi": 200}  # midpoint 200 NFE (paper); EM 200 steps
DEFAULT_METHOD = {"epic-fm": "midpoint", "epic-jedi": "em"}


def relative_mass(particles: np.ndarray | torch.Tensor) -> np.ndarray:
    """m / pT of the jet from JetNet-layout particles (N, P, 4) as massless constituents.

    A shift of all eta (a boost along the beam) and of all phi (a rotation) leaves the
    invariant mass unchanged, so the mass of the constituents in relative coordinates is
    exactly m / pT_jet when pt_rel is pT / pT_jet."""
    p = np.asarray(particles, dtype=np.float64)
    real = p[..., 3] > 0.5
    eta, phi, pt = p[..., 0], p[..., 1], np.where(real, p[..., 2], 0.0)
    e, px, py, pz = (pt * np.cosh(eta)).sum(1), (pt * np.cos(phi)).sum(1), (pt * np.sin(phi)).sum(1), \
        (pt * np.sinh(eta)).sum(1)
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


class EPiCGenerator(nn.Module):
    """A trained (or trainable) EPiC-FM / EPiC-JeDi generator of jets with up to P particles."""

    def __init__(self, config: EPiCConfig):
        super().__init__()
        self.config = config
        self.net = EPiCNet(features=3, hidden=config.hidden, latent=config.latent, layers=config.layers,
                           time_dim=config.time_dim, cond_dim=config.cond_dim, weight_norm=config.weight_norm)
        self.particle_scaler = ParticleScaler(3, config.feature_std)
        self.cond_scaler = ConditionScaler(2)
        self.jet_density = JetFeatureDensity(config.particles)
        self.schedule = dynamics.CosineSchedule(config.max_signal_rate, config.min_signal_rate)

    # ------------------------------------------------------------ data
    def prepare(self, particles: torch.Tensor, jets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                           torch.Tensor | None]:
        """JetNet-layout particles [B, P, 4] and jets [B, 4] → (y [B, P, 3], mask [B, P], cond or None)."""
        P = self.config.particles
        if particles.dim() != 3 or particles.shape[1:] != (P, 4):
            raise ValueError(f"particles must be [B, {P}, 4] (JetNet layout, {P} slots), "
                             f"got shape {tuple(particles.shape)}")
        mask = particles[..., 3] > 0.5
        y = self.particle_scaler(particles[..., :3], mask)
        cond = self.cond_scaler(jets[:, [0, 2]]) if self.config.conditional else None
        return y, mask, cond

    # ------------------------------------------------------------ training
    def field(self, net: EPiCNet, mask: torch.Tensor, cond: torch.Tensor | None):
        return lambda y, t: net(y, t, mask, cond)

    def loss(self, y: torch.Tensor, mask: torch.Tensor, cond: torch.Tensor | None = None,
             net: EPiCNet | None = None, generator: torch.Generator | None = None) -> torch.Tensor:
        """The training loss of a batch of preprocessed particles (``net``: default self.net)."""
        f = self.field(net or self.net, mask, cond)
        if self.config.model == "epic-fm":
            return dynamics.fm_loss(f, y, mask, self.config.sigma, generator)
        return dynamics.jedi_loss(f, y, mask, self.schedule, generator)

    # ------------------------------------------------------------ sampling
    def methods(self) -> tuple[str, ...]:
        if self.config.model == "epic-fm":
            return dynamics.ODE_METHODS
        return dynamics.ODE_METHODS + dynamics.SDE_METHODS

    def _check_sampling(self, n, steps, method, batch_size):
        for name, value in (("n", n), ("steps", steps), ("batch_size", batch_size)):
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if method not in self.methods():
            raise ValueError(f"method must be one of {', '.join(self.methods())} for {self.config.model}, "
                             f"got {method!r}")

    @torch.no_grad()
    def _sample_batch(self, b: int, steps: int, method: str, generator, device) -> tuple[np.ndarray, np.ndarray]:
        P = self.config.particles
        jets = self.jet_density.sample(b, generator)  # (pT, eta, mass, N), CPU
        n_real = jets[:, 3].long()
        mask = (torch.arange(P).unsqueeze(0) < n_real.unsqueeze(1)).to(device)
        z = torch.randn(b, P, 3, generator=generator).to(device) * mask.unsqueeze(-1)
        cond = self.cond_scaler(jets[:, [0, 2]].to(device)) if self.config.conditional else None
        f = self.field(self.net, mask, cond)
        if self.config.model == "epic-fm":
            y = dynamics.solve_ode(f, z, mask, method, steps)
        else:
            y = dynamics.jedi_sample(f, z, mask, self.schedule, method, steps, generator)
        x = self.particle_scaler.inverse(y, mask).cpu()
        mask = mask.cpu()
        # JetNet order: real particles first, by decreasing pt_rel.
        key = torch.where(mask, x[..., 2], torch.full_like(x[..., 2], -torch.inf))
        order = torch.argsort(key, dim=1, descending=True, stable=True)
        x = torch.gather(x, 1, order.unsqueeze(-1).expand(-1, -1, 3)) * mask.unsqueeze(-1)
        particles = torch.cat([x, mask.unsqueeze(-1).to(x.dtype)], dim=-1).numpy().astype(np.float32)
        jets = jets.numpy().astype(np.float32)
        if not self.config.conditional:
            # Without conditioning the drawn mass says nothing about these particles: use theirs.
            jets[:, 2] = relative_mass(particles) * jets[:, 0]
        return particles, jets

    def sample_chunks(self, n: int, steps: int | None = None, method: str | None = None, batch_size: int = 1024,
                      generator: torch.Generator | None = None, device: str | torch.device | None = None,
                      progress: Callable | None = None) -> Iterator:
        """Yield :class:`hepgen.data.JetSample` chunks of at most ``batch_size`` jets, ``n`` in all."""
        from hepgen.data import JetSample

        method = method or DEFAULT_METHOD[self.config.model]
        steps = steps or DEFAULT_STEPS[self.config.model]
        self._check_sampling(n, steps, method, batch_size)
        device = torch.device(device) if device is not None else next(self.parameters()).device
        was_training = self.training
        self.eval()
        try:
            with parametrize.cached():  # weight norm evaluated once per batch, not per network call
                for start in range(0, n, batch_size):
                    b = min(batch_size, n - start)
                    particles, jets = self._sample_batch(b, steps, method, generator, device)
                    if progress is not None:
                        progress(b)
                    yield JetSample(particles, jets)
        finally:
            self.train(was_training)

    def sample(self, n: int, steps: int | None = None, method: str | None = None, batch_size: int = 1024,
               generator: torch.Generator | None = None, device: str | torch.device | None = None):
        """``n`` jets as one :class:`hepgen.data.JetSample` (JetNet layout).

        ``method``: euler, midpoint, heun, rk4, rk4_38, dopri5 (ODE; for EPiC-JeDi the
        probability-flow ODE), and for EPiC-JeDi also em (Euler–Maruyama) and ddim.
        ``steps``: solver steps (network evaluations = steps × stages; ignored by dopri5).
        Defaults: EPiC-FM midpoint with 100 steps (200 evaluations, the paper's choice);
        EPiC-JeDi Euler–Maruyama with 200 steps. Jet features: pT and eta drawn from the
        jet-feature density; mass drawn with them (the conditioning) for conditional models,
        computed from the generated particles otherwise; N as drawn.
        """
        from hepgen.data import JetSample

        chunks = list(self.sample_chunks(n, steps, method, batch_size, generator, device))
        return JetSample(np.concatenate([c.particles for c in chunks]), np.concatenate([c.jets for c in chunks]))
