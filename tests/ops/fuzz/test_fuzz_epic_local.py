"""Property-based fuzzing of epic_local: every backend here against the float64 reference.

Valid inputs: random shapes (size-0 batch, sets, features and hidden sizes included), every
layout of every input (x, mask, both weights, both biases, shared [H] biases too) and of both
output gradients, every dtype a backend runs, NaN/±inf/huge values, bool, weighted, signed and
non-finite masks; values and the gradients of x, w1, bias1, w2 and bias2 (the issue's strided
bias1 among them), through the public function and the registered custom op. The float64
reference's own backward is held to autograd through the reference forward where that is
well defined. Invalid inputs: every entry point refuses with a TypeError/ValueError naming
the argument.

Gradients of LeakyReLU jump where a pre-activation is 0; where a pre-activation lies within
rounding of 0 for the dtype (the float64 value below the forward error bound) two correct
backends may take different sides, and only the NaN/inf pattern of the gradients is compared.
"""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

import hepgen.ops as ops
from fuzz.agree import EPS, assert_agrees, fuzz_backends, scalar_terms
from fuzz.layouts import as_layout, factors, layouts, values
from fuzz.test_fuzz_set_pool import make_mask, pool_scales
from hepgen.ops.epic_local import epic_local_backward_reference, epic_local_reference

CPU = torch.device("cpu")
OP = "epic_local"
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
BACKENDS = fuzz_backends()
RUNNABLE = [(b, dt) for b in BACKENDS for dt in DTYPES if not ops.why_unavailable(b, CPU, dt, OP)]
SPECIALS = {
    "none": (),
    "x": ("x",),
    "weights": ("w1", "w2"),
    "biases": ("bias1", "bias2"),
    "grads": ("grad_y", "grad_pooled"),
    "all": ("x", "w1", "w2", "bias1", "bias2", "grad_y", "grad_pooled"),
}


def _act(v, slope):
    return torch.where(v > 0, v, v * slope)


def _magnitudes(x, m, w1, b1, w2, b2, gy, gp, s):
    """The forward and backward on absolute values (act the identity): agree.py's scales."""
    real = (m != 0).unsqueeze(-1)
    am = m.abs().unsqueeze(-1)
    xa = torch.where(real, x.abs(), 0.0)
    z1 = xa @ w1.abs().t() + b1.abs().unsqueeze(1)
    z2 = z1 @ w2.abs().t() + b2.abs().unsqueeze(1) + xa
    ya = torch.where(real, am * z2, 0.0)
    H = x.shape[-1]
    count = m.sum(1, keepdim=True)
    coef = gp[:, :H].abs() * torch.where(count != 0, 1 / count.abs(), 0.0) + gp[:, H:].abs() * abs(s)
    dz2 = torch.where(real, (gy.abs() + am * coef.unsqueeze(1)) * am, 0.0)
    dz1 = torch.where(real, dz2 @ w2.abs(), 0.0)
    dx = torch.where(real, dz1 @ w1.abs() + dz2, 0.0)
    dw1 = dz1.flatten(0, 1).t() @ xa.flatten(0, 1)
    dw2 = dz2.flatten(0, 1).t() @ torch.where(real, z1, 0.0).flatten(0, 1)
    return z1, z2, (ya, pool_scales(ya, m, s)), (dx, dw1, dz1.sum(1), dw2, dz2.sum(1))


def _near_a_kink(x, m, w1, b1, w2, b2, slope, z1a, z2a, window):
    """Whether a real pre-activation lies within rounding (`window` · magnitude) of 0."""
    real = (m != 0).unsqueeze(-1)
    xr = torch.where(real, x, 0.0)
    z1 = xr @ w1.t() + b1.unsqueeze(1)
    z2 = _act(z1, slope) @ w2.t() + b2.unsqueeze(1) + xr
    return bool(((z1.abs() <= window * z1a) & real).any() or ((z2.abs() <= window * z2a) & real).any())


