"""Conditioner networks: a residual MLP with a context (coupling layers) and MADE (masked
autoregressive layers). Parameter names follow nflows' ResidualNet so weights can be copied."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class ResidualBlock(nn.Module):
    """x + W2 act(W1 act(x)), the update gated by sigmoid(C context) when there is a context."""

    def __init__(self, features: int, context_features: int | None, activation=F.relu):
        super().__init__()
        self.activation = activation
        if context_features is not None:
            self.context_layer = nn.Linear(context_features, features)
        self.linear_layers = nn.ModuleList([nn.Linear(features, features) for _ in range(2)])
        # Near-zero last layer: each block starts close to the identity.
        nn.init.uniform_(self.linear_layers[-1].weight, -1e-3, 1e-3)
        nn.init.uniform_(self.linear_layers[-1].bias, -1e-3, 1e-3)

    def forward(self, x, context=None):
        h = self.linear_layers[0](self.activation(x))
        h = self.linear_layers[1](self.activation(h))
        if context is not None:
            h = h * torch.sigmoid(self.context_layer(context))
        return x + h


class ResidualNet(nn.Module):
    """MLP with residual blocks; the context enters the first layer and gates every block."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        hidden_features: int,
        context_features: int | None = None,
        num_blocks: int = 2,
        activation=F.relu,
    ):
        super().__init__()
        self.hidden_features = hidden_features
        self.context_features = context_features
        self.initial_layer = nn.Linear(in_features + (context_features or 0), hidden_features)
        self.blocks = nn.ModuleList(
            [ResidualBlock(hidden_features, context_features, activation) for _ in range(num_blocks)]
        )
        self.final_layer = nn.Linear(hidden_features, out_features)

    def forward(self, x, context=None):
        h = self.initial_layer(x if context is None else torch.cat([x, context], dim=1))
        for block in self.blocks:
            h = block(h, context)
        return self.final_layer(h)


class MaskedLinear(nn.Linear):
    """A linear layer whose weight is multiplied by a fixed 0/1 connectivity mask."""

    def __init__(self, in_degrees: torch.Tensor, out_degrees: torch.Tensor, strict: bool):
        super().__init__(len(in_degrees), len(out_degrees))
        # Output unit o may see input unit i when deg(o) > deg(i) (strict) or >= (hidden layers).
        mask = (out_degrees[:, None] > in_degrees[None, :]) if strict else (out_degrees[:, None] >= in_degrees[None, :])
        self.register_buffer("mask", mask.to(self.weight.dtype))
        self.register_buffer("degrees", out_degrees)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Masked autoregressive network: output block d (``output_multiplier`` units, feature-major)
    depends only on inputs x_<d (and on the context, unmasked). Residual blocks keep degrees."""

    def __init__(
        self,
        features: int,
        hidden_features: int,
        output_multiplier: int,
        context_features: int | None = None,
        num_blocks: int = 2,
        activation=F.relu,
    ):
        super().__init__()
        self.hidden_features = hidden_features
        self.activation = activation
        in_deg = torch.arange(1, features + 1)
        # Hidden degrees cycle through 1 .. max(D - 1, 1).
        hid_deg = torch.arange(hidden_features) % max(features - 1, 1) + min(1, features - 1)
        self.initial_layer = MaskedLinear(in_deg, hid_deg, strict=False)
        if context_features is not None:
            self.context_layer = nn.Linear(context_features, hidden_features)
        self.blocks = nn.ModuleList()
        for _ in range(num_blocks):
            block = nn.ModuleDict(
                {
                    "linear_0": MaskedLinear(hid_deg, hid_deg, strict=False),
                    "linear_1": MaskedLinear(hid_deg, hid_deg, strict=False),
                }
            )
            nn.init.uniform_(block["linear_1"].weight, -1e-3, 1e-3)
            nn.init.uniform_(block["linear_1"].bias, -1e-3, 1e-3)
            if context_features is not None:
                block["context"] = nn.Linear(context_features, hidden_features)
            self.blocks.append(block)
        self.final_layer = MaskedLinear(hid_deg, in_deg.repeat_interleave(output_multiplier), strict=True)

    def forward(self, x, context=None):
        h = self.initial_layer(x)
        if context is not None:
            h = h + self.context_layer(context)
        for block in self.blocks:
            u = block["linear_1"](self.activation(block["linear_0"](self.activation(h))))
            if context is not None:
                u = u * torch.sigmoid(block["context"](context))
            h = h + u
        return self.final_layer(h)
