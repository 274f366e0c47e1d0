"""One-dimensional Gaussian mixtures: the conditionals p(x_i | x_<i) of JetGPT.

The network's head gives, per token, K logits, K means and K raw widths; :func:`split_head`
turns them into (log weights, means, log sigmas), :func:`log_prob` evaluates the mixture
density and :func:`sample` draws from it with externally supplied uniforms and normals,
so that two sampling paths fed the same random numbers give the same values.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

_HALF_LOG_2PI = 0.5 * math.log(2 * math.pi)


def split_head(raw: torch.Tensor, min_log_sigma: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """raw [..., 3K] -> (log_weights, means, log_sigmas), each [..., K].

    log sigma = min_log_sigma + softplus(raw - min_log_sigma): close to raw above the bound and
    never below it, so a component cannot collapse onto a point (the likelihood would diverge),
    while the gradient never vanishes as a hard clamp's would.
    """
    if raw.shape[-1] % 3:
        raise ValueError(f"raw: last dimension must be 3K, got {raw.shape[-1]}")
    logits, means, raw_sigma = raw.chunk(3, dim=-1)
    log_sigmas = min_log_sigma + F.softplus(raw_sigma - min_log_sigma)
    return F.log_softmax(logits, dim=-1), means, log_sigmas


def log_prob(x: torch.Tensor, log_weights: torch.Tensor, means: torch.Tensor, log_sigmas: torch.Tensor) -> torch.Tensor:
    """log sum_k w_k N(x; mu_k, sigma_k^2) for x [...] and parameters [..., K] -> [...]."""
    z = (x.unsqueeze(-1) - means) * torch.exp(-log_sigmas)
    return torch.logsumexp(log_weights - log_sigmas - _HALF_LOG_2PI - 0.5 * z * z, dim=-1)


def sample(
    log_weights: torch.Tensor,
    means: torch.Tensor,
    log_sigmas: torch.Tensor,
    uniform: torch.Tensor,
    normal: torch.Tensor,
) -> torch.Tensor:
    """Draw x [...] from mixtures with parameters [..., K], given uniform ~ U(0, 1) [...] (picks
    the component by inverting the cumulative weights) and normal ~ N(0, 1) [...]."""
    cumulative = torch.cumsum(torch.exp(log_weights), dim=-1)
    k = (cumulative < uniform.unsqueeze(-1) * cumulative[..., -1:]).sum(-1, keepdim=True)
    k = k.clamp_max(log_weights.shape[-1] - 1)
    mu = torch.gather(means, -1, k).squeeze(-1)
    sigma = torch.exp(torch.gather(log_sigmas, -1, k).squeeze(-1))
    return mu + sigma * normal
