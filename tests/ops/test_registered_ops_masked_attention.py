"""Bad calls straight into torch.ops.hepgen.masked_attention, masked_attention_backward and
masked_attention_decode (as torch.compile graphs and exported programs make them): each raises a
TypeError/ValueError naming the argument on every backend, before any kernel (no cache is
written); the same calls into the compiled core's glue end in a Python exception, never a crash."""

from __future__ import annotations

import pytest
import torch
from registered_calls import BadCall, cpu_backends, probe_glue

import hepgen.ops as ops
from hepgen.ops import _declare
from hepgen.ops.masked_attention import (
    MASKED_ATTENTION,
    MASKED_ATTENTION_BACKWARD,
    MASKED_ATTENTION_DECODE,
    masked_attention_decode_reference,
    masked_attention_reference,
)

B, H, L, D, LMAX = 2, 3, 5, 8, 6
GLUE = "hepgen.ops.compiled.masked_attention."


def _t(*shape, dtype=torch.float32):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(len(shape)), dtype=torch.float64).to(dtype)


def _forward(q=None, k=None, v=None, mask=None, causal=True, scale=0.3, no_mask=False):
    q = _t(B, H, L, D) if q is None else q
    k = _t(B, H, L, D) if k is None else k
    v = _t(B, H, L, D) if v is None else v
    mask = None if no_mask else (torch.tensor([[True] * L, [False, True, True, False, True]]) if mask is None else mask)
    return (q, k, v, mask, causal, scale)


def _backward(grad_out=None, out=None, lse=None, **forward):
    q, k, v, mask, causal, scale = _forward(**forward)
    grad_out = torch.ones(B, H, L, D, dtype=q.dtype) if grad_out is None else grad_out
    if out is None or lse is None:
        o, s = masked_attention_reference(*_forward())  # from good inputs: the bad one is elsewhere
        out = o if out is None else out
        lse = s if lse is None else lse
    return (grad_out, q, k, v, mask, out, lse, causal, scale)


def _decode(q=None, k_new=None, v_new=None, k_cache=None, v_cache=None, lengths=None, scale=0.3):
    q = _t(B, H, 1, D) if q is None else q
    k_new = _t(B, H, 1, D) if k_new is None else k_new
    v_new = _t(B, H, 1, D) if v_new is None else v_new
    k_cache = torch.zeros(B, H, LMAX, D) if k_cache is None else k_cache
    v_cache = torch.zeros(B, H, LMAX, D) if v_cache is None else v_cache
    lengths = torch.tensor([0, 3]) if lengths is None else lengths
    return (q, k_new, v_new, k_cache, v_cache, lengths, scale)


def _aliased_decode(which):
    """Decode arguments whose cache shares memory: with v_cache, or with q (a view into it)."""

    def args():
        kc = torch.zeros(B, H, LMAX, D)
        if which == "v_cache":
            return _decode(k_cache=kc, v_cache=kc)
        return _decode(q=kc[:, :, :1], k_cache=kc)

    return args


def _interleaved_cache():
    # Two rows per position over one buffer: no stride 0, yet rows alias (strides overlap).
    return torch.zeros(B * H * LMAX * D).as_strided((B, H, LMAX, D), (H * LMAX * D, LMAX * D, 1, 1))


def _bad(name, error, match, glue_may_return=False, **kw):
    return BadCall(
        name, "masked_attention", lambda: _forward(**kw), error, match, GLUE + "_core_forward", glue_may_return
    )


def _bad_backward(name, error, match, **kw):
    return BadCall(
        name, "masked_attention_backward", lambda: _backward(**kw), error, match, glue=GLUE + "_core_backward"
    )


def _bad_decode(name, error, match, glue_may_return=False, args=None, **kw):
    return BadCall(
        name,
        "masked_attention_decode",
        args or (lambda: _decode(**kw)),
        error,
        match,
        glue=GLUE + "_core_decode",
        glue_may_return=glue_may_return,
    )


