"""Property-based tests (Hypothesis) of rq_spline: every backend here, every layout of every
input, every dtype it takes, against the float64 reference, values and gradients, forward and
inverse, through the public function and through the registered custom op with autograd; and
invalid calls refused with an error naming the argument.

Shapes: 0-3 batch dims of 0-7 (size 0 and odd sizes), each tensor's batch dims independently
1 where it broadcasts, K in 1..9 bins. Values: inputs over [-1.5B, 1.5B] with both bounds hit
exactly (so some lie in the identity tails), logits of scale 0.1 to 3; with `special`, NaN,
±inf and ±1e300 among the inputs (which pass through the tails) or among the logits (NaN for
the elements that use them); the NaN/inf pattern must be the reference's. Triton runs under
TRITON_INTERPRET=1 on few, small examples (a tenth of the profile's).

Counts: with HEPGEN_FUZZ_COUNTS=<dir>, each test writes <dir>/<test>.json with the examples it
ran and how many were refusals (see tally below).
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
from hepgen.ops.rq_spline import rq_spline_reference

from .layouts import as_layout, layouts
from .reference_match import assert_like_reference
from .tally import tally

HALF = (torch.float16, torch.bfloat16)
FLOATS = (torch.float32, torch.float64)
BACKENDS = [b for b in ("reference", "cpu", "triton") if not why_unavailable(b, torch.device("cpu"), torch.float32)]
FAST = [b for b in BACKENDS if b != "triton"]
FEW = max(4, settings.default.max_examples // 10)  # Triton's interpreter: a tenth of the profile
# Near a knot the spline is ill-conditioned, and the kernels cumulate knots differently from the
# spec (compensated, in float64): in the worst bins of 10^4 examples their error reached 11x,
# 29x and 38x the spec's own float32/float64 evaluations' (the last: the float32 inverse's
# gradient at the end knot y = B of a bin with h/w = 15; the conformance suite's 8x holds on its
# samples). A layout or indexing fault is off by O(1), far beyond this.
FACTOR = 64.0


def dtypes_of(backend: str) -> tuple:
    # On the CPU only the reference computes half types (the cpu backend has no half kernels);
    # Triton's interpreter runs the float kernels.
    return HALF + FLOATS if backend == "reference" else FLOATS


@st.composite
def spline_cases(draw, backends, special=False, small=False):
    backend = draw(st.sampled_from(backends))
    dtype = draw(st.sampled_from(dtypes_of(backend)))
    batch = draw(st.lists(st.integers(0, 3 if small else 7), max_size=2 if small else 3))
    K = draw(st.integers(1, 4 if small else 9))
    # Each tensor's batch shape: the batch, some dims 1 (broadcast), equal for most cases.
    shapes = []
    for _ in range(4):
        ones = draw(st.lists(st.booleans(), min_size=len(batch), max_size=len(batch))) if draw(st.booleans()) else []
        shapes.append(tuple(1 if o else s for s, o in zip(batch, ones + [False] * len(batch))))
    half = dtype in HALF
    case = dict(
        backend=backend,
        dtype=dtype,
        batch=tuple(batch),
        K=K,
        shapes=shapes,
        inverse=draw(st.booleans()),
        bound=draw(st.sampled_from([0.5, 1.0, 3.0])),
        mw=draw(st.sampled_from([1e-2] if half else [1e-3, 1e-2])),
        mh=draw(st.sampled_from([1e-2] if half else [1e-3, 1e-2])),
        md=draw(st.sampled_from([1e-3, 1e-2, 0.1])),
        scale=draw(st.sampled_from([0.1, 1.0] if half else [0.1, 1.0, 3.0])),
        layouts=[draw(layouts()) for _ in range(4)],
        special=draw(st.sampled_from(["inputs", "parameters"])) if special else None,
        seed=draw(st.integers(0, 2**31 - 1)),
    )
    return case


SPECIALS = torch.tensor([math.nan, math.inf, -math.inf, 1e300, -1e300], dtype=torch.float64)


def _sprinkle(t: torch.Tensor, g: torch.Generator) -> None:
    """Some entries of t (float64) become NaN, ±inf or ±1e300, in place."""
    if t.numel():
        picks = torch.randint(0, t.numel(), (max(1, t.numel() // 6),), generator=g)
        t.view(-1)[picks] = SPECIALS[torch.randint(0, len(SPECIALS), (len(picks),), generator=g)]


def make_inputs(c):
    """float64 values of the four tensors, already rounded to the case's dtype."""
    g = torch.Generator().manual_seed(c["seed"])
    B, K = c["bound"], c["K"]
    x = (torch.rand(c["shapes"][0], generator=g, dtype=torch.float64) * 3 - 1.5) * B
    flat = x.view(-1)
    ends = torch.tensor([-B, B, B * 1.5, -B * (1 - 1e-3)], dtype=torch.float64)
    flat[: min(4, flat.numel())] = ends[: min(4, flat.numel())]
    uw, uh = (torch.randn(*c["shapes"][i], K, generator=g, dtype=torch.float64) * c["scale"] for i in (1, 2))
    ud = torch.randn(*c["shapes"][3], K - 1, generator=g, dtype=torch.float64) * c["scale"]
    if c["special"] == "inputs":
        _sprinkle(x, g)
    elif c["special"] == "parameters":
        _sprinkle((uw, uh, ud)[int(torch.randint(0, 3, (1,), generator=g))], g)
    return [t.to(c["dtype"]).double() for t in (x, uw, uh, ud)]


