"""A normalizing flow: a transform from data to a standard-normal base, with a context, and
the spline flows of CaloMan's configuration."""

from __future__ import annotations

import math

import torch
from torch import nn

from hepgen.flows.spline import MaskedRQSAutoregressiveTransform, RQSCouplingTransform, alternating_mask
from hepgen.flows.transforms import CompositeTransform, LULinear, RandomPermutation, Transform


class Flow(nn.Module):
    """log p(x | c) = log N(f(x; c); 0, I) + log|det df/dx|, with f = ``transform`` (data → noise)."""

    def __init__(self, transform: Transform, features: int, context_features: int | None = None):
        super().__init__()
        self.transform, self.features, self.context_features = transform, features, context_features

    def _check(self, x: torch.Tensor | None, context: torch.Tensor | None, what: str) -> None:
        if x is not None and (x.dim() != 2 or x.shape[1] != self.features):
            raise ValueError(f"{what} must be [batch, {self.features}], got shape {tuple(x.shape)}")
        if (context is None) != (self.context_features is None):
            raise ValueError("context is required by this flow" if context is None else "this flow takes no context")
        if context is not None and (context.dim() != 2 or context.shape[1] != self.context_features):
            raise ValueError(f"context must be [batch, {self.context_features}], got shape {tuple(context.shape)}")

    def _base_log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return -0.5 * (z**2).sum(dim=1) - 0.5 * self.features * math.log(2 * math.pi)

    def log_prob(self, x: torch.Tensor, context: torch.Tensor | None = None) -> torch.Tensor:
        """[B] log-densities of x [B, D] given the context [B, C] (if the flow has one)."""
        self._check(x, context, "x")
        if context is not None and context.shape[0] != x.shape[0]:
            raise ValueError(f"context has {context.shape[0]} rows but x has {x.shape[0]}")
        z, ld = self.transform(x, context)
        return self._base_log_prob(z) + ld

    def sample_and_log_prob(self, n: int, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """n samples (per context row: [C, n, D] and [C, n]; without a context: [n, D] and [n])."""
        if not isinstance(n, int) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        self._check(None, context, "")
        p = next(self.parameters())
        if context is None:
            z = torch.randn(n, self.features, dtype=p.dtype, device=p.device)
            x, ld = self.transform.inverse(z, None)
            return x, self._base_log_prob(z) - ld
        C = context.shape[0]
        z = torch.randn(C * n, self.features, dtype=p.dtype, device=p.device)
        x, ld = self.transform.inverse(z, context if n == 1 else context.repeat_interleave(n, dim=0))
        return x.view(C, n, self.features), (self._base_log_prob(z) - ld).view(C, n)

    def sample(self, n: int, context: torch.Tensor | None = None) -> torch.Tensor:
        return self.sample_and_log_prob(n, context)[0]


def coupling_spline_flow(
    features: int,
    context_features: int | None = None,
    num_layers: int = 4,
    hidden_features: int = 64,
    num_blocks: int = 3,
    num_bins: int = 8,
    tail_bound: float = 1.0,
    generator: torch.Generator | None = None,
) -> Flow:
    """CaloMan's conditional NSF: per layer an RQ coupling (alternating masks, residual net with the
    context), a random permutation and an LU-linear layer."""
    if features < 2:
        raise ValueError(f"a coupling flow needs features >= 2, got {features}")
    layers: list[Transform] = []
    for i in range(num_layers):
        layers.append(
            RQSCouplingTransform(
                alternating_mask(features, even=i % 2 == 0),
                hidden_features,
                context_features,
                num_blocks,
                num_bins,
                tail_bound,
            )
        )
        layers.append(RandomPermutation(features, generator))
        layers.append(LULinear(features))
    return Flow(CompositeTransform(layers), features, context_features)


def autoregressive_spline_flow(
    features: int,
    context_features: int | None = None,
    num_layers: int = 4,
    hidden_features: int = 64,
    num_blocks: int = 2,
    num_bins: int = 8,
    tail_bound: float = 1.0,
    generator: torch.Generator | None = None,
) -> Flow:
    """Masked autoregressive NSF: per layer an RQ autoregressive spline (MADE with the context),
    a random permutation and an LU-linear layer."""
    layers: list[Transform] = []
    for _ in range(num_layers):
        layers.append(
            MaskedRQSAutoregressiveTransform(
                features, hidden_features, context_features, num_blocks, num_bins, tail_bound
            )
        )
        layers.append(RandomPermutation(features, generator))
        layers.append(LULinear(features))
    return Flow(CompositeTransform(layers), features, context_features)
