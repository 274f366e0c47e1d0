"""hepgen.ops.masked_attention beyond the conformance suite (tests/ops/conformance): agreement
with scaled_dot_product_attention, exact zeros for queries without keys, and the KV-cache decode
step (against full attention, a sampling loop, and under torch.compile)."""

import pytest
import torch
import torch.nn.functional as F
from oracle import assert_close_to_reference, backend_params, devices

import hepgen.ops as ops
from hepgen.nn import KVCache
from hepgen.ops.masked_attention import admissible_keys, masked_attention_reference

# (B, H, L, Dh): odd lengths, L = 1, H = 1, Dh in {16, 24, 64}, two Triton blocks (L = 70),
# a particle-sized sequence, an empty batch and empty sequences.
SHAPES = [(2, 3, 7, 16), (3, 1, 1, 24), (2, 2, 17, 64), (2, 1, 70, 16), (1, 2, 150, 24), (0, 2, 5, 16), (2, 2, 0, 16)]
# (mask kind, layout of q/k/v)

ALL_PARAMS = [p for dev in devices() for p in backend_params(dev, op="masked_attention")]
# Tests whose inputs are float64 (on the GPU, Triton's kernels do not run float64).
ALL_PARAMS64 = [p for dev in devices() for p in backend_params(dev, torch.float64, op="masked_attention")]


