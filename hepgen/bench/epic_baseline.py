"""EPiC as published, in plain PyTorch: the baseline of hepgen's EPiC tests and benchmarks.

``plain_epic_forward(net, ...)`` runs the modules of a :class:`hepgen.nn.EPiCNet` the way the
authors' code does: [x, g, t, c] concatenated to every particle (padded ones included),
LeakyReLU, residuals, output × mask, pooling as (x·mask).sum / mask.sum and ·0.01. It shares
the network's parameters, so any difference from ``net(...)`` is the implementation's.
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from hepgen.nn.epic import NEGATIVE_SLOPE, EPiCLayer, EPiCNet


def _act(v):
    return F.leaky_relu(v, NEGATIVE_SLOPE)


def _pool(x, m, scale):
    total = (x * m).sum(dim=1)
    return torch.cat([total / m.sum(dim=1).clamp_min(1), total * scale], dim=-1)


def _repeat(v, N):
    return v.unsqueeze(1).expand(-1, N, -1)


def plain_epic_layer(layer: EPiCLayer, x, g, extra, m):
    N = x.shape[1]
    pooled = _pool(x, m, layer.sum_scale)
    h = _act(layer.fc_global1(torch.cat([pooled, g, extra], dim=-1)))
    g = _act(layer.fc_global2(torch.cat([h, extra], dim=-1)) + g)
    per_particle = _repeat(torch.cat([g, extra], dim=-1), N)
    h = _act(layer.fc_local1(torch.cat([x, per_particle], dim=-1)))
    x = _act(layer.fc_local2(torch.cat([h, _repeat(extra, N)], dim=-1)) + x) * m
    return x, g


def plain_epic_forward(net: EPiCNet, x: torch.Tensor, t, mask: torch.Tensor, cond=None) -> torch.Tensor:
    B, N, _ = x.shape
    extra = net.extra_inputs(t, cond, B, x)
    m = mask.to(x.dtype).unsqueeze(-1)
    h = _act(net.fc_in(torch.cat([x, _repeat(extra, N)], dim=-1))) * m
    g = _act(net.fc_global_in(torch.cat([_pool(h, m, net.sum_scale), extra], dim=-1)))
    for layer in net.layers:
        h, g = plain_epic_layer(layer, h, g, extra, m)
    return net.fc_out(torch.cat([h, _repeat(extra, N)], dim=-1)) * m
