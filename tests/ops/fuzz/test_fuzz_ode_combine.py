"""Property-based fuzzing of ode_combine: every backend here against the float64 reference.

Valid inputs: random states [S], [S, R] and [S, R, F] (size-0 included), 0 to 16 terms (8 on
triton), a float or per-sample step, every layout of every input and of the output gradient,
every dtype a backend runs, NaN/±inf/huge values (also only in the padded rows, the issue's
case), bool, weighted and non-finite masks; values and gradients of y, every k and h, through
the public function and the registered custom op. What a mask means, on every backend: a row
whose mask is 0 comes out exactly 0 and its inputs reach neither the output nor any gradient;
any other weight (NaN included) multiplies the row. Invalid inputs: every entry point refuses
with a TypeError/ValueError naming the argument.
"""

from __future__ import annotations

import math

import torch
from hypothesis import given
from hypothesis import strategies as st

import hepgen.ops as ops
from fuzz.agree import assert_agrees, fuzz_backends
from fuzz.layouts import as_layout, factors, layouts, values
from hepgen.ops.ode_combine import ode_combine_backward_reference, ode_combine_reference

CPU = torch.device("cpu")
OP = "ode_combine"
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
BACKENDS = fuzz_backends()
RUNNABLE = [(b, dt) for b in BACKENDS for dt in DTYPES if not ops.why_unavailable(b, CPU, dt, OP)]
MASKS = {"bool": None, "weights": [0.0, 0.5, 1.0, 2.0, -1.0], "nonfinite": [0.0, 1.0, float("nan"), float("inf")]}
PAD_SPECIALS = torch.tensor([float("nan"), float("inf"), -float("inf")], dtype=torch.float64)


def _bc(v, like):
    return v.reshape(v.shape + (1,) * (like.dim() - v.dim()))


def _mask(kind, S, R, seed):
    g = torch.Generator().manual_seed(seed)
    if kind == "bool":
        return torch.rand(S, R, generator=g) < 0.6
    pool = torch.tensor(MASKS[kind], dtype=torch.float64)
    return pool[torch.randint(0, len(pool), (S, R), generator=g)]


def _fill_padding(t, mask, seed):
    """t with NaN/±inf in every padded row (mask == 0): what a padded batch may hold."""
    if mask is None or t.numel() == 0:
        return t
    g = torch.Generator().manual_seed(seed)
    pick = PAD_SPECIALS[torch.randint(0, 3, t.shape, generator=g)].to(t.dtype)
    return torch.where(_bc(mask == 0, t), pick, t)