def _scalars(c):
    return dict(
        inverse=c["inverse"],
        tail_bound=c["bound"],
        min_bin_width=c["mw"],
        min_bin_height=c["mh"],
        min_derivative=c["md"],
    )


def _reference(values, c, dtype, cotangents):
    """Reference outputs and input gradients in `dtype` (computed from the same values)."""
    leaves = [v.to(dtype).requires_grad_() for v in values]
    y, ld = rq_spline_reference(*leaves, *_scalars(c).values())
    grads = torch.autograd.grad(
        (y, ld), leaves, [g.to(dtype) for g in cotangents], allow_unused=True, materialize_grads=True
    )
    return (y, ld), grads


def _hand_derived(values, c, cotangents, dtype):
    """Gradients by the hand-derived backward (the reference backend's backward op); in float32
    its terms cancel where the kernels' do, so its rounding error bounds theirs."""
    leaves = [v.to(dtype).requires_grad_() for v in values]
    with ops.use_backend({"rq_spline": "reference"}):
        out = ops.rq_spline(*leaves, **_scalars(c))
    cot = [g.to(dtype) for g in cotangents]
    return torch.autograd.grad(out, leaves, cot, allow_unused=True, materialize_grads=True)


def check_case(c, custom_op: bool = False, grad: bool = True):
    values = make_inputs(c)
    tensors = [as_layout(v.to(c["dtype"]), layout) for v, layout in zip(values, c["layouts"])]
    # The reference sees exactly the values the layouts hold (an expanded view repeats row 0).
    values = [t.double().contiguous() for t in tensors]
    leaves = [t.requires_grad_() if grad else t for t in tensors]
    with ops.use_backend({"rq_spline": c["backend"]}), mock.patch.object(_declare, "_use_custom_op", lambda: custom_op):
        out = ops.rq_spline(*leaves, **_scalars(c))
        g = torch.Generator().manual_seed(c["seed"] + 1)
        cotangents = [torch.randn(out[0].shape, generator=g, dtype=torch.float64) for _ in range(2)]
        got_grads = (
            torch.autograd.grad(
                out, leaves, [t.to(c["dtype"]) for t in cotangents], allow_unused=True, materialize_grads=True
            )
            if grad
            else ()
        )
    ref64, grads64 = _reference(values, c, torch.float64, cotangents)
    ref32, grads32 = _reference(values, c, torch.float32, cotangents)
    hand64 = _hand_derived(values, c, cotangents, torch.float64)
    evaluations = list(zip(grads32, _hand_derived(values, c, cotangents, torch.float32), hand64))
    if c["special"] is not None:
        # With non-finite values, autograd through the spec multiplies the zero gradient of an
        # element in the tails by its NaN bin terms (0 · NaN); the hand-derived backward (the
        # spec of the backward op) gives those elements' parameters exactly 0, as documented.
        grads64, evaluations = hand64, [e[:2] for e in evaluations]
    where = f"{c['backend']} {'custom op' if custom_op else 'eager'}: {c}"
    ends = _ill_conditioned_ends(values, c)
    for name, a, b, d in zip(("outputs", "logabsdet"), out, ref64, ref32):
        assert a.dtype == c["dtype"], f"{name} dtype {a.dtype}: {where}"
        if name == "logabsdet":
            a, b, d = (_values_aside(t, ends > 0) for t in (a, b, d))
        assert_like_reference(f"{name} [{where}]", a, b, d, factor=FACTOR)
    names = ("inputs", "unnormalized_widths", "unnormalized_heights", "unnormalized_derivatives")
    terms = (1.0, *(_parameter_terms(grads64[0], cotangents, c, t.shape[:-1]) for t in values[1:]))
    huge = _overflowing(values, c) + ends
    for name, a, b, d, m, v in zip(names, got_grads, grads64, evaluations, terms, values):
        aside = huge.sum_to_size(v.shape[: v.dim() - (name != "inputs")]) > 0
        if name != "inputs":
            aside = aside.unsqueeze(-1)
        a, b = (_values_aside(t, aside) for t in (a, b))
        d = tuple(_values_aside(t, aside) for t in d)
        assert_like_reference(f"grad {name} [{where}]", a, b, d, factor=FACTOR, magnitude=m)


