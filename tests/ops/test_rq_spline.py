"""hepgen.ops.rq_spline: every backend against the float64 reference (forward, inverse and
gradients), round trips, nflows agreement, broadcasting, strides, non-finite inputs, errors."""

import math
import zlib

import pytest
import torch

import hepgen.ops as ops
from hepgen.ops.rq_spline import RQ_SPLINE, RQ_SPLINE_BACKWARD, rq_spline_backward_reference, rq_spline_reference
from oracle import assert_close_to_reference, backend_params, devices

ALL_PARAMS = [p for dev in devices() for p in backend_params(dev)]
CPU = torch.device("cpu")

# (batch shape, K): odd sizes, one bin, empty batches, many bins.
SHAPES = [((1,), 1), ((7,), 1), ((0,), 8), ((2, 0, 3), 4), ((33, 5), 8), ((3, 4, 5), 3), ((257,), 16),
          ((19, 18), 8), ((41,), 2), ((6, 7), 13)]


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


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[0])) + f"-K{s[1]}")
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_outputs_and_gradients_match_float64_reference(device, backend, shape, inverse):
    batch, K = shape
    seed = zlib.crc32(repr((backend, shape, inverse)).encode())  # fresh inputs per case, reproducible
    args64 = _to(device, *_params(batch, K, seed, bound=2.5))
    args32 = [a.float() for a in args64]
    kw = dict(inverse=inverse, tail_bound=2.5, min_bin_width=1e-3, min_bin_height=2e-3, min_derivative=1e-2)
    ref64 = rq_spline_reference(*args64, **kw)
    ref32 = rq_spline_reference(*args32, **kw)
    leaves = [a.clone().requires_grad_() for a in args32]
    out = _run(backend, *leaves, **kw)
    # The spline is ill-conditioned in its knots: one rounding (an ulp of B) in a knot moves
    # the position in the bin by ulp(B) / width, so two float32 evaluations whose knots round
    # differently (ours, and the float32 reference) carry independent errors of that size.
    # Hence a larger multiple and a floor of 100 float32 ulps of the largest value.
    def close(o, r32, r64, what):
        floor = 100 * torch.finfo(torch.float32).eps * max(r64.abs().max().item(), 1.0) if r64.numel() else 0.0
        assert_close_to_reference(o, r32, r64, factor=8.0, floor=floor, what=f"{what} (seed {seed})")

    for name, o, r32, r64 in zip(("outputs", "logabsdet"), out, ref32, ref64):
        close(o, r32, r64, name)

    # Gradients of a generic scalar function of both outputs, against autograd of the reference.
    g = torch.Generator().manual_seed(seed)
    wy, wl = (torch.randn(batch, generator=g, dtype=torch.float64).to(device) for _ in range(2))
    if out[0].numel() == 0:
        return
    with ops.use_backend(backend):  # the backward op runs on the backend under test too
        grads = torch.autograd.grad((out[0] * wy.float()).sum() + (out[1] * wl.float()).sum(), leaves)

    def ref_grads(args):
        ls = [a.clone().requires_grad_() for a in args]
        y, ld = rq_spline_reference(*ls, **kw)
        return torch.autograd.grad((y * wy.to(y.dtype)).sum() + (ld * wl.to(y.dtype)).sum(), ls)

    for name, g, g32, g64 in zip(("inputs", "widths", "heights", "derivatives"), grads, ref_grads(args32),
                                 ref_grads(args64)):
        close(g, g32, g64, f"grad {name}")


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
        raise AssertionError(f"{what}: {int(bad.sum())} of {err.numel()} elements over the bound; worst at "
                             f"x = {x.view(-1)[i].item():.9g}: {err.view(-1)[i].item():.3e} > {bound.view(-1)[i].item():.3e}")


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
            assert_close_to_reference(o, t, e, factor=8.0, floor=50 * torch.finfo(dtype).eps * max(e.abs().max().item(), 1))


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_broadcasting_parameters_and_inputs(device, backend):
    # One spline per feature ([D, K]) for a batch [B, D]; and one input per row shared by D splines.
    B, D, K = 9, 5, 6
    x, _, _, _ = _params((B, D), K, seed=5)
    _, uw, uh, ud = _params((D,), K, seed=6)
    x, uw, uh, ud = _to(device, x.float(), uw.float(), uh.float(), ud.float())
    leaves = [t.clone().requires_grad_() for t in (x, uw, uh, ud)]
    out = _run(backend, *leaves)
    assert out[0].shape == (B, D)
    ref = rq_spline_reference(x, *[t.expand(B, D, t.shape[-1]) for t in (uw, uh, ud)])
    for o, r in zip(out, ref):
        torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-4)
    with ops.use_backend(backend):
        grads = torch.autograd.grad(out[0].sum() + out[1].sum(), leaves)
    ref_leaves = [t.clone().requires_grad_() for t in (x, uw, uh, ud)]
    ref = rq_spline_reference(*ref_leaves)
    ref_grads = torch.autograd.grad(ref[0].sum() + ref[1].sum(), ref_leaves)
    for g, r in zip(grads, ref_grads):
        assert g.shape == r.shape
        torch.testing.assert_close(g, r, rtol=1e-4, atol=1e-4)

    x1 = torch.rand(B, 1, device=device) * 2 - 1
    _, uw, uh, ud = _to(device, *[t.float() for t in _params((B, D), K, seed=7)])
    out = _run(backend, x1, uw, uh, ud)
    assert out[0].shape == (B, D)
    torch.testing.assert_close(out[0], rq_spline_reference(x1.expand(B, D), uw, uh, ud)[0], rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_non_contiguous_inputs_and_conditioner_slices(device, backend):
    N, D, K = 13, 7, 8
    g = torch.Generator().manual_seed(9)
    # A conditioner emits [N, D, 3K - 1]; the three slices are strided views (read in place).
    params = torch.randn(N, D, 3 * K - 1, generator=g).to(device)
    uw, uh, ud = params[..., :K], params[..., K:2 * K], params[..., 2 * K:]
    x = (torch.rand(D, N, generator=g) * 2.4 - 1.2).to(device).t()  # transposed inputs
    assert not x.is_contiguous() and not uw.is_contiguous()
    # The same backend on contiguous copies: strides must not change a single bit.
    out = _run(backend, x, uw, uh, ud)
    dense = _run(backend, x.contiguous(), uw.contiguous(), uh.contiguous(), ud.contiguous())
    for o, r in zip(out, dense):
        assert torch.equal(o, r)
    # Parameters with a non-unit stride along the bins (copied before the kernel), and with
    # permuted leading dimensions.
    uw_nc = torch.randn(N, D, K, 2, generator=g).to(device)[..., 0]
    assert torch.equal(_run(backend, x, uw_nc, uh, ud)[0], _run(backend, x, uw_nc.contiguous(), uh, ud)[0])
    uw_perm = uw.contiguous().transpose(0, 1).contiguous().transpose(0, 1)
    assert torch.equal(_run(backend, x, uw_perm, uh, ud)[0], dense[0])


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


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
@pytest.mark.parametrize("inverse", [False, True], ids=["forward", "inverse"])
def test_gradcheck_float64_cpu(backend, inverse):
    if ops.why_unavailable(backend, CPU, torch.float64):
        pytest.skip(ops.why_unavailable(backend, CPU, torch.float64))
    x, uw, uh, ud = _params((3, 4), 5, seed=23)
    x[0, 0] = 3.0  # one element in the tails
    leaves = [t.requires_grad_() for t in (x, uw, uh, ud)]
    with ops.use_backend(backend):
        assert torch.autograd.gradcheck(
            lambda *a: ops.rq_spline(*a, inverse=inverse, tail_bound=1.2, min_derivative=1e-2), leaves)


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_opcheck(backend):
    if ops.why_unavailable(backend, CPU, torch.float32):
        pytest.skip(ops.why_unavailable(backend, CPU, torch.float32))
    x, uw, uh, ud = _params((11,), 8, seed=4)
    with ops.use_backend(backend):
        for dtype in (torch.float32, torch.float64):
            args = [t.to(dtype) for t in (x, uw, uh, ud)]
            for inverse in (False, True):
                torch.library.opcheck(RQ_SPLINE.custom_op, (*[a.clone().requires_grad_() for a in args], inverse,
                                                      1.0, 1e-3, 1e-3, 1e-3))
            g = torch.randn(11, dtype=dtype)
            torch.library.opcheck(RQ_SPLINE_BACKWARD.custom_op, (g, g, *args, False, 1.0, 1e-3, 1e-3, 1e-3))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_cuda_dtypes(backend, dtype):
    args64 = _to("cuda", *_params((300, 7), 8, seed=13))
    low = [a.to(dtype) for a in args64]
    for inverse in (False, True):
        out = _run(backend, *low, inverse=inverse)
        # The kernels compute half types in float32 (a half-precision reference can divide 0 by
        # 0 where a bin's width rounds to zero): the baseline is float32 arithmetic on the
        # rounded inputs, rounded to the output type.
        ref_lo = [r.to(dtype) for r in rq_spline_reference(*[a.float() if dtype != torch.float64 else a for a in low],
                                                            inverse=inverse)]
        ref64 = rq_spline_reference(*args64, inverse=inverse)
        for o, r_lo, r64 in zip(out, ref_lo, ref64):
            # In float64 the reference is its own baseline (error 0): allow tens of ulps for a
            # different order of the same softmax, log and division chain.
            floor = 100 * torch.finfo(torch.float64).eps * max(r64.abs().max().item(), 1.0) if dtype == torch.float64 else None
            assert_close_to_reference(o, r_lo, r64, floor=floor)


def test_default_choice_per_device_and_dtype():
    table = ops.registered_ops()["rq_spline"]
    expected = "cpu" if not ops.why_unavailable("cpu", CPU, torch.float32) else "reference"
    assert table.choose(CPU, torch.float32) == expected
    assert table.choose(CPU, torch.float16) == "reference"
    x, uw, uh, ud = [t.half() for t in _params((4, 3), 8, seed=2)]
    y, ld = ops.rq_spline(x, uw, uh, ud)
    assert y.dtype == torch.float16 and y.shape == (4, 3) and ld.shape == (4, 3)


def test_nflows_constant_gives_unit_slope_at_the_ends():
    from hepgen.ops.rq_spline import boundary_derivative_logit

    for md in (0.0, 1e-3, 0.5):
        assert math.isclose(md + math.log1p(math.exp(boundary_derivative_logit(md))), 1.0, rel_tol=1e-12)


_X, _W, _H, _D = _params((2, 3), 4, seed=0, dtype=torch.float32)


@pytest.mark.parametrize(
    "args, kwargs, error, match",
    [
        (([1.0], _W, _H, _D), {}, TypeError, "inputs must be a torch.Tensor"),
        ((_X.long(), _W, _H, _D), {}, TypeError, "inputs must have a floating dtype"),
        ((_X, _W.double(), _H, _D), {}, TypeError, "unnormalized_widths must have the dtype of inputs"),
        ((_X, _W, _H[..., :3], _D), {}, ValueError, "unnormalized_heights must have K = 4 bins"),
        ((_X, _W, _H, _D[..., :2]), {}, ValueError, "unnormalized_derivatives must have K - 1 = 3"),
        ((_X, _W[..., :0], _H[..., :0], _D), {}, ValueError, "unnormalized_widths must have at least 1 bin"),
        ((_X, _W, _H, torch.tensor(1.0)), {}, ValueError, "unnormalized_derivatives must have at least 1 dimension"),
        ((_X[:, :2], _W, _H, _D), {}, ValueError, "must broadcast together"),
        ((_X, _W, _H, _D.to("meta")), {}, ValueError, "unnormalized_derivatives is on meta but inputs is on cpu"),
        ((_X, _W, _H, _D), {"tails": None}, ValueError, "tails must be 'linear'"),
        ((_X, _W, _H, _D), {"tail_bound": 0.0}, ValueError, "tail_bound must be positive"),
        ((_X, _W, _H, _D), {"tail_bound": float("inf")}, ValueError, "tail_bound must be finite"),
        ((_X, _W, _H, _D), {"min_bin_width": 0.3}, ValueError, r"min_bin_width must be in \[0, 1/K\]"),
        ((_X, _W, _H, _D), {"min_bin_height": -1e-3}, ValueError, r"min_bin_height must be in \[0, 1/K\]"),
        ((_X, _W, _H, _D), {"min_derivative": 1.0}, ValueError, r"min_derivative must be in \[0, 1\)"),
        ((_X, _W, _H, _D), {"min_derivative": "0.1"}, TypeError, "min_derivative must be a float"),
    ],
)
def test_bad_input_is_rejected_before_any_kernel(args, kwargs, error, match):
    with pytest.raises(error, match=match):
        ops.rq_spline(*args, **kwargs)


def test_strided_column_inputs():
    """A column of a wider tensor (reshape gives a stride-2 view) is read correctly."""
    g = torch.Generator().manual_seed(5)
    wide = torch.randn(7, 2, dtype=torch.float64, generator=g)
    uw, uh = torch.randn(7, 1, 4, dtype=torch.float64, generator=g), torch.randn(7, 1, 4, dtype=torch.float64, generator=g)
    ud = torch.randn(7, 1, 3, dtype=torch.float64, generator=g)
    for inverse in (False, True):
        got = ops.rq_spline(wide[:, 1:], uw, uh, ud, inverse=inverse)
        want = ops.rq_spline(wide[:, 1:].contiguous(), uw, uh, ud, inverse=inverse)
        torch.testing.assert_close(got, want, rtol=0, atol=0)
