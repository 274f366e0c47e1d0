"""Spline layers on hepgen.ops.rq_spline: a conditional coupling layer and a masked
autoregressive layer (Neural Spline Flows, Durkan et al. 2019; nflows' conventions).

Both turn a conditioner output [B, D' (3K - 1)] into per-feature spline parameters; the
widths and heights are divided by sqrt(hidden features) so that a fresh network starts near
uniform bins (as nflows does). The three parameter slices are passed to the op as strided
views of the conditioner output (the kernels read them in place).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hepgen.flows.nets import MADE, ResidualNet
from hepgen.flows.transforms import Transform
from hepgen.ops import rq_spline


def alternating_mask(features: int, even: bool) -> torch.Tensor:
    """1 marks a transformed feature: the even (or odd) positions."""
    mask = torch.zeros(features, dtype=torch.bool)
    mask[0 if even else 1 :: 2] = True
    return mask


class _SplineParams:
    """Splitting a conditioner output into the three unnormalised parameter tensors."""

    num_bins: int
    tail_bound: float
    hidden_features: int

    def _spline(self, x, params, inverse):
        K = self.num_bins
        params = params.view(x.shape[0], x.shape[1], 3 * K - 1)
        scale = 1 / math.sqrt(self.hidden_features)
        y, ld = rq_spline(
            x,
            params[..., :K] * scale,
            params[..., K : 2 * K] * scale,
            params[..., 2 * K :],
            inverse=inverse,
            tail_bound=self.tail_bound,
        )
        return y, ld.sum(dim=1)


class RQSCouplingTransform(Transform, _SplineParams):
    """Coupling layer: features where ``mask`` is True go through a rational-quadratic spline whose
    parameters a residual net computes from the other features and the context."""

    def __init__(
        self,
        mask: torch.Tensor,
        hidden_features: int = 64,
        context_features: int | None = None,
        num_blocks: int = 3,
        num_bins: int = 8,
        tail_bound: float = 1.0,
        activation=F.relu,
    ):
        super().__init__()
        mask = torch.as_tensor(mask, dtype=torch.bool)
        if mask.dim() != 1 or mask.all() or not mask.any():
            raise ValueError("mask must be 1-D with at least one transformed and one identity feature")
        features = torch.arange(len(mask))
        self.register_buffer("transform_features", features[mask])
        self.register_buffer("identity_features", features[~mask])
        # Alternating masks (CaloMan's) select every other feature: strided slices are views,
        # where index tensors cost a gather and a scatter per call.
        self._slices = None
        if torch.equal(mask, alternating_mask(len(mask), even=True)):
            self._slices = (slice(0, None, 2), slice(1, None, 2))
        elif torch.equal(mask, alternating_mask(len(mask), even=False)):
            self._slices = (slice(1, None, 2), slice(0, None, 2))
        self.num_bins, self.tail_bound, self.hidden_features = num_bins, tail_bound, hidden_features
        self.transform_net = ResidualNet(
            len(self.identity_features),
            len(self.transform_features) * (3 * num_bins - 1),
            hidden_features,
            context_features,
            num_blocks,
            activation,
        )

    def _couple(self, x, context, inverse):
        if self._slices is not None:
            transform, identity = self._slices
            params = self.transform_net(x[:, identity], context)
            y, ld = self._spline(x[:, transform], params, inverse)
            out = torch.empty_like(x)
            out[:, transform] = y
            out[:, identity] = x[:, identity]
            return out, ld
        params = self.transform_net(x[:, self.identity_features], context)
        y, ld = self._spline(x[:, self.transform_features], params, inverse)
        out = x.clone()
        out[:, self.transform_features] = y
        return out, ld

    def forward(self, x, context=None):
        return self._couple(x, context, inverse=False)

    def inverse(self, z, context=None):
        return self._couple(z, context, inverse=True)


class MaskedRQSAutoregressiveTransform(Transform, _SplineParams):
    """Autoregressive layer: feature d goes through a spline whose parameters MADE computes from
    features < d and the context. Forward (density) is one pass; inverse (sampling) takes D."""

    def __init__(
        self,
        features: int,
        hidden_features: int = 64,
        context_features: int | None = None,
        num_blocks: int = 2,
        num_bins: int = 8,
        tail_bound: float = 1.0,
        activation=F.relu,
    ):
        super().__init__()
        self.features = features
        self.num_bins, self.tail_bound, self.hidden_features = num_bins, tail_bound, hidden_features
        self.autoregressive_net = MADE(
            features, hidden_features, 3 * num_bins - 1, context_features, num_blocks, activation
        )

    def forward(self, x, context=None):
        return self._spline(x, self.autoregressive_net(x, context), inverse=False)

    def inverse(self, z, context=None):
        x = torch.zeros_like(z)
        ld = z.new_zeros(z.shape[0])
        for _ in range(self.features):  # after pass d, features <= d are final
            x, ld = self._spline(z, self.autoregressive_net(x, context), inverse=True)
        return x, ld