@given(
    case=st.sampled_from(RUNNABLE),
    path=st.sampled_from(["public", "custom_op"]),
    shape=st.lists(st.integers(0, 7), min_size=1, max_size=3),
    n_terms=st.integers(0, 16),
    coeffs=st.lists(factors(3.0), min_size=16, max_size=16),
    y_coeff=factors(2.0),
    step=st.sampled_from(["float", "tensor"]),
    mask_kind=st.sampled_from(["none", *sorted(MASKS)]),
    special=st.sampled_from(["none", "anywhere", "padding"]),
    layout=st.lists(layouts(), min_size=20, max_size=20),
    seed=st.integers(0, 2**31 - 1),
)
def test_values_and_gradients_match_reference(
    fuzz_tally, case, path, shape, n_terms, coeffs, y_coeff, step, mask_kind, special, layout, seed
):
    backend, dtype = case
    if backend == "triton":
        n_terms = min(n_terms, 8)  # the triton kernel's documented limit (larger is a clear error)
    coeffs = coeffs[:n_terms]
    S = shape[0]
    with fuzz_tally.example(OP):
        mask = None if mask_kind == "none" or len(shape) < 2 else _mask(mask_kind, S, shape[1], seed)
        mask = None if mask is None else as_layout(mask, layout[18])
        anywhere = special == "anywhere"
        y = values(shape, special=anywhere, seed=seed).to(dtype)
        ks = [values(shape, special=anywhere, seed=seed + 1 + i).to(dtype) for i in range(n_terms)]
        g = values(shape, special=anywhere, seed=seed + 20).to(dtype)
        if special == "padding":
            y, g = _fill_padding(y, mask, seed), _fill_padding(g, mask, seed + 1)
            ks = [_fill_padding(k, mask, seed + 2 + i) for i, k in enumerate(ks)]
        # The drawn layouts (an expanded view repeats its first row); the reference gets their values.
        y_in = as_layout(y, layout[0]).detach().requires_grad_()
        ks_in = [as_layout(k, layout[1 + i]).detach().requires_grad_() for i, k in enumerate(ks)]
        g = as_layout(g, layout[19])
        h_value = 0.1 + 0.05 * (seed % 7)
        leaves = [y_in, *ks_in]
        if step == "tensor":
            h = as_layout(torch.full((S,), h_value, dtype=dtype), layout[17]).detach().requires_grad_()
            leaves.append(h)
        else:
            h = h_value
        y64, ks64, g64 = y_in.detach().double(), [k.detach().double() for k in ks_in], g.double()
        h64 = torch.full((S,), h_value, dtype=dtype).double()
        m64 = None if mask is None else mask.double()
        ref = ode_combine_reference(y64, ks64, coeffs, h64, m64, y_coeff)
        ref_gy, ref_gks, ref_gh = ode_combine_backward_reference(g64, ks64, coeffs, h64, m64, y_coeff)
        with ops.use_backend(backend):
            if path == "public":
                out = ops.ode_combine(y_in, ks_in, coeffs, h, mask, y_coeff)
            else:
                h_t = h if step == "tensor" else torch.full((S,), h_value, dtype=dtype)
                m_t = None if mask is None else mask.to(dtype)
                out = torch.ops.hepgen.ode_combine(y_in, ks_in, coeffs, h_t, m_t, y_coeff)
            grads = torch.autograd.grad(out, leaves, g, allow_unused=True)
        grads = [torch.zeros_like(t) if gr is None else gr for t, gr in zip(leaves, grads)]

        am = torch.ones(()) if m64 is None else _bc(m64, y64).abs()
        real = torch.ones((), dtype=torch.bool) if m64 is None else _bc(m64 != 0, y64)
        acc_abs = sum((abs(c) * k.abs() for c, k in zip(coeffs, ks64)), torch.zeros_like(y64))
        hb = _bc(h64.abs(), y64)
        scale_out = torch.where(real, am * (abs(y_coeff) * y64.abs() + hb * acc_abs), 0.0)
        name = f"{backend} {path} ode_combine"
        assert_agrees(out, ref, scale_out, n_terms + 3, name)
        gm = torch.where(real, am * g64.abs(), 0.0)
        assert_agrees(grads[0], ref_gy, abs(y_coeff) * gm, 2, f"{name} grad y")
        for i, c in enumerate(coeffs):
            assert_agrees(grads[1 + i], ref_gks[i], abs(c) * hb * gm, 3, f"{name} grad ks[{i}]")
        if step == "tensor":
            rows = math.prod(shape[1:])
            scale_h = torch.where(real, gm * acc_abs, 0.0).reshape(S, rows).sum(1)
            assert_agrees(grads[-1], ref_gh, scale_h, n_terms + rows + 3, f"{name} grad h")
        if mask is not None:  # nothing of a padded row reaches the output or a gradient
            pad = (mask == 0).unsqueeze(-1).expand(shape[:2] + [math.prod(shape[2:])]).reshape(shape)
            assert (out[pad] == 0).all()
            for gr in grads[: 1 + n_terms]:
                assert (gr[pad] == 0).all()


# ---- invalid inputs -------------------------------------------------------------------------


def _ok():
    y = torch.zeros(2, 3, 4)
    return dict(y=y, ks=[torch.zeros_like(y)], coeffs=[1.0], h=torch.ones(2), mask=None, y_coeff=1.0)


