"""hepgen.ops.masked_attention: every backend against the float64 reference and SDPA,
forward, backward and the KV-cache decode step."""

import pytest
import torch
import torch.nn.functional as F

import hepgen.ops as ops
from hepgen.nn import KVCache
from hepgen.ops.masked_attention import (MASKED_ATTENTION, MASKED_ATTENTION_BACKWARD, MASKED_ATTENTION_DECODE,
                                         admissible_keys, masked_attention_backward_reference,
                                         masked_attention_reference)

_attention_op, _attention_backward_op = MASKED_ATTENTION.custom_op, MASKED_ATTENTION_BACKWARD.custom_op
_decode_op = MASKED_ATTENTION_DECODE.custom_op
from oracle import assert_close_to_reference, backend_params, devices

# (B, H, L, Dh): odd lengths, L = 1, H = 1, Dh in {16, 24, 64}, two Triton blocks (L = 70),
# a particle-sized sequence, an empty batch and empty sequences.
SHAPES = [(2, 3, 7, 16), (3, 1, 1, 24), (2, 2, 17, 64), (2, 1, 70, 16), (1, 2, 150, 24), (0, 2, 5, 16), (2, 2, 0, 16)]
# (mask kind, layout of q/k/v)
INPUT_KINDS = [("none", "contiguous"), ("ragged", "transposed"), ("ragged", "contiguous")]

ALL_PARAMS = [p for dev in devices() for p in backend_params(dev, op="masked_attention")]
# Tests whose inputs are float64 (on the GPU, Triton's kernels do not run float64).
ALL_PARAMS64 = [p for dev in devices() for p in backend_params(dev, torch.float64, op="masked_attention")]
CPU_BACKENDS = ["reference", "cpu", "triton"]


def _skip_unless_runs(backend, device="cpu", dtype=torch.float64):
    why = ops.why_unavailable(backend, torch.device(device), dtype, op="masked_attention")
    if why:
        pytest.skip(why)


def _mask(B, L, seed, kind="ragged", device="cpu"):
    """None, or a bool [B, L] with random padding, a padded first token in sequence 0 (so its
    query 0 has no key) and a fully padded sequence 1."""
    if kind == "none":
        return None
    g = torch.Generator().manual_seed(seed + 1)
    mask = torch.rand(B, L, generator=g) < 0.7
    if B > 0 and L > 0:
        mask[0, 0] = False
    if B > 1:
        mask[1] = False
    return mask.to(device)


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


def _check_forward_and_grads(backend, q64, k64, v64, mask, causal, scale, device, what):
    q32, k32, v32 = (t.float() for t in (q64, k64, v64))
    ref64, lse64 = masked_attention_reference(q64, k64, v64, mask, causal, scale)
    ref32, lse32 = masked_attention_reference(q32, k32, v32, mask, causal, scale)
    leaves = [t.clone().requires_grad_() for t in (q32, k32, v32)]
    w = torch.randn(ref64.shape, dtype=torch.float64, device=device)
    with ops.use_backend(backend):  # forward and backward
        out = ops.masked_attention(*leaves, mask, causal=causal, scale=scale)
        grads = torch.autograd.grad(out, leaves, w.float())
    assert_close_to_reference(out, ref32, ref64, what=f"{what}: output")
    g64 = masked_attention_backward_reference(w, q64, k64, v64, mask, ref64, lse64, causal, scale)
    g32 = masked_attention_backward_reference(w.float(), q32, k32, v32, mask, ref32, lse32, causal, scale)
    for name, g, r32, r64 in zip(("q", "k", "v"), grads, g32, g64):
        assert_close_to_reference(g, r32, r64, what=f"{what}: grad {name}")


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("kind", INPUT_KINDS, ids=lambda k: "-".join(k))
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
def test_forward_and_gradients_match_float64_reference(device, backend, shape, kind, causal):
    seed = hash((backend, shape, kind, causal)) % 2**31  # fresh inputs per case
    mask_kind, layout = kind
    q, k, v = _qkv(*shape, device, seed, layout)
    mask = _mask(shape[0], shape[2], seed, mask_kind, device)
    _check_forward_and_grads(backend, q, k, v, mask, causal, 0.9 / shape[3] ** 0.5, device, f"seed {seed}")


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_large_scores(device, backend):
    # Scores of order 100: the softmax is nearly one-hot and exp must not overflow.
    q, k, v = _qkv(3, 2, 19, 16, device, seed=3, scale=4.0)
    _check_forward_and_grads(backend, q, k, v, _mask(3, 19, 3, device=device), True, 1.5, device, "large")


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
def test_padded_keys_are_never_read(device, backend):
    q, k, v = _qkv(3, 2, 9, 16, device, seed=8)
    mask = _mask(3, 9, 8, device=device)
    mask = torch.stack([mask, ~mask], dim=-1)[..., 0]  # a strided view of the same mask
    assert not mask.is_contiguous()
    padded = ~mask[:, None, :, None]
    k, v = k.float().masked_fill(padded, float("nan")), v.float().masked_fill(padded, float("inf"))
    q = q.float().requires_grad_()
    with ops.use_backend(backend):
        out = ops.masked_attention(q, k, v, mask)
        (gq,) = torch.autograd.grad(out.sum(), q)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, masked_attention_reference(q, k, v, mask, True, 0.25)[0])
    assert torch.isfinite(gq).all()


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


