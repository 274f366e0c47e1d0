"""Property-based tests (Hypothesis) of masked_attention and its decode step: every backend
here, every layout of every input, every dtype it takes, against the float64 reference, values
and gradients, causal and not, through the public function and through the registered custom
op with autograd; the decode step against full attention; invalid calls refused with an error
naming the argument.

Shapes: B 0-3, H 1-3, L 0-9, head_dim 1-40 (size 0 and odd sizes). Masks: none, random,
fully padded sequences, a padded first token (causal query 0 then sees nothing). Values of
scale 0.1 to 10 (large scores test the softmax's stability), scale None, 0 or negative. With
`special`, padded keys and values hold NaN and ±inf (they must not leak), or real entries of
q, k, v do (the NaN/inf pattern must be the reference's). Triton runs under TRITON_INTERPRET=1
on few, small examples (a tenth of the profile's).

Counts: see tally.py (HEPGEN_FUZZ_COUNTS=<path>).
"""

from __future__ import annotations

import math
from unittest import mock

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import hepgen.ops as ops
from hepgen.ops import _declare
from hepgen.ops._backends import why_unavailable
from hepgen.ops.masked_attention import MAX_HEAD_DIM, masked_attention_backward_reference, masked_attention_reference

from .layouts import as_layout, layouts
from .reference_match import assert_like_reference
from .tally import tally

