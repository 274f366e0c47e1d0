"""CaloMan's invertible preprocessing of showers and incident energies.

- voxels: E_voxel / (3.1 × E_inc) (the paper's code: voxels in GeV over 3.1 × E_inc in GeV
  for photons; the units cancel, so we work in MeV throughout), then standardised per voxel.
- incident energy: log10(E_inc) min-max scaled to [0, 1] over the training range.
- energy per layer (fast-sampling path): log10(E_layer / E_inc + 1e-6), standardised.

Departure from the paper: the per-voxel standardisation. With the raw fractions (at most
1/3.1, most of them ~1e-3) the VAE's summed squared error is tiny next to its KL term and
the latent collapses; standardised, every voxel weighs the same in the reconstruction.

All state lives in buffers, so it travels with the model's ``state_dict`` (checkpoints).
"""

from __future__ import annotations

import torch
from torch import nn

# The paper's code divides photon voxels by 3.1 × E_inc (the largest deposit fraction seen).
PHOTON_SCALE = 3.1
# Keeps log10 of an empty layer finite: 1e-6 of E_inc is below any recorded deposit.
LAYER_EPS = 1e-6


def _check_pair(showers: torch.Tensor, energies: torch.Tensor, n_voxels: int) -> None:
    if showers.dim() != 2 or showers.shape[1] != n_voxels:
        raise ValueError(f"showers must be [N, {n_voxels}], got shape {tuple(showers.shape)}")
    if energies.shape != (showers.shape[0], 1):
        raise ValueError(f"energies must be [{showers.shape[0]}, 1], got shape {tuple(energies.shape)}")


class Preprocessing(nn.Module):
    """Invertible maps between physical showers (MeV) and the networks' inputs."""

    def __init__(self, n_voxels: int, layer_sizes: tuple[int, ...], scale: float = PHOTON_SCALE):
        super().__init__()
        if sum(layer_sizes) != n_voxels:
            raise ValueError(f"layer_sizes must sum to n_voxels={n_voxels}, got {sum(layer_sizes)}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.n_voxels, self.layer_sizes, self.scale = n_voxels, tuple(layer_sizes), float(scale)
        n_layers = len(layer_sizes)
        # Defaults are identity maps; fit() replaces them with the training data's.
        self.register_buffer("log_e_range", torch.tensor([0.0, 1.0], dtype=torch.float64))
        self.register_buffer("voxel_mean", torch.zeros(n_voxels))
        self.register_buffer("voxel_std", torch.ones(n_voxels))
        self.register_buffer("layer_mean", torch.zeros(n_layers))
        self.register_buffer("layer_std", torch.ones(n_layers))
        # Range of the standardised layer values in training: samples are clamped to it, since
        # 10**y turns a flow's rare far-tail draw into a layer with many times E_inc.
        self.register_buffer("layer_low", torch.full((n_layers,), -torch.inf))
        self.register_buffer("layer_high", torch.full((n_layers,), torch.inf))
        self.register_buffer("fitted", torch.tensor(False))
        # Layer of each voxel: spreads per-layer factors over voxels by indexing (persistent=False:
        # derived from layer_sizes, so not part of a checkpoint).
        sizes = torch.tensor(self.layer_sizes)
        self.register_buffer("voxel_layer", torch.repeat_interleave(torch.arange(n_layers), sizes), persistent=False)

    # --- fitting -------------------------------------------------------------------
    @torch.no_grad()
    def fit(self, showers: torch.Tensor, energies: torch.Tensor) -> Preprocessing:
        _check_pair(showers, energies, self.n_voxels)
        if showers.shape[0] < 2:
            raise ValueError(f"showers: need at least 2 showers to fit the preprocessing, got {showers.shape[0]}")
        if not bool(torch.all(energies > 0)):
            raise ValueError("energies must be positive (MeV)")
        log_e = torch.log10(energies.double())
        lo, hi = log_e.min(), log_e.max()
        if hi - lo < 1e-6:  # one incident energy: any width maps it to 0
            hi = lo + 1.0
        self.log_e_range.copy_(torch.stack([lo, hi]))
        x = showers.double() / (self.scale * energies.double())
        self.voxel_mean.copy_(x.mean(0))
        # A voxel that never fires has std 0: keep it at 1 so the map stays invertible.
        std = x.std(0)
        self.voxel_std.copy_(torch.where(std > 1e-12, std, torch.ones_like(std)))
        y = self._log_layer_fractions(showers.double(), energies.double())
        self.layer_mean.copy_(y.mean(0))
        std = y.std(0)
        self.layer_std.copy_(torch.where(std > 1e-12, std, torch.ones_like(std)))
        y = (y - self.layer_mean) / self.layer_std
        self.layer_low.copy_(y.min(0).values)
        self.layer_high.copy_(y.max(0).values)
        self.fitted.fill_(True)
        return self

    # --- incident energy --------------------------------------------------------------
    def energy_to_condition(self, energies: torch.Tensor) -> torch.Tensor:
        """[N, 1] MeV → [N, 1] in [0, 1] over the training range (min-max on log10)."""
        lo, hi = self.log_e_range
        return ((torch.log10(energies.double()) - lo) / (hi - lo)).to(self.voxel_mean.dtype)

    def condition_to_energy(self, condition: torch.Tensor) -> torch.Tensor:
        lo, hi = self.log_e_range
        return (10 ** (condition.double() * (hi - lo) + lo)).to(self.voxel_mean.dtype)

    # --- voxels ---------------------------------------------------------------------------
    def voxels_forward(self, showers: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        _check_pair(showers, energies, self.n_voxels)
        return (showers / (self.scale * energies) - self.voxel_mean) / self.voxel_std

    def voxels_inverse(self, x: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        _check_pair(x, energies, self.n_voxels)
        return (x * self.voxel_std + self.voxel_mean) * (self.scale * energies)

    # --- energy per layer -----------------------------------------------------------------
    def layer_energies(self, showers: torch.Tensor) -> torch.Tensor:
        """[N, n_voxels] → [N, n_layers] sums per layer."""
        return torch.stack([part.sum(1) for part in showers.split(self.layer_sizes, dim=1)], dim=1)

    def _log_layer_fractions(self, showers, energies):
        return torch.log10(self.layer_energies(showers) / energies + LAYER_EPS)

    def layers_forward(self, layer_energies: torch.Tensor, energies: torch.Tensor) -> torch.Tensor:
        y = torch.log10(layer_energies / energies + LAYER_EPS)
        return (y - self.layer_mean) / self.layer_std

    def layers_inverse(self, y: torch.Tensor, energies: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Layer energies (MeV); ``clamp``: first clamp y to the training range (sampling)."""
        if clamp:
            y = torch.maximum(torch.minimum(y, self.layer_high), self.layer_low)
        fraction = 10 ** (y * self.layer_std + self.layer_mean) - LAYER_EPS
        return fraction.clamp_min(0) * energies
