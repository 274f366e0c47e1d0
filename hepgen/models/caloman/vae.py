"""CaloMan's VAE: MLP encoder and decoder (hidden 512, 512, 512 in the paper's code)."""

from __future__ import annotations

import torch
from torch import nn


def mlp(sizes: list[int]) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class VAE(nn.Module):
    """Gaussian encoder q(z | x) and a deterministic decoder x̂(z), on preprocessed voxels.

    The VAE learns the manifold only; the density on it is the latent flow's job, which is
    why sampling decodes flow samples and never the prior.
    """

    def __init__(self, n_voxels: int, latent: int, hidden: tuple[int, ...] = (512, 512, 512)):
        super().__init__()
        if latent < 2:  # the latent flow couples halves of z
            raise ValueError(f"latent must be >= 2, got {latent}")
        self.n_voxels, self.latent = n_voxels, latent
        self.encoder = mlp([n_voxels, *hidden, 2 * latent])
        self.decoder = mlp([latent, *reversed(hidden), n_voxels])

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(z | x)."""
        mean, log_var = self.encoder(x).chunk(2, dim=1)
        return mean, log_var.clamp(-12, 8)  # bounded so exp() cannot overflow early in training

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.decoder(z)

    def loss(self, x: torch.Tensor, kl_weight: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Mean over the batch of (squared error summed over voxels + kl_weight × KL): total, recon, KL."""
        mean, log_var = self.encode(x)
        z = mean + torch.randn_like(mean) * (0.5 * log_var).exp()
        recon = ((self.decode(z) - x) ** 2).sum(1).mean()
        kl = 0.5 * (mean**2 + log_var.exp() - 1 - log_var).sum(1).mean()
        return recon + kl_weight * kl, recon, kl
