"""The classifier network: a standardising MLP that outputs one logit (truth vs generated)."""

from __future__ import annotations

import torch
from torch import nn


class MLPClassifier(nn.Module):
    """``hidden_layers`` × ``hidden_units`` MLP, LeakyReLU and dropout, one output logit.

    Inputs are standardised with a mean and std stored as buffers (fitted on the training
    data), so a saved classifier carries its own preprocessing.
    """

    def __init__(self, n_inputs: int, hidden_layers: int = 5, hidden_units: int = 256, dropout: float = 0.1):
        super().__init__()
        if n_inputs < 1:
            raise ValueError(f"n_inputs: expected at least 1, got {n_inputs}")
        if hidden_layers < 1 or hidden_units < 1:
            raise ValueError(f"hidden_layers, hidden_units: expected at least 1, got {hidden_layers}, {hidden_units}")
        self.register_buffer("mean", torch.zeros(n_inputs))
        self.register_buffer("std", torch.ones(n_inputs))
        layers: list[nn.Module] = []
        width = n_inputs
        for _ in range(hidden_layers):
            layers += [nn.Linear(width, hidden_units), nn.LeakyReLU(), nn.Dropout(dropout)]
            width = hidden_units
        layers.append(nn.Linear(width, 1))
        self.network = nn.Sequential(*layers)

    def set_standardisation(self, x: torch.Tensor) -> None:
        """Take the per-feature mean and std of ``x``; constant features keep std 1."""
        std = x.std(dim=0)
        self.mean.copy_(x.mean(dim=0))
        self.std.copy_(torch.where(std > 0, std, torch.ones_like(std)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N,): positive for truth-like, negative for generated-like inputs."""
        return self.network((x - self.mean) / self.std).squeeze(-1)