FAULTS = {
    # name: (changes, argument named, entry points: "p" public, "c" custom op)
    "y-scalar": (dict(y=torch.tensor(1.0), ks=[], coeffs=[], h=torch.ones(0)), "y", "pc"),
    "y-int": (dict(y=torch.zeros(2, 3, 4, dtype=torch.int64)), "y", "pc"),
    "y-bool": (dict(y=torch.zeros(2, 3, 4, dtype=torch.bool)), "y", "pc"),
    "y-complex": (dict(y=torch.zeros(2, 3, 4, dtype=torch.complex64)), "y", "pc"),
    "ks-not-a-list": (dict(ks=torch.zeros(1, 2, 3, 4)), "ks", "p"),
    "ks-shape": (dict(ks=[torch.zeros(2, 3, 5)]), "ks[0]", "pc"),
    "ks-dtype": (dict(ks=[torch.zeros(2, 3, 4, dtype=torch.float64)]), "ks[0]", "pc"),
    "ks-int": (dict(ks=[torch.zeros(2, 3, 4), torch.zeros(2, 3, 4, dtype=torch.int32)], coeffs=[1, 1]), "ks[1]", "pc"),
    "ks-device": (dict(ks=[torch.zeros(2, 3, 4, device="meta")]), "ks[0]", "pc"),
    "coeffs-count": (dict(coeffs=[1.0, 2.0]), "coeffs", "pc"),
    "coeffs-short": (dict(coeffs=[]), "coeffs", "pc"),
    "too-many-terms": (dict(ks=[torch.zeros(2, 3, 4)] * 17, coeffs=[1.0] * 17), "ks", "pc"),
    "coeffs-nan": (dict(coeffs=[float("nan")]), "coeffs[0]", "pc"),
    "coeffs-inf": (dict(coeffs=[float("inf")]), "coeffs[0]", "pc"),
    "coeffs-str": (dict(coeffs=["1"]), "coeffs[0]", "p"),
    "h-shape": (dict(h=torch.ones(3)), "h", "pc"),
    "h-rank": (dict(h=torch.ones(2, 1)), "h", "pc"),
    "h-nan": (dict(h=float("nan")), "h", "p"),
    "h-complex": (dict(h=torch.ones(2, dtype=torch.complex64)), "h", "p"),
    "h-dtype": (dict(h=torch.ones(2, dtype=torch.float64)), "h", "c"),
    "h-device": (dict(h=torch.ones(2, device="meta")), "h", "pc"),
    "mask-rank": (dict(mask=torch.ones(2, 3, 4)), "mask", "pc"),
    "mask-shape": (dict(mask=torch.ones(1, 1)), "mask", "pc"),
    "mask-int": (dict(mask=torch.ones(2, 3, dtype=torch.int64)), "mask", "pc"),
    "mask-bool": (dict(mask=torch.ones(2, 3, dtype=torch.bool)), "mask", "c"),
    "mask-device": (dict(mask=torch.ones(2, 3, device="meta")), "mask", "pc"),
    "mask-on-flat-state": (dict(y=torch.zeros(2), ks=[torch.zeros(2)], mask=torch.ones(2, 1)), "mask", "pc"),
    "y_coeff-nan": (dict(y_coeff=float("nan")), "y_coeff", "pc"),
    "y_coeff-inf": (dict(y_coeff=-float("inf")), "y_coeff", "pc"),
}


@given(
    fault=st.sampled_from(sorted(FAULTS)),
    path=st.sampled_from(["public", "custom_op", "custom_backward"]),
    backend=st.sampled_from(BACKENDS),
)
def test_invalid_inputs_are_refused_naming_the_argument(fuzz_tally, fault, path, backend):
    change, name, entries = FAULTS[fault]
    if ("p" if path == "public" else "c") not in entries:
        change, name = FAULTS["ks-shape"][:2]  # a fault this entry point cannot be handed: another one
    args = {**_ok(), **change}
    if path == "custom_backward" and name == "y":
        name = "grad"  # the backward op's first argument is the output gradient
    call = {
        "public": lambda a: ops.ode_combine(**a),
        "custom_op": lambda a: torch.ops.hepgen.ode_combine(*a.values()),
        "custom_backward": lambda a: torch.ops.hepgen.ode_combine_backward(*a.values()),
    }[path]
    with ops.use_backend(backend), fuzz_tally.refusal(OP, name):
        call(args)
