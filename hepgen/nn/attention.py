"""Causal self-attention and a pre-LayerNorm transformer block on hepgen's masked_attention.

The GPT block of JetGPT: x + Attn(LN(x)), then x + MLP(LN(x)) with a GELU MLP of 4x width.
With a :class:`KVCache` per block, the same modules run autoregressive sampling one token
at a time (each call attends over the cached tokens); without one they run the whole
sequence with the causal mask (training, likelihood).
"""

from __future__ import annotations

import torch
from torch import nn

from hepgen.nn.kv_cache import KVCache
from hepgen.ops.masked_attention import masked_attention

__all__ = ["CausalSelfAttention", "TransformerBlock"]


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with key padding: [B, L, dim] → [B, L, dim].

    q, k, v come from one fused projection and reach the kernel as strided views of it
    ([B, L, H, Dh] transposed to [B, H, L, Dh]); no copies.
    """

    def __init__(self, dim: int, heads: int, *, bias: bool = True):
        super().__init__()
        if heads < 1 or dim % heads:
            raise ValueError(f"dim ({dim}) must be a positive multiple of heads ({heads})")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.qkv = nn.Linear(dim, 3 * dim, bias=bias)
        self.out = nn.Linear(dim, dim, bias=bias)

    def new_cache(self, batch: int, max_length: int) -> KVCache:
        """An empty KV cache for sampling up to max_length tokens with this layer."""
        p = self.qkv.weight
        return KVCache(batch, self.heads, max_length, self.head_dim, dtype=p.dtype, device=p.device)

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None, cache: KVCache | None = None
    ) -> torch.Tensor:
        """x [B, L, dim]; key_padding_mask [B, L] (True = real) or None. With a cache, x holds
        one new token per sequence (L = 1), which attends over the cached ones and is cached."""
        if x.dim() != 3 or x.shape[-1] != self.dim:
            raise ValueError(f"x must have shape [batch, length, {self.dim}], got {tuple(x.shape)}")
        B, L, _ = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.heads, self.head_dim).transpose(1, 3).unbind(2)  # [B, H, L, Dh]
        if cache is None:
            y = masked_attention(q, k, v, key_padding_mask, causal=True)
        else:
            if L != 1:
                raise ValueError(f"with a cache, x must hold one token per sequence, got length {L}")
            if key_padding_mask is not None:
                raise ValueError("key_padding_mask is not used with a cache: every cached token is real")
            y = cache.step(q, k, v)
        return self.out(y.transpose(1, 2).reshape(B, L, self.dim))


class TransformerBlock(nn.Module):
    """Pre-LayerNorm GPT block: x + Attn(LN(x)), then x + MLP(LN(x)); MLP = Linear, GELU, Linear."""

    def __init__(self, dim: int, heads: int, *, mlp_ratio: int = 4):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = CausalSelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp_ratio * dim), nn.GELU(), nn.Linear(mlp_ratio * dim, dim))

    def new_cache(self, batch: int, max_length: int) -> KVCache:
        return self.attn.new_cache(batch, max_length)

    def forward(
        self, x: torch.Tensor, key_padding_mask: torch.Tensor | None = None, cache: KVCache | None = None
    ) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), key_padding_mask, cache)
        return x + self.mlp(self.norm2(x))
