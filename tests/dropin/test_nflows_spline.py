"""hepgen.ops.rq_spline as a drop-in for nflows' unconstrained_rational_quadratic_spline.

nflows 0.14's own spline and coupling tests (tests/transforms/splines/rational_quadratic_test.py,
tests/transforms/coupling_test.py) re-stated with ours (the spline tests both with the K - 1
derivatives nflows' transforms pass and with the K + 1 its tests pass), then ours against nflows' function
(float64, to rounding) and inside nflows' PiecewiseRationalQuadraticCouplingTransform with its
spline replaced by ours. Every backend available on this machine is run. nflows' own files run
with ours swapped in through benchmarks/dropin/run_peer_tests.sh (docs/rq_spline.md).
"""

import pytest
import torch

import hepgen.ops as ops
from hepgen.ops import rq_spline

BACKENDS = [
    b for b in ("reference", "cpu", "triton", "cuda") if not ops.why_unavailable(b, torch.device("cpu"), torch.float64)
]


@pytest.fixture(params=BACKENDS)
def backend(request):
    with ops.use_backend({"rq_spline": request.param}):
        yield request.param


def params(shape, num_bins, generator, dtype=torch.float64, scale=1.0, num_derivatives=None):
    g = generator
    return (
        torch.randn(*shape, num_bins, generator=g, dtype=dtype) * scale,
        torch.randn(*shape, num_bins, generator=g, dtype=dtype) * scale,
        torch.randn(*shape, num_bins - 1 if num_derivatives is None else num_derivatives, generator=g, dtype=dtype)
        * scale,
    )


# ---------------------------------------------------------------- nflows' spline tests, re-stated
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_forward_inverse_are_consistent(backend, dtype):
    # UnconstrainedRationalQuadraticSplineTest.test_forward_inverse_are_consistent, with the
    # K - 1 derivatives nflows' transforms pass (every backend runs them); nflows' test itself
    # passes K + 1, re-stated below.
    g = torch.Generator().manual_seed(0)
    w, h, d = params([2, 3, 4], 10, g, dtype)
    inputs = 3 * torch.randn(2, 3, 4, generator=g, dtype=dtype)  # partly outside [-1, 1]
    outputs, logabsdet = rq_spline(inputs, w, h, d, inverse=False)
    back, logabsdet_inv = rq_spline(outputs, w, h, d, inverse=True)
    assert outputs.shape == inputs.shape and logabsdet.shape == inputs.shape
    eps = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(back, inputs, rtol=0, atol=eps)
    torch.testing.assert_close(logabsdet + logabsdet_inv, torch.zeros_like(logabsdet), rtol=0, atol=eps)


def test_forward_inverse_are_consistent_in_tails(backend):
    g = torch.Generator().manual_seed(1)
    w, h, d = params([2, 3, 4], 10, g)
    tail_bound = 1.0
    inputs = torch.sign(torch.randn(2, 3, 4, generator=g, dtype=torch.float64)) * (
        tail_bound + torch.rand(2, 3, 4, generator=g, dtype=torch.float64)
    )  # all outside
    outputs, logabsdet = rq_spline(inputs, w, h, d)
    assert torch.equal(outputs, inputs) and torch.equal(logabsdet, torch.zeros_like(logabsdet))
    back, logabsdet_inv = rq_spline(outputs, w, h, d, inverse=True)
    assert torch.equal(back, inputs) and torch.equal(logabsdet_inv, torch.zeros_like(logabsdet))


# nflows' two tests as they are: K + 1 = 11 derivatives for K = 10 bins, which nflows pads to
# K + 3 and reads the first K + 1 of (the right end knot's slope is then not 1). Only the
# reference runs that count; no backend is forced here (a forced compiled one refuses it,
# tests/ops/test_rq_spline.py).
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64], ids=str)
def test_forward_inverse_are_consistent_with_nflows_k_plus_1_derivatives(dtype):
    g = torch.Generator().manual_seed(2)
    w, h, d = params([2, 3, 4], 10, g, dtype, num_derivatives=11)
    inputs = 3 * torch.randn(2, 3, 4, generator=g, dtype=dtype)  # partly outside [-1, 1]
    outputs, logabsdet = rq_spline(inputs, w, h, d, inverse=False)
    back, logabsdet_inv = rq_spline(outputs, w, h, d, inverse=True)
    assert outputs.shape == inputs.shape and logabsdet.shape == inputs.shape
    inside = inputs.abs() <= 1
    assert inside.any() and not torch.equal(outputs[inside], inputs[inside])  # the spline acted
    eps = 1e-4 if dtype == torch.float32 else 1e-10
    torch.testing.assert_close(back, inputs, rtol=0, atol=eps)
    torch.testing.assert_close(logabsdet + logabsdet_inv, torch.zeros_like(logabsdet), rtol=0, atol=eps)


def test_forward_inverse_are_consistent_in_tails_with_nflows_k_plus_1_derivatives():
    g = torch.Generator().manual_seed(3)
    w, h, d = params([2, 3, 4], 10, g, num_derivatives=11)
    tail_bound = 1.0
    inputs = torch.sign(torch.randn(2, 3, 4, generator=g, dtype=torch.float64)) * (
        tail_bound + torch.rand(2, 3, 4, generator=g, dtype=torch.float64)
    )  # all outside
    outputs, logabsdet = rq_spline(inputs, w, h, d)
    assert torch.equal(outputs, inputs) and torch.equal(logabsdet, torch.zeros_like(logabsdet))
    back, logabsdet_inv = rq_spline(outputs, w, h, d, inverse=True)
    assert torch.equal(back, inputs) and torch.equal(logabsdet_inv, torch.zeros_like(logabsdet))


