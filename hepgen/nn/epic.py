"""EPiC (equivariant point cloud) layers and the EPiC-FM/EPiC-JeDi network, on fused ops.

The published layer (Buhmann, Ewen et al. 2023), with a global vector g (latent 10),
particles x (hidden 128), a time embedding t and conditioning c, LeakyReLU(0.01) as act:

    global:  g' = act(W2·[act(W1·[mean(x), 0.01·sum(x), g, t, c]), t, c] + g)
    local:   x' = mask · act(W4·[act(W3·[x, g', t, c]), t, c] + x)

(time and conditioning enter every linear layer, as in the authors' code). The published
code concatenates [g', t, c] to every particle. Here the columns of W3 and W4 that multiply
the per-set vector are applied once per set, as a per-set bias, and the local update runs
in one fused op (``hepgen.ops.epic_local``) that also returns the pooling the next layer's
global update needs. Parameters are ordinary ``nn.Linear`` modules (optionally with weight
norm) laid out exactly as in the published, concatenating form, so the two forms share
weights: :func:`hepgen.bench.epic_baseline.plain_epic_forward` runs the same modules the
published way and is the baseline of tests and benchmarks. The global update works on [B, ·]
tensors and stays in plain PyTorch: it is a few hundred FLOPs per jet.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from hepgen.ops.epic_local import epic_local
from hepgen.ops.set_pool import set_pool

NEGATIVE_SLOPE = 0.01
SUM_SCALE = 0.01


def cosine_time_embedding(t: torch.Tensor, dim: int = 32) -> torch.Tensor:
    """EPiC-FM's time embedding cos(π t e^k), k = 0 .. dim-1: t [B] → [B, dim].

    Checked against the authors' code: EPiC-FM (and PC-JeDi, whose modules it adapts) calls
    ``cosine_encoding(t, outp_dim=32, min_value=0, max_value=1, frequency_scaling="exponential")``,
    which is ``cos((t + min) · exp(arange(dim)) · π / (max + min))`` = cos(π t e^k), k = 0..31,
    computed in float32. So this is what the published models see. The top frequencies are
    huge (e^31 ≈ 3e13), so those components are effectively pseudo-random in t (and differ
    between float32 and float64): the network learns to ignore them; only the first few
    (k ≲ 5) carry a smooth dependence on t. We keep the published form so that weights and
    timings compare like for like.
    """
    k = torch.arange(dim, dtype=t.dtype, device=t.device)
    return torch.cos(math.pi * t.unsqueeze(-1) * torch.exp(k))


def _linear(n_in: int, n_out: int, weight_norm: bool) -> nn.Linear:
    layer = nn.Linear(n_in, n_out)
    if weight_norm:
        layer = nn.utils.parametrizations.weight_norm(layer)
    return layer


def _act(v: torch.Tensor) -> torch.Tensor:
    return nn.functional.leaky_relu(v, NEGATIVE_SLOPE)


def _split(layer: nn.Linear, n_particle: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(columns on the particle features, columns on the per-set vector, bias) of a layer."""
    w = layer.weight  # weight norm recomputes it here, once per call
    return w[:, :n_particle], w[:, n_particle:], layer.bias


class EPiCLayer(nn.Module):
    """One EPiC layer: a global update from the pooled particles, then the fused local update.

    forward(x [B, N, H], g [B, L], extra [B, E], mask [B, N], pooled [B, 2H])
        → (x' [B, N, H], g' [B, L], pooled' [B, 2H]), where ``extra`` is [t, c] and
    ``pooled`` is set_pool(x, mask) (the previous layer returns it, fused).
    """

    def __init__(
        self,
        hidden: int = 128,
        latent: int = 10,
        extra: int = 32,
        global_hidden: int | None = None,
        weight_norm: bool = True,
        sum_scale: float = SUM_SCALE,
    ):
        super().__init__()
        gh = hidden if global_hidden is None else global_hidden
        self.hidden, self.latent, self.extra, self.sum_scale = hidden, latent, extra, sum_scale
        self.fc_global1 = _linear(2 * hidden + latent + extra, gh, weight_norm)
        self.fc_global2 = _linear(gh + extra, latent, weight_norm)
        self.fc_local1 = _linear(hidden + latent + extra, hidden, weight_norm)
        self.fc_local2 = _linear(hidden + extra, hidden, weight_norm)

    def global_update(self, pooled: torch.Tensor, g: torch.Tensor, extra: torch.Tensor) -> torch.Tensor:
        h = _act(self.fc_global1(torch.cat([pooled, g, extra], dim=-1)))
        return _act(self.fc_global2(torch.cat([h, extra], dim=-1)) + g)

    def forward(self, x, g, extra, mask, pooled):
        g = self.global_update(pooled, g, extra)
        w3x, w3s, b3 = _split(self.fc_local1, self.hidden)
        w4x, w4s, b4 = _split(self.fc_local2, self.hidden)
        bias1 = torch.addmm(b3, torch.cat([g, extra], dim=-1), w3s.t())  # per set, not per particle
        bias2 = torch.addmm(b4, extra, w4s.t())
        x, pooled = epic_local(x, mask, w3x, bias1, w4x, bias2, self.sum_scale, NEGATIVE_SLOPE)
        return x, g, pooled