@given(
    case=st.sampled_from(RUNNABLE),
    path=st.sampled_from(["public", "custom_op"]),
    B=st.integers(0, 4),
    N=st.integers(0, 11),
    H=st.integers(0, 6),
    H1=st.integers(0, 6),
    shared_bias=st.tuples(st.booleans(), st.booleans()),
    layout=st.lists(layouts(), min_size=8, max_size=8),
    mask_kind=st.sampled_from(["bool", "weights", "signed", "nonfinite"]),
    special=st.sampled_from(["none", "none", "none", *sorted(SPECIALS)]),
    scale=factors(2.0),
    slope=st.one_of(st.sampled_from([0.01, 0.2, 1.0]), st.floats(1e-3, 2.0)),
    seed=st.integers(0, 2**31 - 1),
)
def test_values_and_gradients_match_reference(
    fuzz_tally, case, path, B, N, H, H1, shared_bias, layout, mask_kind, special, scale, slope, seed
):
    backend, dtype = case
    with fuzz_tally.example(OP):
        shapes = {
            "x": (B, N, H),
            "w1": (H1, H),
            "bias1": (H1,) if shared_bias[0] else (B, H1),
            "w2": (H, H1),
            "bias2": (H,) if shared_bias[1] else (B, H),
            "grad_y": (B, N, H),
            "grad_pooled": (B, 2 * H),
        }
        t = {}
        for i, (name, shape) in enumerate(shapes.items()):
            v = values(shape, special=name in SPECIALS[special], seed=seed + i).to(dtype)
            t[name] = as_layout(v, layout[i])
        mask = as_layout(make_mask(mask_kind, B, N, seed + 9), layout[7])
        leaves = {n: t[n].detach().requires_grad_() for n in ("x", "w1", "bias1", "w2", "bias2")}
        v64 = {n: v.detach().double() for n, v in t.items()}
        m64 = mask.double()
        b1_64 = v64["bias1"].expand(B, H1) if shared_bias[0] else v64["bias1"]
        b2_64 = v64["bias2"].expand(B, H) if shared_bias[1] else v64["bias2"]
        x64, w1_64, w2_64 = v64["x"], v64["w1"], v64["w2"]
        ref_y, ref_pooled = epic_local_reference(x64, m64, w1_64, b1_64, w2_64, b2_64, scale, slope)
        ref_grads = list(
            epic_local_backward_reference(
                v64["grad_y"], v64["grad_pooled"], x64, m64, w1_64, b1_64, w2_64, ref_y, scale, slope
            )
        )
        for k, shared in ((2, shared_bias[0]), (4, shared_bias[1])):
            if shared:  # a shared [H] bias gets the sum over the sets
                ref_grads[k] = ref_grads[k].sum(0)

        with ops.use_backend(backend):
            if path == "public":
                args = (leaves["x"], mask, leaves["w1"], leaves["bias1"], leaves["w2"], leaves["bias2"])
                y, pooled = ops.epic_local(*args, scale, slope)
            else:
                b1 = leaves["bias1"].expand(B, H1) if shared_bias[0] else leaves["bias1"]
                b2 = leaves["bias2"].expand(B, H) if shared_bias[1] else leaves["bias2"]
                m = mask.to(dtype)
                y, pooled = torch.ops.hepgen.epic_local(
                    leaves["x"], m, leaves["w1"], b1, leaves["w2"], b2, scale, slope
                )
            grads = torch.autograd.grad(
                (y, pooled), list(leaves.values()), (t["grad_y"], t["grad_pooled"]), allow_unused=True
            )
        grads = [torch.zeros_like(v) if g is None else g for v, g in zip(leaves.values(), grads)]

        z1a, z2a, (ya, pa), grad_scales = _magnitudes(
            x64, m64, w1_64, b1_64, w2_64, b2_64, v64["grad_y"], v64["grad_pooled"], scale
        )
        forward_terms = H + H1 + N + 10 + scalar_terms(backend, dtype)
        name = f"{backend} {path} epic_local"
        assert_agrees(y, ref_y, ya, forward_terms, f"{name} y")
        assert_agrees(pooled, ref_pooled, pa, forward_terms, f"{name} pooled")
        kink = _near_a_kink(x64, m64, w1_64, b1_64, w2_64, b2_64, slope, z1a, z2a, forward_terms * EPS[dtype])
        grad_terms = H + H1 + B * N + N + 16 + scalar_terms(backend, dtype)
        for i, g_name in enumerate(leaves):
            g_scale = grad_scales[i]
            if {2: shared_bias[0], 4: shared_bias[1]}.get(i, False):
                g_scale = g_scale.sum(0)
            if kink:  # only where the NaN/inf patterns are: see the module docstring
                g_scale = torch.full_like(g_scale, float("inf"))
            assert_agrees(grads[i], ref_grads[i], g_scale, grad_terms, f"{name} grad {g_name}")
        if (mask == 0).any():  # padding is never read: its y and its gradient are exactly 0
            assert (y[mask == 0] == 0).all() and (grads[0][mask == 0] == 0).all()

        if dtype == torch.float64 and special == "none" and mask_kind != "nonfinite" and not kink:
            # The reference's written-out backward against autograd through its forward.
            ins = [v.detach().clone().requires_grad_() for v in (x64, w1_64, b1_64, w2_64, b2_64)]
            ay, ap = epic_local_reference(ins[0], m64, ins[1], ins[2], ins[3], ins[4], scale, slope)
            auto = torch.autograd.grad((ay, ap), ins, (v64["grad_y"], v64["grad_pooled"]), allow_unused=True)
            full = epic_local_backward_reference(
                v64["grad_y"], v64["grad_pooled"], x64, m64, w1_64, b1_64, w2_64, ref_y, scale, slope
            )
            for a, r, g_scale, g_name in zip(auto, full, grad_scales, leaves):
                a = torch.zeros_like(r) if a is None else a
                assert_agrees(r, a, g_scale, grad_terms, f"reference backward vs autograd, grad {g_name}")


