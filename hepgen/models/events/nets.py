"""The residual MLP of the diffusion models: [x, time embedding, condition] -> a vector."""

from __future__ import annotations

import math

import torch
from torch import nn

from hepgen.nn.bayesian import linear


def sinusoidal_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """t [B] in [0, 1] -> [B, dim]: sin and cos of t w_k, w_k log-spaced from 1 to 1000.

    (Not EPiC's cos(pi t e^k): its top frequencies are so high that they are noise in t.)
    """
    half = dim // 2
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), half, dtype=t.dtype, device=t.device))
    args = t[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


class ResidualBlock(nn.Module):
    """h + W2 SiLU(W1 SiLU(LayerNorm(h) + P e)), with e the time and condition embedding."""

    def __init__(self, hidden: int, embed: int, **lin):
        super().__init__()
        self.norm = nn.LayerNorm(hidden)
        self.embed = linear(embed, hidden, **lin)
        self.fc1 = linear(hidden, hidden, **lin)
        self.fc2 = linear(hidden, hidden, **lin)
        self.act = nn.SiLU()

    def forward(self, h, e):
        return h + self.fc2(self.act(self.fc1(self.act(self.norm(h) + self.embed(e)))))


class ResNetMLP(nn.Module):
    """f(x, t, c): x [B, D], t [B] in [0, 1], c [B, C] -> [B, D]. ``bayesian`` makes every
    linear layer a mean-field Gaussian one (``prior_std``, ``init_log_var``)."""

    def __init__(
        self,
        features: int,
        cond_features: int,
        hidden: int,
        blocks: int,
        time_dim: int,
        bayesian: bool = False,
        prior_std: float = 1.0,
        init_log_var: float = -9.0,
    ):
        super().__init__()
        lin = {"bayesian": bayesian, **({"prior_std": prior_std, "init_log_var": init_log_var} if bayesian else {})}
        self.time_dim = time_dim
        embed = time_dim + cond_features
        self.inp = linear(features + embed, hidden, **lin)
        self.blocks = nn.ModuleList([ResidualBlock(hidden, embed, **lin) for _ in range(blocks)])
        self.out_norm = nn.LayerNorm(hidden)
        self.out = linear(hidden, features, **lin)
        # The output starts at zero: the first predictions are the mean of the targets' prior.
        weight = self.out.weight_mean if bayesian else self.out.weight
        nn.init.zeros_(weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        e = torch.cat([sinusoidal_embedding(t.to(x.dtype), self.time_dim), c.to(x.dtype)], dim=1)
        h = self.inp(torch.cat([x, e], dim=1))
        for block in self.blocks:
            h = block(h, e)
        return self.out(torch.nn.functional.silu(self.out_norm(h)))