def _values_aside(t: torch.Tensor, aside: torch.Tensor) -> torch.Tensor:
    """t with the finite entries at `aside` set to 0 (NaN and ±inf kept, for the pattern)."""
    t = t.detach()
    return t.masked_fill(aside & t.isfinite(), 0)


def _ill_conditioned_ends(values, c):
    """The inverse's elements exactly at y = ±B, where its root (t = 1 of the last bin, t = 0 of
    the first) is ill-conditioned: over 20000 random draws the float32 spec's own logabsdet there
    errs by up to 0.3 (median 4e-6), the cpu kernel's alike; in float64 the kernel's by up to
    7e-10 where the spec's knots happen to give t = 1 exactly. A backend's logabsdet and
    gradients there are compared for their NaN/inf pattern only (the outputs, exactly ±B, fully)."""
    full = torch.broadcast_shapes(*c["shapes"])
    if not c["inverse"] or c["backend"] == "reference":
        return torch.zeros(full, dtype=torch.int64)
    return (values[0].abs() == c["bound"]).expand(full).long()


def _overflowing(values, c):
    """Bool, broadcast batch shape: the elements whose parameters hold a huge finite value
    (> 1e100). Their gradients overflow in the spec's terms and are unspecified (module
    docstring of hepgen.ops.rq_spline); their outputs and logabsdet are compared."""
    full = torch.broadcast_shapes(*c["shapes"])
    huge = torch.zeros(full, dtype=torch.int64)
    for t in values[1:]:
        huge = huge + (t.isfinite() & (t.abs() > 1e100)).any(-1).expand(full).long()
    return huge


def _parameter_terms(grad_inputs, cotangents, c, batch):
    """Per parameter row, the size of the terms its gradient sums (and cancels through the
    softmax): each element adds 2B times its knots' gradients, which are about its input's
    gradient (the incoming ones over the bin width) plus the incoming ones; summed over the
    elements a broadcast row serves. [..., 1] for the row's K entries."""
    full = torch.broadcast_shapes(*c["shapes"])
    per_element = grad_inputs.abs().expand(full) + cotangents[0].abs() + cotangents[1].abs()
    per_element = per_element.masked_fill(~per_element.isfinite(), 0) * 2 * c["bound"]
    if c["special"] == "parameters":
        # A huge logit squeezes the other bins to the minimum width: the knots' gradients
        # then reach the incoming ones over that width, not over the element's own bin's.
        per_element = per_element / min(c["mw"], c["mh"])
    return per_element.sum_to_size(batch).unsqueeze(-1)


@given(spline_cases(FAST))
def test_public_values_and_gradients_match_reference(case):
    tally("rq_spline", "valid")
    check_case(case)


@given(spline_cases(FAST, special=True))
def test_special_values_match_reference(case):
    tally("rq_spline", "valid")
    check_case(case)


@given(spline_cases(FAST))
def test_custom_op_path_matches_reference(case):
    # torch.ops.hepgen.rq_spline with register_autograd (what torch.compile graphs run).
    tally("rq_spline", "valid")
    check_case(case, custom_op=True)


@pytest.mark.skipif("triton" not in BACKENDS, reason="Triton is not available here")
@settings(max_examples=FEW)
@given(
    st.one_of(spline_cases(["triton"], small=True), spline_cases(["triton"], special=True, small=True)), st.booleans()
)
def test_triton_matches_reference(case, custom_op):
    tally("rq_spline", "valid")
    check_case(case, custom_op=custom_op)