class EPiCNet(nn.Module):
    """The EPiC-FM / EPiC-JeDi network: particles [B, N, F] at time t → a field [B, N, F].

    Input layer F → hidden, a global vector from the pooled input, ``layers`` EPiC layers,
    output layer hidden → F; time (``time_dim``-dim cosine embedding) and conditioning
    (``cond_dim`` features per jet) enter every linear layer. Padded particles (mask 0) give 0.
    """

    def __init__(
        self,
        features: int = 3,
        hidden: int = 128,
        latent: int = 10,
        layers: int = 6,
        time_dim: int = 32,
        cond_dim: int = 0,
        weight_norm: bool = True,
        sum_scale: float = SUM_SCALE,
    ):
        super().__init__()
        extra = time_dim + cond_dim
        self.features, self.hidden, self.latent = features, hidden, latent
        self.time_dim, self.cond_dim, self.sum_scale = time_dim, cond_dim, sum_scale
        self.fc_in = _linear(features + extra, hidden, weight_norm)
        self.fc_global_in = _linear(2 * hidden + extra, latent, weight_norm)
        self.layers = nn.ModuleList(
            EPiCLayer(hidden, latent, extra, None, weight_norm, sum_scale) for _ in range(layers)
        )
        self.fc_out = _linear(hidden + extra, features, weight_norm)

    def extra_inputs(
        self, t: torch.Tensor | float, cond: torch.Tensor | None, batch: int, like: torch.Tensor
    ) -> torch.Tensor:
        """[time embedding, conditioning] per jet, [B, time_dim + cond_dim]."""
        t = torch.as_tensor(t, dtype=like.dtype, device=like.device)
        if t.dim() == 0:
            t = t.expand(batch)
        if t.shape != (batch,):
            raise ValueError(f"t must be a scalar or have shape (batch,) = ({batch},), got {tuple(t.shape)}")
        parts = [cosine_time_embedding(t, self.time_dim)]
        if self.cond_dim:
            if cond is None or tuple(cond.shape) != (batch, self.cond_dim):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"cond must have shape (batch, cond_dim) = ({batch}, {self.cond_dim}), got {got}")
            parts.append(cond.to(like.dtype))
        elif cond is not None:
            raise ValueError("cond was given but the network has cond_dim = 0")
        return torch.cat(parts, dim=-1)

    def forward(
        self, x: torch.Tensor, t: torch.Tensor | float, mask: torch.Tensor, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        B, N, F = x.shape
        if tuple(mask.shape) != (B, N):
            raise ValueError(f"mask must have shape (batch, set size) = {(B, N)}, got {tuple(mask.shape)}")
        extra = self.extra_inputs(t, cond, B, x)
        m = mask.to(x.dtype).unsqueeze(-1)
        w, ws, b = _split(self.fc_in, F)
        h = _act(x @ w.t() + torch.addmm(b, extra, ws.t()).unsqueeze(1)) * m
        pooled = set_pool(h, mask, self.sum_scale)
        g = _act(self.fc_global_in(torch.cat([pooled, extra], dim=-1)))
        for layer in self.layers:
            h, g, pooled = layer(h, g, extra, mask, pooled)
        w, ws, b = _split(self.fc_out, self.hidden)
        return (h @ w.t() + torch.addmm(b, extra, ws.t()).unsqueeze(1)) * m
