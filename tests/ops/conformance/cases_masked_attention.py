"""masked_attention's (and its decode step's) samples and bad inputs for the conformance suite."""

from __future__ import annotations

import torch
from cases import BadInput, OpCases, Sample, converter, seeded

from hepgen import ops
from hepgen.ops.masked_attention import masked_attention_reference

# (B, H, L, Dh): odd lengths, L = 1, H = 1, Dh in {16, 24, 64}, two Triton blocks (L = 70),
# a particle-sized sequence, an empty batch and empty sequences.
SHAPES = [(2, 3, 7, 16), (3, 1, 1, 24), (2, 2, 17, 64), (2, 1, 70, 16), (1, 2, 150, 24), (0, 2, 5, 16), (2, 2, 0, 16)]
# (mask kind, layout of q/k/v): "strided" q, k, v are views of a [B, L, H, Dh] projection.
INPUT_KINDS = [("none", "contiguous"), ("ragged", "strided"), ("ragged", "contiguous")]
QKV = (0, 1, 2)


def reference(q, k, v, key_padding_mask=None, *, causal=True, scale=None):
    """The spec with the public signature: the output alone."""
    return masked_attention_reference(
        q, k, v, key_padding_mask, causal, q.shape[-1] ** -0.5 if scale is None else scale
    )[0]


def _mask(g, B, L):
    """A bool [B, L] with random padding, a padded first token in sequence 0 (so its query 0
    has no key) and a fully padded sequence 1."""
    mask = torch.rand(B, L, generator=g) < 0.7
    if B > 0 and L > 0:
        mask[0, 0] = False
    if B > 1:
        mask[1] = False
    return mask


def _qkv(g, B, H, L, D, to, layout="contiguous", scale=1.0):
    out = []
    for _ in range(3):
        if layout == "strided":
            out.append(to(torch.randn(B, L, H, D, generator=g, dtype=torch.float64) * scale).transpose(1, 2))
        else:
            out.append(to(torch.randn(B, H, L, D, generator=g, dtype=torch.float64) * scale))
    return out


def sample_inputs(device, dtype):
    to = converter(device, dtype)
    for shape in SHAPES:
        for mask_kind, layout in INPUT_KINDS:
            for causal in (True, False):
                name = "x".join(map(str, shape)) + f"-{mask_kind}-{layout}-" + ("causal" if causal else "full")
                g = seeded(name)
                q, k, v = _qkv(g, *shape, to, layout)
                mask = None if mask_kind == "none" else _mask(g, shape[0], shape[2]).to(device)
                yield Sample(name, (q, k, v, mask), dict(causal=causal, scale=0.9 / shape[3] ** 0.5), grad=QKV)
    # Scores of order 100: the softmax is nearly one-hot and exp must not overflow.
    name = "large-scores"
    g = seeded(name)
    q, k, v = _qkv(g, 3, 2, 19, 16, to, scale=4.0)
    yield Sample(name, (q, k, v, _mask(g, 3, 19).to(device)), dict(scale=1.5), grad=QKV)
    # Padded keys hold NaN and inf: they must never be read. The mask is a strided view.
    name = "strided-nan-padded-keys"
    g = seeded(name)
    q, k, v = _qkv(g, 3, 2, 9, 16, to)
    mask = _mask(g, 3, 9).to(device)
    mask = torch.stack([mask, ~mask], dim=-1)[..., 0]
    padded = ~mask[:, None, :, None]
    yield Sample(
        name,
        (q, k.masked_fill(padded, float("nan")), v.masked_fill(padded, float("inf")), mask),
        dict(scale=0.25),
        grad=QKV,
    )


def opcheck_samples(dtype):
    g = seeded("opcheck")
    q, k, v = (torch.randn(2, 2, 6, 16, generator=g, dtype=dtype) for _ in range(3))
    yield Sample("ragged-causal", (q, k, v, _mask(g, 2, 6)), dict(causal=True, scale=0.3), grad=QKV)
    yield Sample("none-full", (q.clone(), k.clone(), v.clone(), None), dict(causal=False, scale=0.5), grad=QKV)
    new = [torch.randn(2, 2, 1, 16, generator=g, dtype=dtype) for _ in range(3)]
    caches = [torch.randn(2, 2, 8, 16, generator=g, dtype=dtype) for _ in range(2)]
    yield Sample("decode", (*new, *caches, torch.tensor([0, 5])), dict(scale=0.25), fn=ops.masked_attention_decode)