# ---- invalid inputs -------------------------------------------------------------------------


def _ok():
    return dict(
        x=torch.randn(2, 3, 4),
        mask=torch.ones(2, 3),
        w1=torch.randn(5, 4),
        bias1=torch.randn(2, 5),
        w2=torch.randn(4, 5),
        bias2=torch.randn(2, 4),
        sum_scale=0.01,
        negative_slope=0.01,
    )


FAULTS = {
    # name: (changes, argument named, entry points: "p" public, "c" custom op, "b" custom backward)
    "x-rank": (dict(x=torch.randn(2, 3)), "x", "pcb"),
    "x-int": (dict(x=torch.ones(2, 3, 4, dtype=torch.int64)), "x", "pcb"),
    "x-complex": (dict(x=torch.ones(2, 3, 4, dtype=torch.complex64)), "x", "pcb"),
    "x-list": (dict(x=[[1.0]]), "x", "p"),
    "mask-shape": (dict(mask=torch.ones(1, 1)), "mask", "pcb"),
    "mask-rank": (dict(mask=torch.ones(2, 3, 1)), "mask", "pcb"),
    "mask-int": (dict(mask=torch.ones(2, 3, dtype=torch.int32)), "mask", "pcb"),
    "mask-bool": (dict(mask=torch.ones(2, 3, dtype=torch.bool)), "mask", "cb"),
    "mask-dtype": (dict(mask=torch.ones(2, 3, dtype=torch.float64)), "mask", "cb"),
    "mask-device": (dict(mask=torch.ones(2, 3, device="meta")), "mask", "pcb"),
    "w1-rank": (dict(w1=torch.randn(5)), "w1", "pcb"),
    "w1-features": (dict(w1=torch.randn(5, 3)), "w1", "pcb"),
    "w1-dtype": (dict(w1=torch.randn(5, 4, dtype=torch.float64)), "w1", "pcb"),
    "w1-list": (dict(w1=[[1.0]]), "w1", "p"),
    "w2-shape": (dict(w2=torch.randn(4, 6)), "w2", "pcb"),
    "w2-dtype": (dict(w2=torch.randn(4, 5).half()), "w2", "pcb"),
    "w2-device": (dict(w2=torch.randn(4, 5, device="meta")), "w2", "pcb"),
    "bias1-shape": (dict(bias1=torch.randn(3, 5)), "bias1", "pcb"),
    "bias1-shared-length": (dict(bias1=torch.randn(6)), "bias1", "pcb"),
    "bias1-dtype": (dict(bias1=torch.randn(2, 5, dtype=torch.float64)), "bias1", "pcb"),
    "bias2-shape": (dict(bias2=torch.randn(2, 5)), "bias2", "pc"),
    "bias2-int": (dict(bias2=torch.ones(2, 4, dtype=torch.int64)), "bias2", "pc"),
    "sum_scale-nan": (dict(sum_scale=float("nan")), "sum_scale", "pcb"),
    "sum_scale-str": (dict(sum_scale="0.1"), "sum_scale", "p"),
    "slope-zero": (dict(negative_slope=0.0), "negative_slope", "pcb"),
    "slope-negative": (dict(negative_slope=-0.5), "negative_slope", "pcb"),
    "slope-inf": (dict(negative_slope=float("inf")), "negative_slope", "pcb"),
}
BACKWARD_ONLY = {
    "grad_y-shape": (dict(grad_y=torch.randn(2, 3, 5)), "grad_y"),
    "grad_y-dtype": (dict(grad_y=torch.randn(2, 3, 4, dtype=torch.float64)), "grad_y"),
    "grad_pooled-shape": (dict(grad_pooled=torch.randn(2, 4)), "grad_pooled"),
    "grad_pooled-int": (dict(grad_pooled=torch.ones(2, 8, dtype=torch.int64)), "grad_pooled"),
    "y-shape": (dict(y=torch.randn(1, 3, 4)), "y"),
    "y-device": (dict(y=torch.randn(2, 3, 4, device="meta")), "y"),
}