@pytest.mark.parametrize("backend", CPU_BACKENDS)
@pytest.mark.parametrize("causal", [True, False], ids=["causal", "full"])
def test_gradcheck_float64_cpu(backend, causal):
    _skip_unless_runs(backend)
    q, k, v = (t.requires_grad_() for t in _qkv(2, 2, 5, 3, "cpu", seed=11, layout="transposed"))
    mask = torch.tensor([[False, True, True, False, True], [True] * 5])
    with ops.use_backend(backend):
        assert torch.autograd.gradcheck(lambda a, b, c: ops.masked_attention(a, b, c, mask, causal=causal, scale=0.7),
                                        (q, k, v))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_opcheck(backend):
    _skip_unless_runs(backend)
    q, k, v = (t.float().requires_grad_() for t in _qkv(2, 2, 6, 16, "cpu", seed=5))
    mask = _mask(2, 6, 5)
    with ops.use_backend(backend):
        torch.library.opcheck(_attention_op, (q, k, v, mask, True, 0.3))
        torch.library.opcheck(_attention_op, (q.double(), k.double(), v.double(), None, False, 0.5))
        out, lse = _attention_op(q, k, v, mask, True, 0.3)
        g = torch.randn_like(out)
        torch.library.opcheck(_attention_backward_op, (g, q.detach(), k.detach(), v.detach(), mask, out.detach(),
                                                       lse.detach(), True, 0.3))
        kc, vc = torch.randn(2, 2, 8, 16), torch.randn(2, 2, 8, 16)
        new = [t[:, :, :1].detach().clone() for t in (q, k, v)]
        torch.library.opcheck(_decode_op, (*new, kc, vc, torch.tensor([0, 5]), 0.25))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_custom_op_path_matches_eager_path(backend):
    _skip_unless_runs(backend)
    q, k, v = (t.requires_grad_() for t in _qkv(3, 2, 9, 16, "cpu", seed=19))
    mask = _mask(3, 9, 19)
    with ops.use_backend(backend):
        eager = ops.masked_attention(q, k, v, mask, scale=0.3)
        op = _attention_op(q, k, v, mask, True, 0.3)[0]
        torch.testing.assert_close(op, eager, rtol=0, atol=0)
        w = torch.randn_like(op)
        for a, b in zip(torch.autograd.grad((op * w).sum(), (q, k, v)), torch.autograd.grad((eager * w).sum(), (q, k, v))):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_compiled_graph_goes_through_the_custom_ops():
    q, k, v = (t.float().requires_grad_() for t in _qkv(2, 2, 7, 16, "cpu", seed=17))
    mask = _mask(2, 7, 17)

    def f(a, b, c):
        return (ops.masked_attention(a, b, c, mask) ** 2).sum()

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    g_compiled = torch.autograd.grad(compiled(q, k, v), (q, k, v))
    g_eager = torch.autograd.grad(f(q, k, v), (q, k, v))
    for a, b in zip(g_compiled, g_eager):
        torch.testing.assert_close(a, b)


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
            out = ops.masked_attention_decode(_token(Q, lengths), _token(K, lengths), _token(V, lengths), kc, vc, lengths)
        for b in range(3):
            n = int(lengths[b]) + 1
            full, _ = masked_attention_reference(Q[b:b + 1, :, :n], K[b:b + 1, :, :n], V[b:b + 1, :, :n], None, True,
                                                 24 ** -0.5)
            torch.testing.assert_close(out[b:b + 1], full[:, :, -1:], rtol=1e-12, atol=1e-12,
                                       msg=lambda m: f"step {step}, sequence {b}: {m}")
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
        outs = [cache.step(q[:, :, i:i + 1], k[:, :, i:i + 1], v[:, :, i:i + 1]) for i in range(L)]
    ref64, _ = masked_attention_reference(q.double(), k.double(), v.double(), None, True, D ** -0.5)
    ref32, _ = masked_attention_reference(q, k, v, None, True, D ** -0.5)
    assert_close_to_reference(torch.cat(outs, dim=2), ref32, ref64)
    assert cache.lengths.tolist() == [L] * B
    with pytest.raises(RuntimeError, match="KVCache is full"):
        cache.step(q[:, :, :1], k[:, :, :1], v[:, :, :1])
    cache.reset()
    cache.prefill(k[:, :, :3], v[:, :, :3], torch.tensor([1, 2, 3, 0], device=device))
    assert cache.lengths.tolist() == [1, 2, 3, 0]


