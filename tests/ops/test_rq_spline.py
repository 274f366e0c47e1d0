"""hepgen.ops.rq_spline beyond the conformance suite (tests/ops/conformance): the hand-derived
backward against autograd, round trips, nflows agreement, non-finite inputs, nflows' constant."""

import math
import zlib

import pytest
import torch
from oracle import assert_close_to_reference, backend_params, devices

import hepgen.ops as ops
from hepgen.ops.rq_spline import rq_spline_backward_reference, rq_spline_reference

ALL_PARAMS = [p for dev in devices() for p in backend_params(dev)]
CPU = torch.device("cpu")

# (batch shape, K): odd sizes, one bin, empty batches, many bins.
SHAPES = [
    ((1,), 1),
    ((7,), 1),
    ((0,), 8),
    ((2, 0, 3), 4),
    ((33, 5), 8),
    ((3, 4, 5), 3),
    ((257,), 16),
    ((19, 18), 8),
    ((41,), 2),
    ((6, 7), 13),
]


def _params(batch, K, seed, scale=1.0, dtype=torch.float64, bound=1.0):
    """Inputs spread over [-1.5B, 1.5B] with both bounds hit exactly, and parameter logits."""
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, generator=g, dtype=dtype) * 3 - 1.5) * bound
    flat = x.view(-1)
    if flat.numel() >= 4:
        flat[:4] = torch.tensor([-bound, bound, -bound * (1 - 1e-7), bound * 1.5], dtype=dtype)
    uw = torch.randn(*batch, K, generator=g, dtype=dtype) * scale
    uh = torch.randn(*batch, K, generator=g, dtype=dtype) * scale
    ud = torch.randn(*batch, K - 1, generator=g, dtype=dtype) * scale
    return x, uw, uh, ud


def _run(backend, *args, **kwargs):
    with ops.use_backend(backend):
        return ops.rq_spline(*args, **kwargs)


def _to(device, *tensors):
    return [t.to(device) for t in tensors]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[0])) + f"-K{s[1]}")
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_hand_derived_backward_equals_autograd_of_the_reference(shape, inverse):
    batch, K = shape
    args = _params(batch, K, seed=zlib.crc32(repr(shape).encode()), scale=1.5, bound=2.0)
    kw = dict(inverse=inverse, tail_bound=2.0, min_bin_width=1e-3, min_bin_height=2e-3, min_derivative=1e-2)
    g = torch.Generator().manual_seed(1)
    gy, gl = torch.randn(batch, generator=g, dtype=torch.float64), torch.randn(batch, generator=g, dtype=torch.float64)
    leaves = [a.clone().requires_grad_() for a in args]
    y, ld = rq_spline_reference(*leaves, **kw)
    expected = torch.autograd.grad((y, ld), leaves, (gy, gl), allow_unused=True, materialize_grads=True)
    derived = rq_spline_backward_reference(gy, gl, *args, **kw)
    for name, d, e in zip(("inputs", "widths", "heights", "derivatives"), derived, expected):
        torch.testing.assert_close(d, e, rtol=1e-9, atol=1e-9, msg=lambda m: f"grad {name}: {m}")


