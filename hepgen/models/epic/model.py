"""EPiC-FM / EPiC-JeDi: an EPiCNet, its preprocessing and the jet-feature density, with sampling.

model = hepgen.models.load("pretrained-jets")          # or a checkpoint path
jets = model.sample(1000, steps=100, method="midpoint", generator=torch.Generator().manual_seed(0))
jets.particles  # (1000, P, 4) JetNet layout [eta_rel, phi_rel, pt_rel, mask], first N slots real
jets.jets       # (1000, 4) [pt, eta, mass, n_particles]
"""

from __future__ import annotations

import numpy as np
import torch
from torch.nn.utils import parametrize

from hepgen.models.base import Generator, deprecated, positive_int
from hepgen.models.epic import dynamics
from hepgen.models.epic.config import EPiCConfig
from hepgen.models.epic.jet_density import JetFeatureDensity
from hepgen.models.epic.preprocessing import ConditionScaler, ParticleScaler
from hepgen.nn import EPiCNet

DEFAULT_STEPS = {"epic-fm": 100, "epic-jedi": 200}  # midpoint 200 NFE (paper); EM 200 steps
DEFAULT_METHOD = {"epic-fm": "midpoint", "epic-jedi": "em"}
# dopri5's tolerances (loose on purpose: see dynamics.solve_ode).
DEFAULT_RTOL = DEFAULT_ATOL = 1e-3
# A given (pT, mass) takes eta and N from the nearest of this many draws of the jet-feature
# density (see JetFeatureDensity.sample_given).
CONDITION_CANDIDATES = 128


def relative_mass(particles: np.ndarray | torch.Tensor) -> np.ndarray:
    """m / pT of the jet from JetNet-layout particles (N, P, 4) as massless constituents.

    A shift of all eta (a boost along the beam) and of all phi (a rotation) leaves the
    invariant mass unchanged, so the mass of the constituents in relative coordinates is
    exactly m / pT_jet when pt_rel is pT / pT_jet."""
    p = np.asarray(particles, dtype=np.float64)
    real = p[..., 3] > 0.5
    eta, phi, pt = p[..., 0], p[..., 1], np.where(real, p[..., 2], 0.0)
    e, px, py, pz = (
        (pt * np.cosh(eta)).sum(1),
        (pt * np.cos(phi)).sum(1),
        (pt * np.sin(phi)).sum(1),
        (pt * np.sinh(eta)).sum(1),
    )
    return np.sqrt(np.maximum(e**2 - px**2 - py**2 - pz**2, 0.0))


