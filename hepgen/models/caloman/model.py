"""CaloMan: a VAE's manifold, a conditional spline flow on its latent, and an energy-per-layer
flow that sets each layer's energy in the fast-sampling path.

Sampling for incident energies E (the paper's code with per-layer normalisation): the layer
flow draws the energies per layer given E, the latent flow draws z given E and those layer
energies, the decoder maps z to each layer's voxel shares, and the shares are multiplied by
the drawn layer energies. Departures from the paper (why in each place):

- The flow models the *standardised* encoder means (latent_mean/std, fitted after the VAE),
  with a tail bound of 3 (config.flow_tail_bound; the paper's code: 1): on a standardised
  latent a bound of 1 leaves a third of every coordinate in the identity tails.
- Decoded voxel shares are clamped at 0: an MLP decoder can undershoot zero, and a
  negative deposit is unphysical (the paper's code applies a threshold for the same reason).
"""

from __future__ import annotations

import numpy as np
import torch

from hepgen.flows import coupling_spline_flow
from hepgen.models.base import Generator, deprecated, positive_int
from hepgen.models.caloman.config import CaloManConfig
from hepgen.models.caloman.preprocessing import Preprocessing
from hepgen.models.caloman.vae import VAE

# How far outside the training range of log10 E_inc a request may go: the flows are
# conditioned on the min-max scaled energy and were never trained beyond [0, 1].
_ENERGY_SLACK = 0.01