def _assert_within(what, err, bound, x):
    bad = err > bound
    if bad.any():
        i = int((err - bound).argmax())
        raise AssertionError(
            f"{what}: {int(bad.sum())} of {err.numel()} elements over the bound; worst at "
            f"x = {x.view(-1)[i].item():.9g}: {err.view(-1)[i].item():.3e} > {bound.view(-1)[i].item():.3e}"
        )


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_inverse_undoes_forward_to_float32_precision(device, backend):
    x, uw, uh, ud = _to(device, *_params((4000,), 8, seed=3, dtype=torch.float32))
    y, ld = _run(backend, x, uw, uh, ud)
    x2, ld_inv = _run(backend, y, uw, uh, ud, inverse=True)
    y2, _ = _run(backend, x2, uw, uh, ud)
    # y -> x is ill-conditioned where the spline is flat (dx = dy / J): scale by the slope J.
    flat = 1 / ld.exp().clamp(max=1)
    ref_y, ref_ld = rq_spline_reference(x, uw, uh, ud)
    _assert_within("x2 - x", (x2 - x).abs(), 4e-6 * flat, x)
    # log|J| of the inverse is also sensitive to the curvature where the root lands; where the
    # float32 reference itself strays further (seen on an H100: 2.3e-4 at one point of 4000),
    # allow a small multiple of its own error there, as the other oracle tests do.
    _, ref_ld_inv = rq_spline_reference(ref_y, uw, uh, ud, inverse=True)
    ref_err = (ref_ld + ref_ld_inv).abs()
    _assert_within("ld + ld_inv", (ld + ld_inv).abs(), 1e-5 + 2e-4 * flat + 4 * ref_err, x)
    # x -> y is well conditioned: a few ulps, or a small multiple of the float32 reference's own
    # round-trip error (on the GPU, Triton's exp/log differ from PyTorch's by an ulp or two).
    ref_y2, _ = rq_spline_reference(rq_spline_reference(ref_y, uw, uh, ud, inverse=True)[0], uw, uh, ud)
    _assert_within("y2 - y", (y2 - y).abs(), 2e-6 + 4 * (ref_y2 - ref_y).abs(), x)
    outside = x.abs() > 1
    assert torch.equal(y[outside], x[outside]) and torch.equal(ld[outside], torch.zeros_like(ld[outside]))


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_agrees_with_nflows(backend, dtype, inverse):
    rq = pytest.importorskip("nflows.transforms.splines.rational_quadratic")
    if ops.why_unavailable(backend, CPU, dtype):
        pytest.skip(ops.why_unavailable(backend, CPU, dtype))
    args = _params((50, 18), 8, seed=17, dtype=dtype, scale=1.5, bound=3.0)
    kw = dict(inverse=inverse, tail_bound=3.0, min_bin_width=1e-3, min_bin_height=1e-3, min_derivative=1e-3)
    nflows_spline = rq.unconstrained_rational_quadratic_spline
    w = torch.randn(50, 18, dtype=torch.float64, generator=torch.Generator().manual_seed(2))

    def values_and_grads(fn, dtype_):
        leaves = [a.to(dtype_).requires_grad_() for a in args]
        with ops.use_backend(backend):
            y, ld = fn(*leaves, **kw)
            return [y, ld, *torch.autograd.grad((y * w.to(dtype_)).sum() + ld.sum(), leaves)]

    ours = values_and_grads(ops.rq_spline, dtype)
    theirs = values_and_grads(lambda *a, **k: nflows_spline(*a, tails="linear", **k), dtype)
    if dtype == torch.float64:  # the same function: equal to rounding
        for o, t in zip(ours, theirs):
            torch.testing.assert_close(o, t, rtol=1e-9, atol=1e-9)
    else:  # in float32, at least about as accurate as nflows in float32 (against nflows in float64)
        exact = values_and_grads(lambda *a, **k: nflows_spline(*a, tails="linear", **k), torch.float64)
        for o, t, e in zip(ours, theirs, exact):
            assert_close_to_reference(
                o, t, e, factor=8.0, floor=50 * torch.finfo(dtype).eps * max(e.abs().max().item(), 1)
            )


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_non_finite_inputs_pass_through_and_never_crash(device, backend, inverse):
    K = 8
    specials = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.5, -1.0, 1.0, 2.0, 0.0], device=device)
    _, uw, uh, ud = _to(device, *[t.float() for t in _params((8,), K, seed=1)])
    x = specials.clone().requires_grad_()
    y, ld = _run(backend, x, uw, uh, ud, inverse=inverse)
    assert torch.isnan(y[0]) and y[1] == float("inf") and y[2] == -float("inf") and y[6] == 2.0
    assert torch.equal(ld[:3], torch.zeros(3, device=device)) and ld[6] == 0
    assert torch.isfinite(y[3:]).all() and torch.isfinite(ld[3:]).all()
    with ops.use_backend(backend):
        (gx,) = torch.autograd.grad(y.sum(), x)
    assert torch.equal(gx[[0, 1, 2, 6]], torch.ones(4, device=device))  # identity tails

    # Non-finite and huge parameters: NaN or finite outputs, never a crash or an out-of-row read.
    bad = [uw.clone(), uh.clone(), ud.clone()]
    bad[0][3, 2] = float("nan")
    bad[1][4] = float("inf")
    bad[2][5, 0] = -float("inf")
    bad[0][7] = 1e30
    bad[1][7] = -1e30
    y, ld = _run(backend, specials, *bad, inverse=inverse)
    assert torch.isnan(y[3]) and torch.isnan(y[4])
    assert torch.isfinite(y[7]) and y[7].abs() <= 1.0


def test_nflows_constant_gives_unit_slope_at_the_ends():
    from hepgen.ops.rq_spline import boundary_derivative_logit

    for md in (0.0, 1e-3, 0.5):
        assert math.isclose(md + math.log1p(math.exp(boundary_derivative_logit(md))), 1.0, rel_tol=1e-12)


# ---- nflows' other derivative counts (the reference's compatibility path) -------------------