HALF = (torch.float16, torch.bfloat16)
FLOATS = (torch.float32, torch.float64)
BACKENDS = [
    b
    for b in ("reference", "cpu", "triton")
    if not why_unavailable(b, torch.device("cpu"), torch.float32, "masked_attention")
]
FAST = [b for b in BACKENDS if b != "triton"]
FEW = max(4, settings.default.max_examples // 10)  # Triton's interpreter: a tenth of the profile
SPECIALS = torch.tensor([math.nan, math.inf, -math.inf, 1e300, -1e300], dtype=torch.float64)


def dtypes_of(backend: str) -> tuple:
    return HALF + FLOATS if backend == "reference" else FLOATS


@st.composite
def attention_cases(draw, backends, special=False, small=False):
    backend = draw(st.sampled_from(backends))
    dtype = draw(st.sampled_from(dtypes_of(backend)))
    return dict(
        backend=backend,
        dtype=dtype,
        B=draw(st.integers(0, 2 if small else 3)),
        H=draw(st.integers(1, 2 if small else 3)),
        L=draw(st.integers(0, 5 if small else 9)),
        D=draw(st.sampled_from([1, 3, 8, 16]) if small else st.integers(1, 40)),
        causal=draw(st.booleans()),
        mask=draw(st.sampled_from(["none", "random", "fully-padded", "first-padded"])),
        scale=draw(st.sampled_from([None, 0.0, -0.7, 0.3, 2.0])),
        magnitude=draw(st.sampled_from([0.1, 1.0, 10.0] if dtype not in HALF else [0.1, 1.0])),
        layouts=[draw(layouts()) for _ in range(4)],
        special=draw(st.sampled_from(["padded", "real"])) if special else None,
        seed=draw(st.integers(0, 2**31 - 1)),
    )


def make_inputs(c):
    """float64 q, k, v (rounded to the case's dtype) and the mask (or None)."""
    g = torch.Generator().manual_seed(c["seed"])
    B, H, L, D = c["B"], c["H"], c["L"], c["D"]
    q, k, v = (torch.randn(B, H, L, D, generator=g, dtype=torch.float64) * c["magnitude"] for _ in range(3))
    mask = None
    if c["mask"] != "none":
        mask = torch.rand(B, L, generator=g) < 0.7
        if c["mask"] == "fully-padded" and B:
            mask[0] = False
        if c["mask"] == "first-padded" and L:
            mask[:, 0] = False
    if c["special"] is not None:
        if c["special"] == "padded":
            # Anything in a padded key or value: never read, never in the result.
            where = (
                ~mask[:, None, :, None].expand(B, H, L, D)
                if mask is not None
                else torch.zeros(B, H, L, D, dtype=torch.bool)
            )
        else:
            where = torch.rand(B, H, L, D, generator=g) < 0.05
        for t in (k, v) if c["special"] == "padded" else (q, k, v):
            n = int(where.sum())
            if n:
                t[where] = SPECIALS[torch.randint(0, len(SPECIALS), (n,), generator=g)]
    q, k, v = (t.to(c["dtype"]).double() for t in (q, k, v))
    return q, k, v, mask


def _scale(c) -> float:
    return 1.0 / math.sqrt(c["D"]) if c["scale"] is None else c["scale"]


def _autograd(q, k, v, mask, c, dtype, cotangent):
    """The forward spec in `dtype` and its gradients by autograd."""
    leaves = [t.to(dtype).requires_grad_() for t in (q, k, v)]
    out, _ = masked_attention_reference(*leaves, mask, c["causal"], _scale(c))
    grads = torch.autograd.grad(out, leaves, cotangent.to(out.dtype), allow_unused=True, materialize_grads=True)
    return out.detach(), grads


def _hand_derived(q, k, v, mask, c, dtype, cotangent):
    """Gradients in `dtype` by the backward spec (the reference backend's backward op)."""
    q, k, v = (t.to(dtype) for t in (q, k, v))
    out, lse = masked_attention_reference(q, k, v, mask, c["causal"], _scale(c))
    return masked_attention_backward_reference(cotangent.to(dtype), q, k, v, mask, out, lse, c["causal"], _scale(c))


def _spoiled(q, k, v, mask):
    """Bool [B, H]: the (sequence, head) slices with a non-finite or huge (> 1e100) value in a real
    token's q, k or v. Their results are unspecified (module docstring of hepgen.ops.masked_attention):
    the kernels' tile products multiply zero weights by such values."""
    odd = [~t.isfinite() | (t.abs() > 1e100) for t in (q, k, v)]
    real = torch.ones(q.shape[:3], dtype=torch.bool) if mask is None else mask[:, None, :].expand(q.shape[:3])
    return (odd[0].any(-1) | ((odd[1] | odd[2]).any(-1) & real)).any(-1)


def _set_aside(t: torch.Tensor, spoiled: torch.Tensor) -> torch.Tensor:
    return t.detach().masked_fill(spoiled[:, :, None, None].to(t.device), 0)


def check_case(c, custom_op: bool = False):
    q, k, v, mask = make_inputs(c)
    tensors = [as_layout(t.to(c["dtype"]), layout) for t, layout in zip((q, k, v), c["layouts"])]
    if mask is not None:
        mask = as_layout(mask, c["layouts"][3])
    q, k, v = (t.double().contiguous() for t in tensors)  # the values the layouts hold
    leaves = [t.requires_grad_() for t in tensors]
    g = torch.Generator().manual_seed(c["seed"] + 1)
    cotangent = torch.randn(q.shape, generator=g, dtype=torch.float64)
    with (
        ops.use_backend({"masked_attention": c["backend"]}),
        mock.patch.object(_declare, "_use_custom_op", lambda: custom_op),
    ):
        out = ops.masked_attention(*leaves, mask, causal=c["causal"], scale=c["scale"])
        grads = torch.autograd.grad(out, leaves, cotangent.to(c["dtype"]), allow_unused=True, materialize_grads=True)
    assert out.dtype == c["dtype"]
    ref64, grads64 = _autograd(q, k, v, mask, c, torch.float64, cotangent)
    ref32, grads32 = _autograd(q, k, v, mask, c, torch.float32, cotangent)
    hand64 = _hand_derived(q, k, v, mask, c, torch.float64, cotangent)
    evaluations = list(zip(grads32, _hand_derived(q, k, v, mask, c, torch.float32, cotangent), hand64))
    if c["special"] is not None:
        # Autograd through the spec forms 0 · inf for pairs the backward spec never forms.
        grads64, evaluations = hand64, [e[:2] for e in evaluations]
    spoiled = _spoiled(q, k, v, mask)
    where = f"{c['backend']} {'custom op' if custom_op else 'eager'}: {c}"
    terms = _terms(q, k, v, mask, cotangent, c)
    assert_like_reference(f"out [{where}]", *(_set_aside(t, spoiled) for t in (out, ref64, ref32)), magnitude=terms[0])
    for name, a, b, e, m in zip("qkv", grads, grads64, evaluations, terms[1:]):
        e = tuple(_set_aside(t, spoiled) for t in e)
        assert_like_reference(f"grad {name} [{where}]", _set_aside(a, spoiled), _set_aside(b, spoiled), e, magnitude=m)


def _largest_row(t: torch.Tensor) -> float:
    """The largest row norm over ordinary entries (non-finite and huge ones set aside)."""
    t = t.masked_fill(~t.isfinite() | (t.abs() > 1e100), 0)
    return t.norm(dim=-1).max().item() if t.numel() else 0.0


def _terms(q, k, v, mask, dO, c):
    """Sizes of the terms out and the gradients of q, k, v sum, times the exp's amplification
    (1 + the largest |score|: a score's rounding error is about that many ulps of its weight). The
    gradients cancel in ds = p (dp - delta) with |dp| <= |dO| |v|; dq sums ds k, dk sums over
    up to L queries ds q, dv over L queries p dO."""
    if mask is not None:
        k, v = (t.masked_fill(~mask[:, None, :, None], 0) for t in (k, v))
    L, s = c["L"], abs(_scale(c))
    nq, nk, nv, ndo = (_largest_row(t) for t in (q, k, v, dO))
    qo, ko = (t.masked_fill(~t.isfinite() | (t.abs() > 1e100), 0) for t in (q, k))
    amplify = 1 + (s * (qo @ ko.transpose(-1, -2)).abs().max().item() if qo.numel() and L else 0.0)
    return nv * amplify, s * ndo * nv * nk * amplify, L * s * ndo * nv * nq * amplify, L * ndo * amplify


@given(attention_cases(FAST))
def test_public_values_and_gradients_match_reference(case):
    tally("masked_attention", "valid")
    check_case(case)


@given(attention_cases(FAST, special=True))
def test_special_values_match_reference(case):
    tally("masked_attention", "valid")
    check_case(case)


@given(attention_cases(FAST))
def test_custom_op_path_matches_reference(case):
    tally("masked_attention", "valid")
    check_case(case, custom_op=True)


@pytest.mark.skipif("triton" not in BACKENDS, reason="Triton is not available here")
@settings(max_examples=FEW)
@given(
    st.one_of(attention_cases(["triton"], small=True), attention_cases(["triton"], special=True, small=True)),
    st.booleans(),
)
def test_triton_matches_reference(case, custom_op):
    tally("masked_attention", "valid")
    check_case(case, custom_op=custom_op)


# ---- the decode step ------------------------------------------------------------------------


@st.composite
def decode_cases(draw, backends, small=False):
    backend = draw(st.sampled_from(backends))
    B = draw(st.integers(0, 2 if small else 3))
    Lmax = draw(st.integers(1, 5 if small else 9))
    return dict(
        backend=backend,
        dtype=draw(st.sampled_from(dtypes_of(backend))),
        B=B,
        H=draw(st.integers(1, 2 if small else 3)),
        Lmax=Lmax,
        D=draw(st.sampled_from([1, 3, 16]) if small else st.integers(1, 40)),
        lengths=draw(st.lists(st.integers(0, Lmax - 1), min_size=B, max_size=B)),
        scale=draw(st.sampled_from([None, 0.0, -0.7, 0.3])),
        layouts=[draw(layouts()) for _ in range(3)] + [draw(layouts(include_expanded=False)) for _ in range(3)],
        seed=draw(st.integers(0, 2**31 - 1)),
        custom_op=draw(st.booleans()),
    )


def check_decode(c):
    g = torch.Generator().manual_seed(c["seed"])
    B, H, Lmax, D, dtype = c["B"], c["H"], c["Lmax"], c["D"], c["dtype"]
    q, kn, vn = (torch.randn(B, H, 1, D, generator=g, dtype=torch.float64).to(dtype) for _ in range(3))
    kc, vc = (torch.randn(B, H, Lmax, D, generator=g, dtype=torch.float64).to(dtype) for _ in range(2))
    lengths = torch.tensor(c["lengths"], dtype=torch.int64)
    # Beyond each sequence's length the cache holds garbage: never read.
    beyond = torch.arange(Lmax)[None, :] > lengths[:, None]
    for t in (kc, vc):
        t[beyond[:, None, :, None].expand(B, H, Lmax, D)] = float("nan")
    L = c["layouts"]
    q, kn, vn = (as_layout(t, layout) for t, layout in zip((q, kn, vn), L[:3]))
    kc, vc = as_layout(kc.clone(), L[3]), as_layout(vc.clone(), L[4])
    lengths_arg = as_layout(lengths, L[5])
    before_k, before_v = kc.clone(), vc.clone()
    q64 = q.double()
    with (
        ops.use_backend({"masked_attention": c["backend"]}),
        mock.patch.object(_declare, "_use_custom_op", lambda: c["custom_op"]),
    ):
        out = ops.masked_attention_decode(q, kn, vn, kc, vc, lengths_arg, scale=c["scale"])
    # The caches: the new token at lengths[b], everything else as it was (bit for bit, NaN too).
    expect_k, expect_v = before_k.clone(), before_v.clone()
    for b, n in enumerate(c["lengths"]):
        expect_k[b, :, n], expect_v[b, :, n] = kn[b, :, 0], vn[b, :, 0]
    torch.testing.assert_close(kc, expect_k, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"k_cache: {m} {c}")
    torch.testing.assert_close(vc, expect_v, rtol=0, atol=0, equal_nan=True, msg=lambda m: f"v_cache: {m} {c}")
    # The output: the last row of causal attention over the sequence so far.
    scale = 1.0 / math.sqrt(D) if c["scale"] is None else c["scale"]
    rows64, rows32 = [], []
    for b, n in enumerate(c["lengths"]):
        keys, values = expect_k[b : b + 1, :, : n + 1].double(), expect_v[b : b + 1, :, : n + 1].double()
        rows64.append(masked_attention_reference(q64[b : b + 1], keys, values, None, False, scale)[0])
        rows32.append(
            masked_attention_reference(q64[b : b + 1].float(), keys.float(), values.float(), None, False, scale)[0]
        )
    ref64 = torch.cat(rows64) if rows64 else torch.empty(0, H, 1, D, dtype=torch.float64)
    ref32 = torch.cat(rows32) if rows32 else torch.empty(0, H, 1, D)
    assert out.dtype == dtype
    assert_like_reference(f"decode out [{c}]", out, ref64, ref32)


@given(decode_cases(FAST))
def test_decode_equals_full_attention(case):
    tally("masked_attention_decode", "valid")
    check_decode(case)


@pytest.mark.skipif("triton" not in BACKENDS, reason="Triton is not available here")
@settings(max_examples=FEW)
@given(decode_cases(["triton"], small=True))
def test_triton_decode_equals_full_attention(case):
    tally("masked_attention_decode", "valid")
    check_decode(case)


# ---- invalid calls -------------------------------------------------------------------------

BAD_DTYPES = [torch.int64, torch.int32, torch.bool, torch.complex64, torch.uint8]


def _tensor(shape, dtype=torch.float32):
    t = torch.randn(shape, dtype=torch.float64)
    return t.to(dtype) if dtype.is_complex or dtype.is_floating_point else (t * 3).to(dtype)


@st.composite
def bad_attention_calls(draw):
    """(kind, q, k, v, mask, kwargs, the argument named)."""
    B, H, L, D = 2, 3, 4, 8
    shapes = dict(q=(B, H, L, D), k=(B, H, L, D), v=(B, H, L, D))
    dtypes = dict.fromkeys(shapes, torch.float32)
    mask = torch.rand(B, L) < 0.5
    kwargs = {}
    kind = draw(
        st.sampled_from(
            ["rank", "dtype", "shape", "mixed-dtype", "head-dim", "mask-dtype", "mask-shape", "scale", "causal"]
        )
    )
    name = draw(st.sampled_from(["k", "v"]))
    if kind == "rank":
        name = "q"
        shapes = dict.fromkeys(shapes, draw(st.sampled_from([(B, L, D), (D,), (1, B, H, L, D)])))
    elif kind == "dtype":
        name = "q"
        dtypes = dict.fromkeys(shapes, draw(st.sampled_from(BAD_DTYPES)))
    elif kind == "shape":
        shapes[name] = draw(st.sampled_from([(B, H, L + 1, D), (B, H, L, D + 1), (B + 1, H, L, D), (B, 1, L, D)]))
    elif kind == "mixed-dtype":
        dtypes[name] = draw(st.sampled_from([torch.float64, torch.float16, *BAD_DTYPES]))
    elif kind == "head-dim":
        name = "q"
        shapes = dict.fromkeys(shapes, (1, 1, 2, draw(st.sampled_from([0, MAX_HEAD_DIM + 1, 300]))))
        mask = None
    elif kind == "mask-dtype":
        name = "key_padding_mask"
        mask = _tensor((B, L), draw(st.sampled_from([torch.float32, torch.uint8, torch.int64, torch.complex64])))
    elif kind == "mask-shape":
        name = "key_padding_mask"
        mask = torch.ones(draw(st.sampled_from([(B, L + 1), (B + 1, L), (L,), (B, 1, L)])), dtype=torch.bool)
    elif kind == "scale":
        name = "scale"
        kwargs["scale"] = draw(st.sampled_from([math.nan, math.inf, -math.inf]))
    else:
        name = "causal"
        kwargs["causal"] = draw(st.sampled_from([1, None, "yes"]))
    q, k, v = (_tensor(shapes[n], dtypes[n]) for n in "qkv")
    return kind, q, k, v, mask, kwargs, name


@given(bad_attention_calls(), st.sampled_from(BACKENDS))
def test_invalid_calls_are_refused_naming_the_argument(call, backend):
    kind, q, k, v, mask, kwargs, name = call
    tally("masked_attention", "refusal")
    with ops.use_backend({"masked_attention": backend}), _declare.recording() as ran:
        with pytest.raises((TypeError, ValueError)) as public:
            ops.masked_attention(q, k, v, mask, **kwargs)
        assert name in str(public.value), f"{kind}: {public.value}"
        if kind != "causal":  # the schema itself types causal (a RuntimeError of PyTorch's)
            with pytest.raises((TypeError, ValueError)) as registered:
                torch.ops.hepgen.masked_attention(q, k, v, mask, True, kwargs.get("scale", 0.5))
            assert name in str(registered.value), f"{kind}: {registered.value}"
    assert not ran, "a kernel ran before the refusal"


@st.composite
def bad_decode_calls(draw):
    """(kind, args of the public decode, the argument named)."""
    B, H, Lmax, D = 2, 2, 5, 8
    args = dict(
        q=_tensor((B, H, 1, D)),
        k_new=_tensor((B, H, 1, D)),
        v_new=_tensor((B, H, 1, D)),
        k_cache=torch.zeros(B, H, Lmax, D),
        v_cache=torch.zeros(B, H, Lmax, D),
        lengths=torch.tensor([0, 3]),
    )
    kind = draw(
        st.sampled_from(
            [
                "q-length",
                "q-dtype",
                "new-shape",
                "cache-shape",
                "cache-dtype",
                "lengths-dtype",
                "lengths-shape",
                "lengths-range",
                "expanded-cache",
                "shared-caches",
                "scale",
            ]
        )
    )
    name = None
    if kind == "q-length":
        name, args["q"] = "q", _tensor((B, H, draw(st.sampled_from([0, 2, 3])), D))
    elif kind == "q-dtype":
        name = "q"
        for n in ("q", "k_new", "v_new"):
            args[n] = _tensor((B, H, 1, D), draw(st.sampled_from(BAD_DTYPES)))
    elif kind == "new-shape":
        name = draw(st.sampled_from(["k_new", "v_new"]))
        args[name] = _tensor(draw(st.sampled_from([(B, H, 1, D + 1), (B, H, 2, D), (B, H + 1, 1, D), (B, H, D)])))
    elif kind == "cache-shape":
        name = draw(st.sampled_from(["k_cache", "v_cache"]))
        wrong = [(B, H, Lmax, D + 1), (B + 1, H, Lmax, D), (B, H, D)] + (
            [(B, H, Lmax + 1, D)] if name == "v_cache" else []
        )
        args[name] = torch.zeros(draw(st.sampled_from(wrong)))
    elif kind == "cache-dtype":
        name = draw(st.sampled_from(["k_cache", "v_cache"]))
        args[name] = args[name].to(draw(st.sampled_from([torch.float64, torch.float16, torch.int64])))
    elif kind == "lengths-dtype":
        name, args["lengths"] = (
            "lengths",
            torch.tensor([0, 3]).to(draw(st.sampled_from([torch.float32, torch.bool, torch.complex64]))),
        )
    elif kind == "lengths-shape":
        name, args["lengths"] = (
            "lengths",
            torch.zeros(draw(st.sampled_from([(B + 1,), (1,), (B, 1), ()])), dtype=torch.int64),
        )
    elif kind == "lengths-range":
        name = "lengths"
        args["lengths"] = torch.tensor([0, draw(st.sampled_from([-1, Lmax, Lmax + 7, -(2**40), 2**62]))])
    elif kind == "expanded-cache":
        name = draw(st.sampled_from(["k_cache", "v_cache"]))
        dim = draw(st.integers(0, 3))
        shape = [B, H, Lmax, D]
        shape[dim] = 1
        args[name] = torch.zeros(shape).expand(B, H, Lmax, D)
    elif kind == "shared-caches":
        name = "k_cache"
        args["v_cache"] = args["k_cache"] if draw(st.booleans()) else args["k_cache"][:, :, :]
    else:
        name = "scale"
    scale = draw(st.sampled_from([math.nan, math.inf])) if kind == "scale" else None
    return kind, args, scale, name


@given(bad_decode_calls(), st.sampled_from(BACKENDS))
def test_invalid_decode_calls_are_refused_naming_the_argument(call, backend):
    kind, args, scale, name = call
    tally("masked_attention_decode", "refusal")
    before = {n: t.clone() for n, t in args.items()}
    with ops.use_backend({"masked_attention": backend}), _declare.recording() as ran:
        with pytest.raises((TypeError, ValueError)) as public:
            ops.masked_attention_decode(*args.values(), scale=scale)
        assert name in str(public.value), f"{kind}: {public.value}"
        if args["lengths"].dtype == torch.int64:  # the registered op takes int64 lengths only
            with pytest.raises((TypeError, ValueError)) as registered:
                torch.ops.hepgen.masked_attention_decode(*args.values(), 0.5 if scale is None else scale)
            assert name in str(registered.value), f"{kind}: {registered.value}"
    assert not ran, "a kernel ran before the refusal"
    for n, t in args.items():
        assert torch.equal(t, before[n]) or n == "lengths", f"{kind}: a refused call wrote {n}"