# ---- invalid calls -------------------------------------------------------------------------

GOOD = dict(x=(5, 3), w=(5, 3, 4), h=(5, 3, 4), d=(5, 3, 3))
NONFINITE = [math.nan, math.inf, -math.inf]
BAD_SCALARS = dict(
    tail_bound=[*NONFINITE, 0.0, -1.0],
    min_bin_width=[*NONFINITE, -1e-3, 0.26],  # K = 4 bins: at most 1/4
    min_bin_height=[*NONFINITE, -1e-3, 0.26],
    min_derivative=[*NONFINITE, -1e-3, 1.0],
)
BAD_DTYPES = [torch.int64, torch.int32, torch.bool, torch.complex64, torch.complex128, torch.uint8]


@st.composite
def bad_calls(draw):
    """(public args, kwargs, op args, error, the argument's names in the public and op messages)."""
    kind = draw(st.sampled_from(["dtype", "mixed-dtype", "bins", "derivatives", "rank", "broadcast", "scalar"]))
    shapes = dict(GOOD)
    dtypes = dict.fromkeys(GOOD, torch.float32)
    kwargs = {}
    which = draw(st.sampled_from(list(GOOD)))
    if kind == "dtype":
        which = "x"
        dtypes["x"] = draw(st.sampled_from(BAD_DTYPES))
    elif kind == "mixed-dtype":
        which = draw(st.sampled_from(["w", "h", "d"]))
        dtypes[which] = draw(st.sampled_from([torch.float64, torch.float16, *BAD_DTYPES]))
    elif kind == "bins":
        which = "h"
        shapes["h"] = (5, 3, draw(st.sampled_from([1, 2, 3, 5, 9])))
    elif kind == "derivatives":
        which = "d"
        shapes["d"] = (5, 3, draw(st.sampled_from([0, 1, 2])))
    elif kind == "rank":
        which = draw(st.sampled_from(["w", "h", "d"]))
        shapes[which] = ()
    elif kind == "broadcast":
        which = "x"
        shapes["x"] = (5, draw(st.sampled_from([2, 4, 7])))
    else:
        which = draw(st.sampled_from(list(BAD_SCALARS)))
        kwargs[which] = draw(st.sampled_from(BAD_SCALARS[which]))
    tensors = {}
    for name, shape in shapes.items():
        dt = dtypes[name]
        t = torch.randn(shape, dtype=torch.float64)
        tensors[name] = (t * 3).to(dt) if not dt.is_complex else t.to(dt)
    public_name = dict(x="inputs", w="unnormalized_widths", h="unnormalized_heights", d="unnormalized_derivatives")
    op_name = dict(x="inputs", w="widths", h="heights", d="derivatives")
    names = (public_name[which], op_name[which]) if which in GOOD else (which, which)
    return kind, tensors, kwargs, names


def _op_args(tensors, kwargs):
    """The registered op's arguments for a bad public call: flattened, as the public function would."""
    x, w, h, d = (tensors[k] for k in "xwhd")
    rows = [t.reshape(math.prod(t.shape[:-1]), t.shape[-1]) if t.dim() else t for t in (w, h, d)]
    flat = [x.reshape(-1) if x.dim() else x, *rows]
    s = dict(inverse=False, tail_bound=1.0, min_bin_width=1e-3, min_bin_height=1e-3, min_derivative=1e-3)
    s.update(kwargs)
    return (*flat, *s.values())


@given(bad_calls(), st.sampled_from(BACKENDS))
def test_invalid_calls_are_refused_naming_the_argument(call, backend):
    kind, tensors, kwargs, (public_name, op_name) = call
    tally("rq_spline", "refusal")
    with ops.use_backend({"rq_spline": backend}), _declare.recording() as ran:
        with pytest.raises((TypeError, ValueError)) as public:
            ops.rq_spline(*(tensors[k] for k in "xwhd"), **kwargs)
        assert public_name in str(public.value), f"{kind}: {public.value}"
        # The registered op on the flattened arguments (a broadcast mismatch has no flat form).
        if kind != "broadcast":
            with pytest.raises((TypeError, ValueError)) as registered:
                torch.ops.hepgen.rq_spline(*_op_args(tensors, kwargs))
            assert op_name in str(registered.value), f"{kind}: {registered.value}"
    assert not ran, "a kernel ran before the refusal"