def _nflows_params(batch, K, D, seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(batch, generator=g, dtype=torch.float64) * 3 - 1.5  # a third in the tails
    x.view(-1)[:2] = torch.tensor([-1.0, 1.0], dtype=torch.float64)  # both end knots exactly
    return (x, *(torch.randn(*batch, n, generator=g, dtype=torch.float64) * 1.5 for n in (K, K, D)))


@pytest.mark.parametrize("extra", [1, 0, 2, 4], ids=lambda e: f"K+{e}" if e != 1 else "K+1")
@pytest.mark.parametrize("K", [1, 3, 10])
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_nflows_derivative_counts_agree_with_nflows_in_float64(K, extra, inverse):
    rq = pytest.importorskip("nflows.transforms.splines.rational_quadratic")
    args = _nflows_params((40, 3), K, K + extra, seed=K * 10 + extra)
    results = []
    for spline in (ops.rq_spline, rq.unconstrained_rational_quadratic_spline):
        leaves = [a.clone().requires_grad_() for a in args]
        y, ld = spline(*leaves, inverse=inverse, tails="linear", min_derivative=1e-2)
        (0.7 * y + 1.3 * ld).sum().backward()
        results.append([y.detach(), ld.detach()] + [t.grad for t in leaves])
    for name, ours, theirs in zip(
        ("outputs", "logabsdet", "d inputs", "d widths", "d heights", "d derivatives"), *results
    ):
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-11, msg=lambda m: f"{name}: {m}")
    # Only the first K derivatives are read: the rest get no gradient.
    assert torch.count_nonzero(results[0][5][..., K:]) == 0


def test_nflows_derivative_counts_give_the_right_end_a_non_unit_slope():
    # With K + 1 derivatives the right end knot's slope is min_d + softplus(d_{K-1}) (nflows'
    # treatment), not the tail's 1: log|dy/dx| jumps at x = B.
    K, md = 4, 1e-3
    _, uw, uh, ud = _nflows_params((2,), K, K + 1, seed=3)
    _, ld_edge = ops.rq_spline(torch.tensor([1.0, -1.0], dtype=torch.float64), uw, uh, ud, min_derivative=md)
    torch.testing.assert_close(ld_edge[0], torch.log(md + torch.nn.functional.softplus(ud[0, K - 1])))
    torch.testing.assert_close(ld_edge[1], torch.zeros((), dtype=torch.float64), atol=1e-12, rtol=0)  # left end: 1
    _, ld_tail = ops.rq_spline(torch.tensor([1.0 + 1e-9], dtype=torch.float64), uw[:1], uh[:1], ud[:1])
    assert ld_tail.item() == 0.0 and abs(ld_edge[0].item()) > 1e-3


@pytest.mark.parametrize("backend", ["cpu", "triton", "cuda"])
def test_forced_compiled_backend_refuses_nflows_derivative_counts(backend):
    x, uw, uh, ud = _nflows_params((5,), 4, 5, seed=0)
    refusal = f"backend '{backend}' was requested but cannot run 5 unnormalized_derivatives"
    with ops.use_backend({"rq_spline": backend}), pytest.raises(RuntimeError, match=refusal):
        ops.rq_spline(x, uw, uh, ud)
    unforced = ops.rq_spline(x, uw, uh, ud)
    with ops.use_backend({"rq_spline": "reference"}):  # a forced reference runs them too
        torch.testing.assert_close(ops.rq_spline(x, uw, uh, ud), unforced, rtol=0, atol=0)


def test_fewer_than_k_minus_1_derivatives_are_refused():
    # nflows fails (index out of bounds) once an input falls in a bin whose knot has no
    # derivative; we refuse the shape whatever the inputs.
    x, uw, uh, ud = _nflows_params((5,), 4, 2, seed=0)
    with pytest.raises(ValueError, match=r"unnormalized_derivatives must have K - 1 = 3 .* at least K = 4"):
        ops.rq_spline(x, uw, uh, ud)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_huge_derivatives_give_the_reference_logabsdet_not_minus_inf(device, backend, dtype, inverse):
    # Regression (found by tests/ops/fuzz): log(s^2 m / den^2) in one log overflowed den^2 for
    # derivative logits of 1e300 (1e30 in float32) and gave -inf where the spec has ~ -690.
    huge = 1e300 if dtype == torch.float64 else 1e30
    x = torch.tensor([0.1, -0.3, 0.45, -0.999], dtype=dtype, device=device)
    uw = torch.randn(4, 5, generator=torch.Generator().manual_seed(2), dtype=dtype).to(device)
    uh, ud = uw.flip(-1), torch.full((4, 4), huge, dtype=dtype, device=device)
    expected = rq_spline_reference(x, uw, uh, ud, inverse)
    got = _run(backend, x, uw, uh, ud, inverse=inverse)
    assert torch.isfinite(expected[1]).all()
    torch.testing.assert_close(got[1], expected[1], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_reference_computes_half_types_in_float32(dtype, inverse):
    # Regression (found by tests/ops/fuzz): computed in bfloat16, the inverse's quadratic lost
    # every digit near a knot and gave NaN; the kernels compute half types in float32.
    x, uw, uh, ud = (t.to(dtype) for t in _params((6, 6, 6), 6, seed=0, bound=0.5))
    got = rq_spline_reference(x, uw, uh, ud, inverse, 0.5, 1e-2, 1e-2, 1e-3)
    expected = rq_spline_reference(x.float(), uw.float(), uh.float(), ud.float(), inverse, 0.5, 1e-2, 1e-2, 1e-3)
    for a, b in zip(got, expected):
        assert a.dtype == dtype
        torch.testing.assert_close(a, b.to(dtype), rtol=0, atol=0)
