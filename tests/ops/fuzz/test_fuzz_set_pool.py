"""Property-based fuzzing of set_pool: every backend here against the float64 reference.

Valid inputs: random shapes (size-0 batch, sets and features included), every layout of x,
mask and the output gradient, every dtype a backend runs, NaN/±inf/huge values, bool, weighted,
signed and non-finite masks; values and gradients, through the public function and the
registered custom op (torch.ops.hepgen.set_pool with its autograd). Invalid inputs: each entry
point (public, custom op, custom backward op) refuses with a TypeError/ValueError naming the
argument. The mask rule tested here is the one hepgen/ops/set_pool.py documents: weights are
used as given (0 excludes a particle; signed weights are allowed; NaN/inf propagate).
"""

from __future__ import annotations

import torch
from hypothesis import given
from hypothesis import strategies as st

import hepgen.ops as ops
from fuzz.agree import assert_agrees, fuzz_backends, scalar_terms
from fuzz.layouts import as_layout, factors, layouts, values
from hepgen.ops.set_pool import set_pool_backward_reference, set_pool_reference

CPU = torch.device("cpu")
OP = "set_pool"
DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)
BACKENDS = fuzz_backends()
RUNNABLE = [(b, dt) for b in BACKENDS for dt in DTYPES if not ops.why_unavailable(b, CPU, dt, OP)]
# The values a mask of each kind draws from (dyadic, so every backend's count is exact).
MASKS = {
    "bool": None,
    "weights": [0.0, 0.5, 1.0, 2.0],
    "signed": [0.0, -1.0, 0.5, 1.0, 2.0],
    "nonfinite": [0.0, 1.0, float("nan"), float("inf"), -1.0],
}