BAD_CALLS = [
    _bad("q-rank", ValueError, "q must have 4 dimensions", q=_t(B, L, D), k=_t(B, L, D), v=_t(B, L, D)),
    _bad("q-int", TypeError, "q must have a floating dtype", q=torch.ones(B, H, L, D, dtype=torch.int64)),
    _bad("q-complex", TypeError, "q must have a floating dtype", q=torch.ones(B, H, L, D, dtype=torch.complex64)),
    _bad("k-shape", ValueError, r"k must have shape \(2, 3, 5, 8\) to match q", k=_t(B, H, L + 1, D)),
    _bad("v-dtype", TypeError, "v must have the dtype of q", v=_t(B, H, L, D, dtype=torch.float64)),
    # The glue returns the empty result of an empty q without a kernel call (head_dim 0 included).
    _bad("head-dim-0", ValueError, "head dimension", True, q=_t(B, H, L, 0), k=_t(B, H, L, 0), v=_t(B, H, L, 0)),
    _bad("head-dim-129", ValueError, "head dimension", q=_t(1, 1, 2, 129), k=_t(1, 1, 2, 129), v=_t(1, 1, 2, 129)),
    _bad("mask-float", TypeError, "key_padding_mask must be a bool tensor", mask=torch.ones(B, L)),
    # The C++ core takes uint8 masks as well (its documented contract); the op takes bool only.
    _bad(
        "mask-uint8",
        TypeError,
        "key_padding_mask must be a bool tensor",
        True,
        mask=torch.ones(B, L, dtype=torch.uint8),
    ),
    _bad(
        "mask-shape", ValueError, r"key_padding_mask must have shape \(batch, length\)", mask=torch.ones(B, L - 1) > 0
    ),
    _bad("mask-rank", ValueError, "key_padding_mask must have 2 dimensions", mask=torch.ones(B, 1, L) > 0),
    _bad("scale-nan", ValueError, "scale must be finite", scale=float("nan")),
    _bad("scale-inf", ValueError, "scale must be finite", scale=-float("inf")),
    _bad_backward(
        "backward-grad-out-shape", ValueError, "grad_out must have shape", grad_out=torch.ones(B, H, L, D + 1)
    ),
    _bad_backward(
        "backward-grad-out-dtype",
        TypeError,
        "grad_out must have the dtype of q",
        grad_out=torch.ones(B, H, L, D).double(),
    ),
    _bad_backward("backward-out-shape", ValueError, "out must have shape", out=torch.ones(B, H, L - 1, D)),
    _bad_backward(
        "backward-lse-shape", ValueError, r"lse must have shape \(batch, heads, length\)", lse=torch.ones(B, H)
    ),
    _bad_backward(
        "backward-lse-dtype", TypeError, "lse must have dtype torch.float32", lse=torch.ones(B, H, L).double()
    ),
    _bad_backward("backward-k-shape", ValueError, "k must have shape", k=_t(B, H, L, D - 1)),
    _bad_backward("backward-mask-float", TypeError, "key_padding_mask must be a bool tensor", mask=torch.ones(B, L)),
    _bad_backward("backward-scale-nan", ValueError, "scale must be finite", scale=float("nan")),
    _bad_decode("decode-q-length", ValueError, "q must hold one new token", q=_t(B, H, 2, D)),
    _bad_decode("decode-q-int", TypeError, "q must have a floating dtype", q=torch.ones(B, H, 1, D, dtype=torch.int64)),
    _bad_decode("decode-k-new-shape", ValueError, "k_new must have shape", k_new=_t(B, H, 1, D + 1)),
    _bad_decode("decode-v-new-dtype", TypeError, "v_new must have the dtype of q", v_new=_t(B, H, 1, D).double()),
    _bad_decode("decode-k-cache-heads", ValueError, "k_cache must have shape", k_cache=torch.zeros(B, H + 1, LMAX, D)),
    _bad_decode("decode-k-cache-rank", ValueError, "k_cache must have 4 dimensions", k_cache=torch.zeros(B, H, LMAX)),
    _bad_decode("decode-v-cache-length", ValueError, "v_cache must have shape", v_cache=torch.zeros(B, H, LMAX + 1, D)),
    _bad_decode(
        "decode-v-cache-dtype", TypeError, "v_cache must have the dtype", v_cache=torch.zeros(B, H, LMAX, D).double()
    ),
    _bad_decode("decode-lengths-float", TypeError, "lengths must be an int64 tensor", lengths=torch.tensor([0.0, 1.0])),
    _bad_decode(
        "decode-lengths-int32", TypeError, "lengths must be an int64 tensor", lengths=torch.tensor([0, 1]).int()
    ),
    _bad_decode("decode-lengths-shape", ValueError, r"lengths must have shape \(2,\)", lengths=torch.tensor([0, 1, 2])),
    _bad_decode("decode-lengths-rank", ValueError, "lengths must have 1 dimensions", lengths=torch.tensor([[0, 1]])),
    # Out-of-range lengths: the compiled kernels' defined behaviour is no write and NaN.
    _bad_decode("decode-lengths-negative", ValueError, "lengths must lie in", True, lengths=torch.tensor([-1, 1])),
    _bad_decode(
        "decode-cache-full", ValueError, r"lengths must lie in \[0, 6\)", True, lengths=torch.tensor([1, LMAX])
    ),
    _bad_decode("decode-lengths-huge", ValueError, "lengths must lie in", True, lengths=torch.tensor([0, 2**62])),
    _bad_decode(
        "decode-k-cache-expanded",
        ValueError,
        "k_cache is written in place but its elements overlap",
        k_cache=torch.zeros(1, H, LMAX, D).expand(B, H, LMAX, D),
    ),
    _bad_decode(
        "decode-v-cache-expanded-head-dim",
        ValueError,
        "v_cache is written in place but its elements overlap",
        v_cache=torch.zeros(B, H, LMAX, 1).expand(B, H, LMAX, D),
    ),
    _bad_decode(
        "decode-k-cache-interleaved",
        ValueError,
        "k_cache is written in place but its elements overlap",
        k_cache=_interleaved_cache(),
    ),
    _bad_decode(
        "decode-caches-shared",
        ValueError,
        "k_cache is written in place and shares memory with v_cache",
        args=_aliased_decode("v_cache"),
    ),
    _bad_decode(
        "decode-cache-is-q",
        ValueError,
        "k_cache is written in place and shares memory with q",
        args=_aliased_decode("q"),
    ),
    _bad_decode("decode-scale-nan", ValueError, "scale must be finite", scale=float("nan")),
]