def gradcheck_samples():
    g = seeded("gradcheck")
    mask = torch.tensor([[False, True, True, False, True], [True] * 5])
    for causal in (True, False):
        q, k, v = _qkv(g, 2, 2, 5, 3, lambda t: t, layout="strided")
        yield Sample(f"gradcheck-{causal}", (q, k, v, mask), dict(causal=causal, scale=0.7), grad=QKV)


def _bad(name, error, match, kwargs=None, **overrides):
    args = dict(
        q=torch.randn(2, 3, 5, 16), k=torch.randn(2, 3, 5, 16), v=torch.randn(2, 3, 5, 16), key_padding_mask=None
    )
    args.update(overrides)
    return BadInput(
        name,
        ops.masked_attention,
        (args["q"], args["k"], args["v"], args["key_padding_mask"]),
        kwargs or {},
        error,
        match,
    )


def _bad_decode(name, error, match, **overrides):
    args = dict(
        q=torch.randn(2, 3, 1, 16),
        k_new=torch.randn(2, 3, 1, 16),
        v_new=torch.randn(2, 3, 1, 16),
        k_cache=torch.zeros(2, 3, 8, 16),
        v_cache=torch.zeros(2, 3, 8, 16),
        lengths=torch.tensor([0, 3]),
    )
    args.update(overrides)
    return BadInput(name, ops.masked_attention_decode, (), args, error, match)


BAD_INPUTS = [
    _bad("q-rank", ValueError, "q must have 4 dimensions", q=torch.randn(2, 5, 16)),
    _bad("k-shape", ValueError, r"k must have shape \(2, 3, 5, 16\) to match q", k=torch.randn(2, 3, 6, 16)),
    _bad("v-dtype", TypeError, "v must have the dtype of q", v=torch.randn(2, 3, 5, 16, dtype=torch.float64)),
    _bad("q-dtype", TypeError, "q must have a floating dtype", q=torch.ones(2, 3, 5, 16, dtype=torch.int64)),
    _bad(
        "head-dim",
        ValueError,
        "head dimension",
        q=torch.randn(2, 3, 5, 0),
        k=torch.randn(2, 3, 5, 0),
        v=torch.randn(2, 3, 5, 0),
    ),
    _bad("k-device", ValueError, "k is on meta but q is on cpu", k=torch.randn(2, 3, 5, 16, device="meta")),
    _bad("mask-dtype", TypeError, "key_padding_mask must be a bool tensor", key_padding_mask=torch.ones(2, 5)),
    _bad(
        "mask-shape",
        ValueError,
        r"key_padding_mask must have shape \(batch, length\) = \(2, 5\)",
        key_padding_mask=torch.ones(2, 4, dtype=torch.bool),
    ),
    _bad("mask-list", TypeError, "key_padding_mask must be a torch.Tensor", key_padding_mask=[[True]]),
    _bad("causal-int", TypeError, "causal must be a bool", kwargs={"causal": 1}),
    _bad("scale-inf", ValueError, "scale must be finite", kwargs={"scale": float("inf")}),
    _bad("q-list", TypeError, "q must be a torch.Tensor", q=[[1.0]]),
    _bad_decode("decode-q-length", ValueError, "q must hold one new token", q=torch.randn(2, 3, 2, 16)),
    _bad_decode("decode-k-new", ValueError, "k_new must have shape", k_new=torch.randn(2, 3, 1, 8)),
    _bad_decode("decode-k-cache", ValueError, "k_cache must have shape", k_cache=torch.zeros(2, 4, 8, 16)),
    _bad_decode("decode-v-cache", ValueError, "v_cache must have shape", v_cache=torch.zeros(2, 3, 7, 16)),
    _bad_decode(
        "decode-v-cache-dtype",
        TypeError,
        "v_cache must have the dtype",
        v_cache=torch.zeros(2, 3, 8, 16, dtype=torch.float64),
    ),
    _bad_decode(
        "decode-lengths-float", TypeError, "lengths must be an integer tensor", lengths=torch.tensor([0.0, 1.0])
    ),
    _bad_decode("decode-lengths-shape", ValueError, r"lengths must have shape \(2,\)", lengths=torch.tensor([0, 1, 2])),
    _bad_decode("decode-lengths-negative", ValueError, "lengths must lie in", lengths=torch.tensor([-1, 1])),
    _bad_decode("decode-cache-full", ValueError, r"lengths must lie in \[0, 8\)", lengths=torch.tensor([1, 8])),
]

CASES = OpCases(
    op="masked_attention",
    public=ops.masked_attention,
    reference=reference,
    sample_inputs=sample_inputs,
    opcheck_samples=opcheck_samples,
    gradcheck_samples=gradcheck_samples,
    bad_inputs=BAD_INPUTS,
    float64_rtol=1e-10,
)