def make_mask(kind: str, B: int, N: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    if kind == "bool":
        return torch.rand(B, N, generator=g) < 0.6
    pool = torch.tensor(MASKS[kind], dtype=torch.float64)
    return pool[torch.randint(0, len(pool), (B, N), generator=g)]


def pool_scales(x64, m64, s):
    """Magnitudes of set_pool's outputs computed on absolute values (agree.py's bound)."""
    real = (m64 != 0).unsqueeze(-1)
    absum = torch.where(real, m64.abs().unsqueeze(-1) * x64.abs(), 0.0).sum(1)
    count = m64.sum(1, keepdim=True)
    mean = torch.where(count != 0, absum / count.abs(), 0.0)
    return torch.cat([mean, abs(s) * absum], dim=-1)


def pool_grad_scale(g64, m64, s):
    D = g64.shape[1] // 2
    count = m64.sum(1, keepdim=True)
    inv = torch.where(count != 0, 1 / count.abs(), 0.0)
    coef = g64[:, :D].abs() * inv + g64[:, D:].abs() * abs(s)
    return torch.where((m64 != 0).unsqueeze(-1), m64.abs().unsqueeze(-1) * coef.unsqueeze(1), 0.0)


@given(
    case=st.sampled_from(RUNNABLE),
    path=st.sampled_from(["public", "custom_op"]),
    B=st.integers(0, 5),
    N=st.integers(0, 17),
    D=st.integers(0, 9),
    x_layout=layouts(),
    mask_layout=layouts(),
    grad_layout=layouts(),
    mask_kind=st.sampled_from(sorted(MASKS)),
    special=st.booleans(),
    scale=factors(10.0),
    seed=st.integers(0, 2**31 - 1),
)
def test_values_and_gradients_match_reference(
    fuzz_tally, case, path, B, N, D, x_layout, mask_layout, grad_layout, mask_kind, special, scale, seed
):
    backend, dtype = case
    with fuzz_tally.example(OP):
        # The values as the dtype holds them, in the drawn layouts (an expanded view repeats its
        # first row), and their exact float64 copies for the reference.
        leaf = as_layout(values((B, N, D), special=special, seed=seed).to(dtype), x_layout).detach().requires_grad_()
        g = as_layout(values((B, 2 * D), special=special, seed=seed + 1).to(dtype), grad_layout)
        mask = as_layout(make_mask(mask_kind, B, N, seed + 2), mask_layout)
        x64, g64, m64 = leaf.detach().double(), g.double(), mask.double()
        ref = set_pool_reference(x64, m64, scale)
        ref_grad = set_pool_backward_reference(g64, m64, scale)
        with ops.use_backend(backend):
            if path == "public":
                out = ops.set_pool(leaf, mask, scale)
            else:
                out = torch.ops.hepgen.set_pool(leaf, mask.to(dtype), scale)
            (grad,) = torch.autograd.grad(out, leaf, g)
        assert out.dtype == dtype and grad.dtype == dtype
        extra = scalar_terms(backend, dtype)
        assert_agrees(out, ref, pool_scales(x64, m64, scale), N + 3 + extra, f"{backend} {path} set_pool")
        assert_agrees(grad, ref_grad, pool_grad_scale(g64, m64, scale), 4 + extra, f"{backend} {path} set_pool grad x")
        # Padding gets exactly 0 whatever the output gradient holds (selects, not products with 0).
        assert (grad[mask == 0] == 0).all()


# ---- invalid inputs -------------------------------------------------------------------------


def _bad_forward(fault: str, dtype_pick: int, public: bool):
    """(x, mask, sum_scale, argument named) for one kind of fault."""
    x, mask, s = torch.randn(4, 6, 3), torch.ones(4, 6), 0.01
    bad_dtype = (torch.int64, torch.int32, torch.bool, torch.complex64)[dtype_pick % 4]
    if fault == "x-rank":
        return torch.randn(*[4, 6, 3, 2][: 2 + 2 * (dtype_pick % 2)]), mask, s, "x"
    if fault == "x-dtype":
        return x.to(bad_dtype), mask, s, "x"
    if fault == "mask-rank":
        return x, torch.ones(4, 6, 1) if dtype_pick % 2 else torch.ones(24), s, "mask"
    if fault == "mask-shape":  # the case, [1, 1], among others
        shape = [(1, 1), (4, 5), (3, 6), (4, 7), (0, 6)][dtype_pick % 5]
        return x, torch.ones(shape), s, "mask"
    if fault == "mask-dtype":
        # The public function converts a bool or floating mask; the registered op takes x's dtype only.
        choices = [torch.int64, torch.int32, torch.complex64] + ([] if public else [torch.bool, torch.float64])
        return x, mask.to(choices[dtype_pick % len(choices)]), s, "mask"
    if fault == "mask-device":
        return x, torch.ones(4, 6, device="meta"), s, "mask"
    if fault == "scale":
        return x, mask, [float("nan"), float("inf"), -float("inf")][dtype_pick % 3], "sum_scale"
    raise AssertionError(fault)


FORWARD_FAULTS = ["x-rank", "x-dtype", "mask-rank", "mask-shape", "mask-dtype", "mask-device", "scale"]


@given(
    fault=st.sampled_from(FORWARD_FAULTS),
    pick=st.integers(0, 29),
    path=st.sampled_from(["public", "custom_op"]),
    backend=st.sampled_from(BACKENDS),
)
def test_invalid_forward_inputs_are_refused_naming_the_argument(fuzz_tally, fault, pick, path, backend):
    x, mask, s, name = _bad_forward(fault, pick, public=path == "public")
    call = ops.set_pool if path == "public" else torch.ops.hepgen.set_pool
    with ops.use_backend(backend), fuzz_tally.refusal(OP, name):
        call(x, mask, s)


BACKWARD_FAULTS = {
    "grad_out-rank": (lambda: (torch.randn(4, 6, 1), torch.ones(4, 5), 0.01), "grad_out"),
    "grad_out-odd": (lambda: (torch.randn(4, 7), torch.ones(4, 5), 0.01), "grad_out"),
    "grad_out-int": (lambda: (torch.ones(4, 6, dtype=torch.int64), torch.ones(4, 5), 0.01), "grad_out"),
    "grad_out-complex": (lambda: (torch.ones(4, 6, dtype=torch.complex64), torch.ones(4, 5), 0.01), "grad_out"),
    "mask-batch": (lambda: (torch.randn(4, 6), torch.ones(1, 1), 0.01), "mask"),
    "mask-rank": (lambda: (torch.randn(4, 6), torch.ones(4), 0.01), "mask"),
    "mask-dtype": (lambda: (torch.randn(4, 6), torch.ones(4, 5, dtype=torch.float64), 0.01), "mask"),
    "mask-bool": (lambda: (torch.randn(4, 6), torch.ones(4, 5, dtype=torch.bool), 0.01), "mask"),
    "mask-device": (lambda: (torch.randn(4, 6), torch.ones(4, 5, device="meta"), 0.01), "mask"),
    "scale": (lambda: (torch.randn(4, 6), torch.ones(4, 5), float("nan")), "sum_scale"),
}


@given(
    fault=st.sampled_from(sorted(BACKWARD_FAULTS)),
    backend=st.sampled_from(BACKENDS),
)
def test_invalid_backward_inputs_are_refused_naming_the_argument(fuzz_tally, fault, backend):
    make, name = BACKWARD_FAULTS[fault]
    with ops.use_backend(backend), fuzz_tally.refusal(OP, name):
        torch.ops.hepgen.set_pool_backward(*make())