def _backward_args(a: dict) -> tuple:
    ok = dict(grad_y=torch.randn(2, 3, 4), grad_pooled=torch.randn(2, 8), y=torch.randn(2, 3, 4))
    ok.update({k: a[k] for k in ok if k in a})
    return (
        ok["grad_y"],
        ok["grad_pooled"],
        a["x"],
        a["mask"],
        a["w1"],
        a["bias1"],
        a["w2"],
        ok["y"],
        a["sum_scale"],
        a["negative_slope"],
    )


@given(
    fault=st.sampled_from(sorted(FAULTS) + sorted(BACKWARD_ONLY)),
    path=st.sampled_from(["public", "custom_op", "custom_backward"]),
    backend=st.sampled_from(BACKENDS),
)
def test_invalid_inputs_are_refused_naming_the_argument(fuzz_tally, fault, path, backend):
    if fault in BACKWARD_ONLY:
        (change, name), path = BACKWARD_ONLY[fault], "custom_backward"
    else:
        change, name, entries = FAULTS[fault]
        entry = {"public": "p", "custom_op": "c", "custom_backward": "b"}[path]
        if entry not in entries:
            change, name, _ = FAULTS["w1-features"]  # a fault this entry point cannot be handed: another one
    args = {**_ok(), **change}
    with ops.use_backend(backend), fuzz_tally.refusal(OP, name):
        if path == "public":
            ops.epic_local(**args)
        elif path == "custom_op":
            torch.ops.hepgen.epic_local(*args.values())
        else:
            torch.ops.hepgen.epic_local_backward(*_backward_args(args))