@pytest.mark.parametrize("backend", cpu_backends("masked_attention"))
@pytest.mark.parametrize("call", BAD_CALLS, ids=str)
def test_registered_op_refuses_bad_calls_before_any_kernel(call, backend):
    args = call.args()
    before = [a.clone() for a in args if isinstance(a, torch.Tensor)]
    with (
        ops.use_backend({"masked_attention": backend}),
        _declare.recording() as ran,
        pytest.raises(call.error, match=call.match),
    ):
        getattr(torch.ops.hepgen, call.op)(*args)
    assert not ran, "a backend ran before the refusal"
    after = [a for a in args if isinstance(a, torch.Tensor)]
    assert all(torch.equal(a, b) for a, b in zip(after, before)), "a refused call wrote its arguments"


@pytest.mark.parametrize(
    "validate, args, match",
    [
        (MASKED_ATTENTION.validate, lambda: _forward(k=_t(B, H, L, D).to("meta")), "k is on meta but q is on cpu"),
        (
            MASKED_ATTENTION_BACKWARD.validate,
            lambda: _backward(lse=torch.ones(B, H, L, device="meta")),
            "lse is on meta but q is on cpu",
        ),
        (
            MASKED_ATTENTION_DECODE.validate,
            lambda: _decode(lengths=torch.tensor([0, 1], device="meta")),
            "lengths is on meta but q is on cpu",
        ),
    ],
    ids=["forward", "backward", "decode"],
)
def test_validate_names_an_argument_on_another_device(validate, args, match):
    # Mixed cpu/meta calls of the registered op go to the fake kernel (PyTorch's dispatch), so
    # the body never sees them; the check itself refuses them.
    with pytest.raises(ValueError, match=match):
        validate(*args())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU for a second device")
def test_registered_op_refuses_an_argument_on_another_device():
    with pytest.raises(ValueError, match="k is on cpu but q is on cuda"):
        torch.ops.hepgen.masked_attention(*_forward(q=_t(B, H, L, D).cuda()))


def test_public_decode_refuses_aliased_caches_like_the_registered_op():
    # The case: an expanded cache written by several rows at once, cpu and reference alike.
    for backend in cpu_backends("masked_attention"):
        q, kn, vn, kc, vc, lengths, _ = _decode(k_cache=torch.zeros(1, H, LMAX, D).expand(B, H, LMAX, D))
        with ops.use_backend({"masked_attention": backend}), pytest.raises(ValueError, match="k_cache is written"):
            ops.masked_attention_decode(q, kn, vn, kc, vc, lengths)


def test_registered_decode_accepts_a_strided_lengths_view():
    args = _decode(lengths=torch.tensor([0, 9, 3, 9])[::2])
    expected = masked_attention_decode_reference(*(a.clone() if isinstance(a, torch.Tensor) else a for a in args))
    for backend in cpu_backends("masked_attention"):
        fresh = tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)
        fresh = (*fresh[:5], torch.tensor([0, 9, 3, 9])[::2], fresh[6])
        with ops.use_backend({"masked_attention": backend}):
            out = torch.ops.hepgen.masked_attention_decode(*fresh)
        torch.testing.assert_close(out, expected, msg=lambda m: f"{backend}: {m}")


def test_reference_decode_writes_nothing_for_an_out_of_range_length():
    # Reachable only where lengths are not checked (GPU tensors); defined as in the kernels.
    q, kn, vn, kc, vc, _, scale = _decode()
    out = masked_attention_decode_reference(q, kn, vn, kc, vc, torch.tensor([LMAX, 1]), scale)
    assert torch.isnan(out[0]).all() and not torch.isnan(out[1]).any()
    assert torch.equal(kc[0], torch.zeros_like(kc[0])) and torch.equal(vc[0], torch.zeros_like(vc[0]))
    assert torch.equal(kc[1, :, 1:2], kn[1]) and torch.equal(vc[1, :, 1:2], vn[1])


def test_compiled_glue_survives_every_bad_call(tmp_path):
    outcomes = probe_glue("test_registered_ops_masked_attention", tmp_path)
    assert len(outcomes) == sum(c.glue is not None for c in BAD_CALLS)
    returned = [o["name"] for o in outcomes if o.get("returned")]
    allowed = {c.name for c in BAD_CALLS if c.glue_may_return}
    assert set(returned) <= allowed, f"the glue ran bad calls without a word: {sorted(set(returned) - allowed)}"