class CaloMan(Generator):
    """CaloMan showers; ``sample(n, condition=energies)`` (see :mod:`hepgen.models.base`).

    ``condition``: incident energies [N] or [N, 1] in MeV within the training range; then
    ``n`` is None or N. Without it, each shower's energy is drawn uniformly from the
    CaloChallenge dataset-1 energies (256 MeV ... 4 TeV in powers of two) inside the
    training range. No sampler settings (the flows sample in one pass).
    """

    kind = "showers"
    checkpoint_format = "hepgen.caloman"
    # 2: per-layer normalised voxels, the latent flow conditioned on the layer energies.
    checkpoint_version = 2
    default_batch_size = 10_000
    condition_help = "incident energies [N] or [N, 1] in MeV"

    def __init__(self, config: CaloManConfig | None = None, seed: int = 0):
        super().__init__()
        self.config = config = config or CaloManConfig()
        if not isinstance(config, CaloManConfig):
            raise TypeError(f"config must be a CaloManConfig, got {type(config).__name__}")
        g = torch.Generator().manual_seed(seed)  # the flows' random permutations
        self.preprocessing = Preprocessing(config.n_voxels, config.layer_sizes, config.scale)
        self.vae = VAE(config.n_voxels, config.latent, config.hidden)
        n_layers = len(config.layer_sizes)
        # The latent flow's context: the scaled log E_inc and the standardised layer values.
        self.latent_flow = coupling_spline_flow(
            config.latent,
            1 + n_layers,
            config.flow_layers,
            config.flow_hidden,
            config.flow_blocks,
            config.flow_bins,
            config.flow_tail_bound,
            generator=g,
        )
        self.layer_flow = coupling_spline_flow(
            n_layers,
            1,
            config.layer_flow_layers,
            config.layer_flow_hidden,
            config.layer_flow_blocks,
            config.flow_bins,
            config.layer_flow_tail_bound,
            generator=g,
        )
        self.register_buffer("latent_mean", torch.zeros(config.latent))
        self.register_buffer("latent_std", torch.ones(config.latent))

    # --- pieces used in training ----------------------------------------------------------
    def latent_log_prob(self, u: torch.Tensor, condition: torch.Tensor, layer_values: torch.Tensor) -> torch.Tensor:
        """log p(u | E_inc, layer energies): ``condition`` [B, 1], ``layer_values`` [B, n_layers] (standardised)."""
        return self.latent_flow.log_prob(u, torch.cat([condition, layer_values], dim=1))

    def layer_log_prob(self, y: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
        return self.layer_flow.log_prob(y, condition)

    # --- generation ------------------------------------------------------------------------
    def check_energies(self, energies) -> torch.Tensor:
        """[N] or [N, 1] incident energies (MeV) → float64 [N, 1], or a ValueError."""
        e = torch.as_tensor(np.asarray(energies, dtype=np.float64) if not torch.is_tensor(energies) else energies)
        if e.dim() == 2 and e.shape[1] == 1:
            e = e[:, 0]
        if e.dim() != 1:
            raise ValueError(f"energies must be [N] or [N, 1] (MeV), got shape {tuple(e.shape)}")
        e = e.double()
        if not bool(torch.isfinite(e).all()) or bool((e <= 0).any()):
            raise ValueError("energies must be finite and positive (MeV)")
        if not bool(self.preprocessing.fitted):
            raise RuntimeError("this CaloMan model is untrained (its preprocessing was never fitted)")
        lo, hi = (10 ** self.preprocessing.log_e_range.cpu()).tolist()
        log_e = torch.log10(e)
        lo_l, hi_l = self.preprocessing.log_e_range.cpu().tolist()
        slack = _ENERGY_SLACK * (hi_l - lo_l)
        if len(e) and (log_e.min() < lo_l - slack or log_e.max() > hi_l + slack):
            raise ValueError(
                f"energies must lie in the training range {lo:.4g}–{hi:.4g} MeV, "
                f"got {e.min().item():.4g}–{e.max().item():.4g} MeV"
            )
        return e[:, None]

    def _flow_sample(self, flow, context: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """One draw per context row; from ``generator`` (CPU, any device) if given."""
        if generator is None:  # the flow's own draw from the global generator (the older numbers)
            return flow.sample(1, context).view(context.shape[0], -1)
        z = torch.randn(context.shape[0], flow.features, generator=generator, dtype=context.dtype)
        return flow.transform.inverse(z.to(context.device), context)[0]

    @torch.no_grad()
    def sample_chunk(self, energies: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Showers (MeV) for one chunk of [n, 1] energies on the model's device."""
        p = self.preprocessing
        e = energies.to(p.voxel_mean)
        c = p.energy_to_condition(e)
        # Clamped to the training range before use as the latent flow's context and before 10**y.
        y = self._flow_sample(self.layer_flow, c, generator)
        y = torch.maximum(torch.minimum(y, p.layer_high), p.layer_low)
        layers = p.layers_inverse(y, e, clamp=False)
        u = self._flow_sample(self.latent_flow, torch.cat([c, y], dim=1), generator)
        z = u * self.latent_std + self.latent_mean
        return p.voxels_inverse(self.vae.decode(z), layers)

    @torch.no_grad()
    def sample_showers(self, energies, generator: torch.Generator | None = None) -> torch.Tensor:
        """[N, n_voxels] showers (MeV, float64) on the model's device for incident energies
        [N] or [N, 1] (MeV, checked as ``condition`` is), in one pass: no chunking, no sample
        object, no mode switch. The low-overhead call for latency-bound callers (a shower per
        call inside a detector simulation; ``hepgen bench calo``'s batch-1 latency), where
        ``sample(condition=...)``'s bookkeeping costs about as much as the flows. Call it on
        a model in eval mode, as :func:`hepgen.models.load` returns it."""
        if self.training:
            raise RuntimeError("sample_showers needs the model in eval mode (model.eval())")
        return self.sample_chunk(self.check_energies(energies).to(self.latent_mean.device), generator)

    # --- the generator contract (hepgen.models.base) ----------------------------------------
    def allowed_energies(self) -> np.ndarray:
        """The dataset-1 energies (MeV) inside the training range: the default condition."""
        from hepgen.data.showers import DATASET1_ENERGIES_MEV

        if not bool(self.preprocessing.fitted):
            raise RuntimeError("this CaloMan model is untrained (its preprocessing was never fitted)")
        lo, hi = (10 ** self.preprocessing.log_e_range.cpu().double()).tolist()
        return np.asarray([e for e in DATASET1_ENERGIES_MEV if lo * (1 - 1e-6) <= e <= hi * (1 + 1e-6)])

    def check_condition(self, n, condition):
        if condition is None:
            n = positive_int("n", n)
            if len(self.allowed_energies()) == 0:
                raise ValueError(
                    "condition: this model's training range holds none of dataset 1's energies; "
                    "pass the incident energies (MeV)"
                )
            return n, None
        e = self.check_energies(condition)
        if n is not None and n != len(e):
            raise ValueError(f"n={n!r} but condition holds {len(e)} incident energies; pass n=None or n={len(e)}")
        if len(e) == 0:
            raise ValueError("condition: no incident energies")
        return len(e), e

    def generate_chunk(self, n, condition, generator, device, batch_size, settings):
        from hepgen.data.showers import ShowerSample

        if condition is None:
            allowed = torch.as_tensor(self.allowed_energies())
            condition = allowed[torch.randint(len(allowed), (n,), generator=generator)][:, None]
        out = np.empty((n, self.config.n_voxels), dtype=np.float32)
        for start in range(0, n, batch_size):
            chunk = condition[start : start + batch_size].to(device)
            out[start : start + len(chunk)] = self.sample_chunk(chunk, generator).float().cpu().numpy()
        return ShowerSample(condition.numpy().astype(np.float32), out)

    @classmethod
    def build(cls, config_dict: dict) -> CaloMan:
        return cls(CaloManConfig.from_dict(config_dict))

    def sample(self, n=None, *legacy, **kwargs):
        """Showers as a :class:`hepgen.data.ShowerSample` (the contract: :mod:`hepgen.models.base`).

        Deprecated: ``sample(energies, batch_size=10000, out=None)`` with the energies as
        the first argument returns the [N, n_voxels] float32 array (MeV) as before."""
        if n is not None and (isinstance(n, (list, tuple, np.ndarray)) or torch.is_tensor(n)):
            deprecated(
                "CaloMan.sample(energies, batch_size, out) returning an array",
                "CaloMan.sample(condition=energies).showers",
            )
            return self._sample_array(n, *legacy, **kwargs)
        if legacy:
            raise TypeError("CaloMan.sample takes n and keyword arguments only")
        return super().sample(n, **kwargs)

    @torch.no_grad()
    def _sample_array(self, energies, batch_size: int = 10_000, out: np.ndarray | None = None) -> np.ndarray:
        """The older surface: [N, n_voxels] float32 showers (MeV) into ``out`` (or a new array),
        drawn from torch's global generator in chunks of ``batch_size``."""
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
        e = self.check_energies(energies)
        n = e.shape[0]
        if out is None:
            out = np.empty((n, self.config.n_voxels), dtype=np.float32)
        elif out.shape != (n, self.config.n_voxels) or out.dtype != np.float32:
            raise ValueError(f"out must be float32 of shape {(n, self.config.n_voxels)}, got {out.dtype} {out.shape}")
        device = self.latent_mean.device
        was_training = self.training
        if was_training:  # train()/eval() walk every submodule: skipped when already in eval mode
            self.eval()
        try:
            for start in range(0, n, batch_size):
                chunk = e[start : start + batch_size].to(device)
                out[start : start + len(chunk)] = self.sample_chunk(chunk).float().cpu().numpy()
        finally:
            if was_training:
                self.train()
        return out