# ---------------------------------------------------------------- against nflows' function
CALLS = [
    dict(),
    dict(tail_bound=3.0),
    dict(tail_bound=0.5, min_bin_width=1e-2, min_bin_height=5e-2, min_derivative=1e-1),
    dict(min_bin_width=0.09, min_bin_height=0.09, min_derivative=1e-5),
]


@pytest.mark.parametrize("kwargs", CALLS, ids=lambda k: ",".join(f"{a}={v}" for a, v in k.items()) or "defaults")
@pytest.mark.parametrize("inverse", [False, True])
@pytest.mark.parametrize("shape, num_bins", [([7], 3), ([5, 3], 8), ([2, 3, 4], 10), ([1], 1), ([33, 2], 11)])
def test_agrees_with_nflows_in_float64(backend, shape, num_bins, inverse, kwargs):
    rq = pytest.importorskip("nflows.transforms.splines.rational_quadratic")
    if kwargs.get("min_bin_width", 1e-3) * num_bins > 1:
        pytest.skip("minimal bin width too large for the number of bins (nflows raises, so do we)")
    g = torch.Generator().manual_seed(sum(shape) * num_bins)
    w, h, d = params(shape, num_bins, g, scale=2.0)
    bound = kwargs.get("tail_bound", 1.0)
    x = (torch.rand(*shape, generator=g, dtype=torch.float64) * 2.4 - 1.2) * bound  # some in the tails
    grads = []
    for spline in (rq_spline, rq.unconstrained_rational_quadratic_spline):
        leaves = [v.clone().requires_grad_(True) for v in (x, w, h, d)]
        out, lad = spline(*leaves, inverse=inverse, tails="linear", **kwargs)
        (out * 0.7 + lad * 1.3).sum().backward()
        grads.append([out.detach(), lad.detach()] + [v.grad for v in leaves])
    for name, ours, theirs in zip(
        ["outputs", "logabsdet", "d inputs", "d widths", "d heights", "d derivatives"], *grads
    ):
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-11, msg=lambda m: f"{name}: {m}")


def test_refuses_what_nflows_refuses():
    rq = pytest.importorskip("nflows.transforms.splines.rational_quadratic")
    w, h, d = params([4], 5, torch.Generator().manual_seed(0))
    x = torch.zeros(4, dtype=torch.float64)
    for kwargs in (dict(min_bin_width=0.3), dict(min_bin_height=0.3)):
        with pytest.raises(ValueError):
            rq.unconstrained_rational_quadratic_spline(x, w, h, d, **kwargs)
        with pytest.raises(ValueError):
            rq_spline(x, w, h, d, **kwargs)
    with pytest.raises(RuntimeError, match="not implemented"):
        rq.unconstrained_rational_quadratic_spline(x, w, h, d, tails="circular")
    with pytest.raises((ValueError, RuntimeError, NotImplementedError)):
        rq_spline(x, w, h, d, tails="circular")


# ---------------------------------------------------------------- nflows' coupling transform, ours inside
def _coupling(shape, seed):
    coupling = pytest.importorskip("nflows.transforms.coupling")
    from nflows.nn import nets
    from nflows.utils import torchutils

    torch.manual_seed(seed)
    if len(shape) == 1:

        def create_net(i, o):
            return nets.ResidualNet(i, o, hidden_features=30, num_blocks=5)
    else:

        def create_net(i, o):
            return nets.ConvResidualNet(in_channels=i, out_channels=o, hidden_channels=16)

    mask = torchutils.create_mid_split_binary_mask(shape[0])
    return coupling.PiecewiseRationalQuadraticCouplingTransform(
        mask=mask, transform_net_create_fn=create_net, tails="linear", tail_bound=2.0
    ).double()


@pytest.mark.parametrize("shape", [[20], [2, 4, 4]], ids=str)
def test_coupling_transform_with_ours_swapped_in(backend, shape, monkeypatch):
    splines = pytest.importorskip("nflows.transforms.splines")
    from nflows.transforms import base

    transform = _coupling(shape, seed=3)
    inputs = 1.5 * torch.randn(10, *shape, generator=torch.Generator().manual_seed(4), dtype=torch.float64)

    def run():
        transform.zero_grad()
        x = inputs.clone().requires_grad_(True)
        out, lad = transform(x)
        (out.square().sum() + lad.sum()).backward()
        back, lad_inv = transform.inverse(out.detach())
        return [out.detach(), lad.detach(), x.grad, back, lad_inv] + [p.grad.clone() for p in transform.parameters()]

    theirs = run()
    calls = []

    def ours(*args, **kwargs):
        calls.append(kwargs.get("tails"))
        return rq_spline(*args, **kwargs)

    monkeypatch.setattr(splines, "unconstrained_rational_quadratic_spline", ours)
    mine = run()
    assert calls == ["linear", "linear"]  # forward and inverse went through ours
    for i, (a, b) in enumerate(zip(mine, theirs)):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10, msg=lambda m: f"output {i}: {m}")
    # nflows' TransformTest.assert_forward_inverse_are_consistent, with ours inside
    identity = base.CompositeTransform([base.InverseTransform(transform), transform])
    out, lad = identity(inputs)
    torch.testing.assert_close(out, inputs, rtol=0, atol=1e-8)
    torch.testing.assert_close(lad, torch.zeros(10, dtype=torch.float64), rtol=0, atol=1e-8)