def test_decode_rejects_a_full_cache_on_cpu():
    q = torch.randn(2, 1, 1, 16)
    kc, vc = torch.zeros(2, 1, 4, 16), torch.zeros(2, 1, 4, 16)
    with pytest.raises(ValueError, match=r"lengths must lie in \[0, 4\)"):
        ops.masked_attention_decode(q, q, q, kc, vc, torch.tensor([1, 4]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_cuda_dtypes(backend, dtype):
    _skip_unless_runs(backend, "cuda", dtype)
    q, k, v = _qkv(5, 4, 37, 32, "cuda", seed=13)
    mask = _mask(5, 37, 13, device="cuda")
    ref64, lse64 = masked_attention_reference(q, k, v, mask, True, 0.2)
    leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
    w = torch.randn_like(ref64)
    with ops.use_backend(backend):
        out = ops.masked_attention(*leaves, mask, scale=0.2)
        grads = torch.autograd.grad(out, leaves, w.to(dtype))
    ref_lo = masked_attention_reference(*(t.detach() for t in leaves), mask, True, 0.2)[0]
    assert_close_to_reference(out, ref_lo, ref64)
    g64 = masked_attention_backward_reference(w, q, k, v, mask, ref64, lse64, True, 0.2)
    lo = [t.detach() for t in leaves]
    out_lo, lse_lo = masked_attention_reference(*lo, mask, True, 0.2)
    g_lo = masked_attention_backward_reference(w.to(dtype), *lo, mask, out_lo, lse_lo, True, 0.2)
    for g, r_lo, r64 in zip(grads, g_lo, g64):
        assert_close_to_reference(g, r_lo, r64)


def test_default_choice_per_device_and_dtype():
    table = ops.registered_ops()["masked_attention"]
    cpu = torch.device("cpu")
    expected = "cpu" if not ops.why_unavailable("cpu", cpu, torch.float32) else "reference"
    assert table.choose(cpu, torch.float32) == expected
    assert table.choose(cpu, torch.bfloat16) == "reference"  # no compiled half kernels on the CPU
    q = torch.randn(2, 2, 3, 16, dtype=torch.bfloat16)
    assert ops.masked_attention(q, q, q).dtype == torch.bfloat16


def _bad(**overrides):
    args = dict(q=torch.randn(2, 3, 5, 16), k=torch.randn(2, 3, 5, 16), v=torch.randn(2, 3, 5, 16),
                key_padding_mask=None)
    args.update(overrides)
    return args


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (_bad(q=torch.randn(2, 5, 16)), {}, ValueError, "q must have 4 dimensions"),
        (_bad(k=torch.randn(2, 3, 6, 16)), {}, ValueError, r"k must have shape \(2, 3, 5, 16\) to match q"),
        (_bad(v=torch.randn(2, 3, 5, 16, dtype=torch.float64)), {}, TypeError, "v must have the dtype of q"),
        (_bad(q=torch.ones(2, 3, 5, 16, dtype=torch.int64)), {}, TypeError, "q must have a floating dtype"),
        (_bad(q=torch.randn(2, 3, 5, 0), k=torch.randn(2, 3, 5, 0), v=torch.randn(2, 3, 5, 0)), {}, ValueError,
         "head dimension"),
        (_bad(k=torch.randn(2, 3, 5, 16, device="meta")), {}, ValueError, "k is on meta but q is on cpu"),
        (_bad(key_padding_mask=torch.ones(2, 5)), {}, TypeError, "key_padding_mask must be a bool tensor"),
        (_bad(key_padding_mask=torch.ones(2, 4, dtype=torch.bool)), {}, ValueError,
         r"key_padding_mask must have shape \(batch, length\) = \(2, 5\)"),
        (_bad(key_padding_mask=[[True]]), {}, TypeError, "key_padding_mask must be a torch.Tensor"),
        (_bad(), {"causal": 1}, TypeError, "causal must be a bool"),
        (_bad(), {"scale": float("inf")}, ValueError, "scale must be finite"),
        (_bad(q=[[1.0]]), {}, TypeError, "q must be a torch.Tensor"),
    ],
)
def test_bad_input_is_rejected_before_any_kernel(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.masked_attention(args["q"], args["k"], args["v"], args["key_padding_mask"], **kwargs)


def _bad_decode(**overrides):
    args = dict(q=torch.randn(2, 3, 1, 16), k_new=torch.randn(2, 3, 1, 16), v_new=torch.randn(2, 3, 1, 16),
                k_cache=torch.zeros(2, 3, 8, 16), v_cache=torch.zeros(2, 3, 8, 16), lengths=torch.tensor([0, 3]))
    args.update(overrides)
    return args


@pytest.mark.parametrize(
    "args, error, match",
    [
        (_bad_decode(q=torch.randn(2, 3, 2, 16)), ValueError, "q must hold one new token"),
        (_bad_decode(k_new=torch.randn(2, 3, 1, 8)), ValueError, "k_new must have shape"),
        (_bad_decode(k_cache=torch.zeros(2, 4, 8, 16)), ValueError, "k_cache must have shape"),
        (_bad_decode(v_cache=torch.zeros(2, 3, 7, 16)), ValueError, "v_cache must have shape"),
        (_bad_decode(v_cache=torch.zeros(2, 3, 8, 16, dtype=torch.float64)), TypeError, "v_cache must have the dtype"),
        (_bad_decode(lengths=torch.tensor([0.0, 1.0])), TypeError, "lengths must be an integer tensor"),
        (_bad_decode(lengths=torch.tensor([0, 1, 2])), ValueError, r"lengths must have shape \(2,\)"),
        (_bad_decode(lengths=torch.tensor([-1, 1])), ValueError, "lengths must lie in"),
    ],
)
def test_bad_decode_input_is_rejected(args, error, match):
    with pytest.raises(error, match=match):
        ops.masked_attention_decode(**args)


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
