"""hepgen.nn attention blocks: equal to the same block on SDPA, causal, and sampling with
KV caches equals the full forward."""

import pytest
import torch
import torch.nn.functional as F

from hepgen.nn import CausalSelfAttention, KVCache, TransformerBlock
from hepgen.ops.masked_attention import admissible_keys


def _sdpa_block(block: TransformerBlock, x, mask):
    """The same pre-LN block written with torch's SDPA (the baseline users would write)."""
    B, L, D = x.shape
    a = block.attn
    q, k, v = a.qkv(block.norm1(x)).view(B, L, 3, a.heads, a.head_dim).permute(2, 0, 3, 1, 4)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=admissible_keys(mask, L, True, x.device))
    x = x + a.out(y.transpose(1, 2).reshape(B, L, D))
    return x + block.mlp(block.norm2(x))


def _block(dim=24, heads=3, seed=0):
    torch.manual_seed(seed)
    return TransformerBlock(dim, heads).double()


def test_block_matches_sdpa_forward_and_gradients():
    block = _block()
    x = torch.randn(4, 9, 24, dtype=torch.float64, requires_grad=True)
    mask = torch.rand(4, 9, generator=torch.Generator().manual_seed(1)) < 0.7
    mask[:, 0] = True
    ours = block(x, mask)
    theirs = _sdpa_block(block, x, mask)
    torch.testing.assert_close(ours, theirs, rtol=1e-10, atol=1e-10)
    w = torch.randn_like(ours)
    params = [x, *block.parameters()]
    for a, b in zip(torch.autograd.grad((ours * w).sum(), params), torch.autograd.grad((theirs * w).sum(), params)):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-10)


def test_block_is_causal():
    block = _block(seed=2)
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    y = block(x)
    x2 = x.clone()
    x2[:, 4] += 1.0
    y2 = block(x2)
    torch.testing.assert_close(y2[:, :4], y[:, :4], rtol=0, atol=0)
    assert not torch.allclose(y2[:, 4:], y[:, 4:])


def test_sampling_with_caches_equals_full_forward():
    blocks = [_block(seed=s) for s in (3, 4)]
    B, L = 3, 6
    x = torch.randn(B, L, 24, dtype=torch.float64)
    full = x
    for blk in blocks:
        full = blk(full)
    caches = [blk.new_cache(B, L) for blk in blocks]
    assert all(isinstance(c, KVCache) and c.k.dtype == torch.float64 for c in caches)
    steps = []
    for i in range(L):
        h = x[:, i : i + 1]
        for blk, cache in zip(blocks, caches):
            h = blk(h, cache=cache)
        steps.append(h)
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-10, atol=1e-10)


def test_bad_configuration_and_input():
    with pytest.raises(ValueError, match="dim \\(10\\) must be a positive multiple of heads \\(3\\)"):
        CausalSelfAttention(10, 3)
    attn = CausalSelfAttention(8, 2)
    with pytest.raises(ValueError, match="x must have shape \\[batch, length, 8\\]"):
        attn(torch.randn(2, 3, 6))
    with pytest.raises(ValueError, match="one token per sequence"):
        attn(torch.randn(2, 3, 8), cache=attn.new_cache(2, 4))
