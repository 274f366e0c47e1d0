"""Invertible, mask-aware preprocessing of particle features and of the conditioning.

Particles: (eta_rel, phi_rel, pt_rel) standardised with means and standard deviations taken
over real particles only, then scaled to ``feature_std`` (the authors' code normalises to
std 5); padded particles stay exactly zero both ways. Conditioning: jet (pT, mass)
standardised over jets.
"""

from __future__ import annotations

import torch
from torch import nn


def _as_mask(mask: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    if mask.shape != like.shape[:2]:
        raise ValueError(f"mask must have shape (batch, particles) = {tuple(like.shape[:2])}, got {tuple(mask.shape)}")
    return mask.to(like.dtype).unsqueeze(-1)


class ParticleScaler(nn.Module):
    """x [B, P, 3] ↔ (x - mean) / std · feature_std on real particles; padding stays 0."""

    def __init__(self, features: int = 3, feature_std: float = 5.0):
        super().__init__()
        self.feature_std = float(feature_std)
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    def fit(self, x: torch.Tensor, mask: torch.Tensor) -> ParticleScaler:
        m = _as_mask(mask, x).to(torch.float64)
        count = m.sum()
        if count < 2:
            raise ValueError(f"need at least 2 real particles to fit the preprocessing, got {int(count)}")
        x64 = x.to(torch.float64)
        mean = (x64 * m).sum(dim=(0, 1)) / count
        var = (((x64 - mean) * m) ** 2).sum(dim=(0, 1)) / (count - 1)
        self.mean.copy_(mean.to(self.mean.dtype))
        # A constant feature would divide by zero; keep it unscaled instead.
        self.std.copy_(torch.where(var > 0, var.sqrt(), torch.ones_like(var)).to(self.std.dtype))
        return self

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std * self.feature_std * _as_mask(mask, x)

    def inverse(self, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return (y / self.feature_std * self.std + self.mean) * _as_mask(mask, y)


class ConditionScaler(nn.Module):
    """Jet (pT, mass) [B, 2] ↔ standardised conditioning [B, 2]."""

    def __init__(self, features: int = 2):
        super().__init__()
        self.register_buffer("mean", torch.zeros(features))
        self.register_buffer("std", torch.ones(features))

    def fit(self, c: torch.Tensor) -> ConditionScaler:
        if c.shape[0] < 2:
            raise ValueError(f"need at least 2 jets to fit the conditioning scale, got {c.shape[0]}")
        c64 = c.to(torch.float64)
        std = c64.std(dim=0)
        self.mean.copy_(c64.mean(dim=0).to(self.mean.dtype))
        self.std.copy_(torch.where(std > 0, std, torch.ones_like(std)).to(self.std.dtype))
        return self

    def forward(self, c: torch.Tensor) -> torch.Tensor:
        return (c - self.mean) / self.std

    def inverse(self, u: torch.Tensor) -> torch.Tensor:
        return u * self.std + self.mean