class EPiCGenerator(Generator):
    """A trained (or trainable) EPiC-FM / EPiC-JeDi generator of jets with up to P particles.

    ``sample(n, condition=None, method=..., steps=..., rtol=..., atol=...)`` (the contract:
    :mod:`hepgen.models.base`). ``method``: euler, midpoint, heun, rk4, rk4_38, dopri5 (ODE;
    for EPiC-JeDi the probability-flow ODE), and for EPiC-JeDi also em (Euler–Maruyama) and
    ddim. ``steps``: solver steps (network evaluations = steps × stages; ignored by dopri5,
    whose tolerances are ``rtol``/``atol``). Defaults: EPiC-FM midpoint with 100 steps (200
    evaluations, the paper's choice); EPiC-JeDi Euler–Maruyama with 200 steps.

    Jet features: pT, eta and N drawn from the jet-feature density; the mass drawn with them
    (the conditioning) for conditional models, computed from the generated particles
    otherwise. ``condition`` (conditional models only): (pT, mass) in GeV per jet, [N, 2];
    eta and N then come from the density near each requested (pT, mass).
    """

    kind = "jets"
    checkpoint_format = "hepgen.epic"
    checkpoint_version = 1
    default_batch_size = 1024
    condition_help = "(pT, mass) in GeV per jet, [N, 2], for conditional models"

    def __init__(self, config: EPiCConfig):
        super().__init__()
        self.config = config
        self.net = EPiCNet(
            features=3,
            hidden=config.hidden,
            latent=config.latent,
            layers=config.layers,
            time_dim=config.time_dim,
            cond_dim=config.cond_dim,
            weight_norm=config.weight_norm,
        )
        self.particle_scaler = ParticleScaler(3, config.feature_std)
        self.cond_scaler = ConditionScaler(2)
        self.jet_density = JetFeatureDensity(config.particles)
        self.schedule = dynamics.CosineSchedule(config.max_signal_rate, config.min_signal_rate)

    # ------------------------------------------------------------ data
    def prepare(
        self, particles: torch.Tensor, jets: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """JetNet-layout particles [B, P, 4] and jets [B, 4] → (y [B, P, 3], mask [B, P], cond or None)."""
        P = self.config.particles
        if particles.dim() != 3 or particles.shape[1:] != (P, 4):
            raise ValueError(
                f"particles must be [B, {P}, 4] (JetNet layout, {P} slots), got shape {tuple(particles.shape)}"
            )
        mask = particles[..., 3] > 0.5
        y = self.particle_scaler(particles[..., :3], mask)
        cond = self.cond_scaler(jets[:, [0, 2]]) if self.config.conditional else None
        return y, mask, cond

    # ------------------------------------------------------------ training
    def field(self, net: EPiCNet, mask: torch.Tensor, cond: torch.Tensor | None):
        return lambda y, t: net(y, t, mask, cond)

    def loss(
        self,
        y: torch.Tensor,
        mask: torch.Tensor,
        cond: torch.Tensor | None = None,
        net: EPiCNet | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
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
            positive_int(name, value)
        if method not in self.methods():
            raise ValueError(
                f"method must be one of {', '.join(self.methods())} for {self.config.model}, got {method!r}"
            )

    # ------------------------------------------------------------ the contract (hepgen.models.base)
    def sampler_settings(
        self,
        method: str | None = None,
        steps: int | None = None,
        rtol: float = DEFAULT_RTOL,
        atol: float = DEFAULT_ATOL,
    ) -> dict:
        method = DEFAULT_METHOD[self.config.model] if method is None else method
        if method not in self.methods():
            raise ValueError(
                f"method must be one of {', '.join(self.methods())} for {self.config.model}, got {method!r}"
            )
        steps = positive_int("steps", steps, DEFAULT_STEPS[self.config.model])
        for name, value in (("rtol", rtol), ("atol", atol)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"{name} must be a positive number, got {value!r}")
        return {"method": method, "steps": steps, "rtol": float(rtol), "atol": float(atol)}

    def check_condition(self, n, condition):
        if condition is None:
            return positive_int("n", n), None
        if not self.config.conditional:
            raise ValueError("condition: this model is unconditional; it takes no (pT, mass)")
        c = torch.as_tensor(np.asarray(condition, dtype=np.float64) if not torch.is_tensor(condition) else condition)
        if c.dim() != 2 or c.shape[1] != 2 or len(c) == 0:
            raise ValueError(f"condition: expected (pT, mass) in GeV per jet, shape [N, 2], got {tuple(c.shape)}")
        c = c.double().cpu()
        if not bool(torch.isfinite(c).all()) or bool((c[:, 0] <= 0).any()) or bool((c[:, 1] < 0).any()):
            raise ValueError("condition: pT must be finite and positive, mass finite and non-negative (GeV)")
        if n is not None and n != len(c):
            raise ValueError(f"n={n!r} but condition holds {len(c)} jets; pass n=None or n={len(c)}")
        return len(c), c

    def sampling_context(self, settings):
        return parametrize.cached()  # weight norm evaluated once per batch, not per network call

    def generate_chunk(self, n, condition, generator, device, batch_size, settings):
        from hepgen.data import JetSample

        parts = [
            self._sample_batch(
                min(batch_size, n - start),
                settings["steps"],
                settings["method"],
                generator,
                device,
                None if condition is None else condition[start : start + batch_size],
                settings["rtol"],
                settings["atol"],
            )
            for start in range(0, n, batch_size)
        ]
        return JetSample(np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))

    @classmethod
    def build(cls, config_dict: dict) -> EPiCGenerator:
        return cls(EPiCConfig.from_dict(config_dict))

    def load_entries(self, entries: dict) -> None:
        # A resumable checkpoint's "train_state" is the trainer's (hepgen.models.epic.train),
        # not part of the sampling model.
        pass

    @torch.no_grad()
    def _sample_batch(
        self,
        b: int,
        steps: int,
        method: str,
        generator,
        device,
        condition=None,
        rtol: float = DEFAULT_RTOL,
        atol: float = DEFAULT_ATOL,
    ) -> tuple[np.ndarray, np.ndarray]:
        P = self.config.particles
        if condition is None:
            jets = self.jet_density.sample(b, generator)  # (pT, eta, mass, N), CPU
        else:
            jets = self.jet_density.sample_given(condition, CONDITION_CANDIDATES, generator)
        n_real = jets[:, 3].long()
        mask = (torch.arange(P).unsqueeze(0) < n_real.unsqueeze(1)).to(device)
        z = torch.randn(b, P, 3, generator=generator).to(device) * mask.unsqueeze(-1)
        cond = self.cond_scaler(jets[:, [0, 2]].to(device)) if self.config.conditional else None
        f = self.field(self.net, mask, cond)
        if self.config.model == "epic-fm":
            y = dynamics.solve_ode(f, z, mask, method, steps, rtol, atol)
        else:
            y = dynamics.jedi_sample(f, z, mask, self.schedule, method, steps, generator, rtol, atol)
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

    # ------------------------------------------------------------ the older positional surface
    _LEGACY = ("steps", "method", "batch_size", "generator", "device", "progress")

    def _legacy(self, name: str, args: tuple, kwargs: dict) -> dict:
        if len(args) > len(self._LEGACY) - (name == "sample"):
            raise TypeError(f"EPiCGenerator.{name}: too many positional arguments")
        deprecated(
            f"EPiCGenerator.{name}(n, steps, method, batch_size, ...) with positional settings",
            f"EPiCGenerator.{name}(n, steps=..., method=..., ...) with keywords",
        )
        for key, value in zip(self._LEGACY, args):
            if key in kwargs:
                raise TypeError(f"EPiCGenerator.{name}: got {key!r} twice")
            kwargs[key] = value
        return kwargs

    def sample_chunks(self, n=None, *legacy, **kwargs):
        """Jet chunks (:class:`hepgen.data.JetSample`); see :meth:`hepgen.models.base.Generator.sample_chunks`.
        Deprecated: settings as positional arguments (steps, method, batch_size, generator,
        device, progress), where batch_size is the chunk size."""
        if legacy:
            kwargs = self._legacy("sample_chunks", legacy, kwargs)
            if "batch_size" in kwargs and "chunk_size" not in kwargs:
                kwargs["chunk_size"] = kwargs.pop("batch_size")
        return super().sample_chunks(n, **kwargs)

    def sample(self, n=None, *legacy, **kwargs):
        """``n`` jets as one :class:`hepgen.data.JetSample` (JetNet layout); see the class
        docstring. Deprecated: settings as positional arguments (steps, method, batch_size,
        generator, device)."""
        if legacy:
            kwargs = self._legacy("sample", legacy, kwargs)
        return super().sample(n, **kwargs)