def _qkv(B, H, L, D, device, seed, layout="contiguous", scale=1.0):
    """float64 q, k, v [B, H, L, D]; 'transposed' gives views of a [B, L, H, D] projection."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(3):
        if layout == "transposed":
            t = (torch.randn(B, L, H, D, generator=g, dtype=torch.float64) * scale).transpose(1, 2)
        else:
            t = torch.randn(B, H, L, D, generator=g, dtype=torch.float64) * scale
        out.append(t.to(device))
    return out


@pytest.mark.parametrize("device, backend", ALL_PARAMS64)
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
def test_matches_scaled_dot_product_attention(device, backend, causal):
    B, H, L, D = 3, 2, 13, 24
    q, k, v = (t.requires_grad_() for t in _qkv(B, H, L, D, device, seed=21))
    mask = torch.rand(B, L, generator=torch.Generator().manual_seed(5)) < 0.6
    mask[:, 0] = True  # every query has a key: SDPA's convention for empty rows differs across versions
    mask = mask.to(device)
    w = torch.randn(B, H, L, D, dtype=torch.float64, device=device)
    with ops.use_backend(backend):
        out = ops.masked_attention(q, k, v, mask, causal=causal)
        ours = torch.autograd.grad(out, (q, k, v), w)
    sdpa = F.scaled_dot_product_attention(q, k, v, attn_mask=admissible_keys(mask, L, causal, q.device))
    torch.testing.assert_close(out, sdpa, rtol=1e-10, atol=1e-10)
    theirs = torch.autograd.grad(sdpa, (q, k, v), w)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
def test_query_without_keys_gives_zero_not_nan(device, backend, causal):
    q, k, v = (t.float().requires_grad_() for t in _qkv(2, 2, 5, 16, device, seed=4))
    mask = torch.zeros(2, 5, dtype=torch.bool, device=device)
    mask[1, 2:] = True  # sequence 0 fully padded; in sequence 1, causal queries 0 and 1 see nothing
    with ops.use_backend(backend):
        out = ops.masked_attention(q, k, v, mask, causal=causal)
        gq, gk, gv = torch.autograd.grad(out.sum(), (q, k, v))
    assert torch.equal(out[0], torch.zeros_like(out[0]))
    if causal:
        assert torch.equal(out[1, :, :2], torch.zeros_like(out[1, :, :2]))
    assert torch.isfinite(out).all()
    assert torch.equal(gq[0], torch.zeros_like(gq[0])) and torch.equal(gk[0], torch.zeros_like(gk[0]))
    assert torch.equal(gv[:, :, :2], torch.zeros_like(gv[:, :, :2]))  # padded keys get no gradient
    assert all(torch.isfinite(g).all() for g in (gq, gk, gv))


# ---- decode step --------------------------------------------------------------------------


def _decode_case(device, seed, cache_layout="contiguous"):
    """Full sequences Q, K, V [B, H, Lmax, D], a ragged prompt and an empty cache."""
    B, H, Lmax, D = 3, 2, 9, 24
    g = torch.Generator().manual_seed(seed)
    Q, K, V = (torch.randn(B, H, Lmax, D, generator=g, dtype=torch.float64).to(device) for _ in range(3))
    prompt = torch.tensor([0, 3, 5], device=device)
    if cache_layout == "transposed":
        kc = torch.zeros(B, Lmax, H, D, dtype=torch.float64, device=device).transpose(1, 2)
        vc = torch.zeros(B, Lmax, H, D, dtype=torch.float64, device=device).transpose(1, 2)
    else:
        kc = torch.zeros(B, H, Lmax, D, dtype=torch.float64, device=device)
        vc = torch.zeros_like(kc)
    return Q, K, V, prompt, kc, vc


def _token(X, pos):
    """X[b, :, pos[b]] as [B, H, 1, D], a non-contiguous view."""
    t = torch.stack([X[b, :, p] for b, p in enumerate(pos.tolist())])  # [B, H, D]
    return t.transpose(0, 1).contiguous().transpose(0, 1).unsqueeze(2)


@pytest.mark.parametrize("device, backend", ALL_PARAMS64)
@pytest.mark.parametrize("cache_layout", ["contiguous", "transposed"])
def test_decode_equals_last_row_of_full_attention(device, backend, cache_layout):
    Q, K, V, prompt, kc, vc = _decode_case(device, seed=31, cache_layout=cache_layout)
    kc[:, :, :5], vc[:, :, :5] = K[:, :, :5], V[:, :, :5]  # a ragged prompt, already cached
    lengths = prompt.clone()
    for step in range(4):
        with ops.use_backend(backend):
            out = ops.masked_attention_decode(
                _token(Q, lengths), _token(K, lengths), _token(V, lengths), kc, vc, lengths
            )
        for b in range(3):
            n = int(lengths[b]) + 1
            full, _ = masked_attention_reference(
                Q[b : b + 1, :, :n], K[b : b + 1, :, :n], V[b : b + 1, :, :n], None, True, 24**-0.5
            )
            torch.testing.assert_close(
                out[b : b + 1], full[:, :, -1:], rtol=1e-12, atol=1e-12, msg=lambda m: f"step {step}, sequence {b}: {m}"
            )
            torch.testing.assert_close(kc[b, :, :n], K[b, :, :n], rtol=0, atol=0)
            torch.testing.assert_close(vc[b, :, :n], V[b, :, :n], rtol=0, atol=0)
        lengths += 1


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_kv_cache_sampling_loop_float32(device, backend):
    # A whole 17-token loop through KVCache equals causal attention over the full sequence.
    B, H, L, D = 4, 2, 17, 16
    q, k, v = (t.float() for t in _qkv(B, H, L, D, device, seed=41))
    cache = KVCache(B, H, L, D, device=device)
    with ops.use_backend(backend):
        outs = [cache.step(q[:, :, i : i + 1], k[:, :, i : i + 1], v[:, :, i : i + 1]) for i in range(L)]
    ref64, _ = masked_attention_reference(q.double(), k.double(), v.double(), None, True, D**-0.5)
    ref32, _ = masked_attention_reference(q, k, v, None, True, D**-0.5)
    assert_close_to_reference(torch.cat(outs, dim=2), ref32, ref64)
    assert cache.lengths.tolist() == [L] * B
    with pytest.raises(RuntimeError, match="KVCache is full"):
        cache.step(q[:, :, :1], k[:, :, :1], v[:, :, :1])
    cache.reset()
    cache.prefill(k[:, :, :3], v[:, :, :3], torch.tensor([1, 2, 3, 0], device=device))
    assert cache.lengths.tolist() == [1, 2, 3, 0]


def test_compiled_decode_goes_through_the_custom_op():
    q, k, v = (t.float()[:, :, :1].contiguous() for t in _qkv(2, 2, 1, 16, "cpu", seed=23))
    kc, vc = torch.randn(2, 2, 5, 16), torch.randn(2, 2, 5, 16)
    lengths = torch.tensor([0, 3])

    def step(kc, vc):
        return ops.masked_attention_decode(q, k, v, kc, vc, lengths)

    compiled = torch.compile(step, backend="aot_eager", fullgraph=True)
    kc2, vc2 = kc.clone(), vc.clone()
    torch.testing.assert_close(compiled(kc, vc), step(kc2, vc2))
    torch.testing.assert_close(kc, kc2, rtol=0, atol=0)  # the cache writes happen in the compiled graph too
    torch.testing.assert_close(vc, vc2, rtol=0, atol=0)


@pytest.mark.parametrize("device", devices())
def test_the_spec_keeps_a_future_tokens_inf_from_earlier_queries(device):
    # Regression (found by tests/ops/fuzz): the reference summed p @ v over every key, so
    # 0 * inf of a token a causal query may not see made its output (and gradients) NaN.
    # The spec sums over admissible keys only; the kernels' tile products may still form
    # 0 * inf inside the (sequence, head) (documented as unspecified there), so this is the
    # reference backend's test.
    backend = "reference"
    q, k, v = (t.requires_grad_() for t in _qkv(1, 1, 6, 8, device, seed=3))
    v_bad = v.detach().clone()
    v_bad[0, 0, 4, 2] = float("inf")  # token 4: seen by queries 4 and 5 only
    v_bad.requires_grad_()
    with ops.use_backend(backend):
        out = ops.masked_attention(q, k, v_bad, causal=True)
        (dq,) = torch.autograd.grad(out[:, :, :4].sum(), (q,))
    clean, _ = masked_attention_reference(q.detach(), k.detach(), v.detach(), None, True, 8**-0.5)
    torch.testing.assert_close(out[:, :, :4], clean[:, :, :4], rtol=1e-12, atol=1e-12)
    # Queries 0-3 get finite gradients (keys' gradients do take 0 * inf from rows 4 and 5).
    assert torch.isfinite(dq[:, :, :4]).all()
