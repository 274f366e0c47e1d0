"""hepgen.ops.ode_combine: every backend against the float64 reference, with and without a mask."""

import pytest
import torch

import hepgen.ops as ops
from hepgen.ops.ode_combine import ODE_COMBINE, ode_combine, ode_combine_reference
from oracle import assert_close_to_reference, backend_params, devices

ALL_PARAMS = [p for dev in devices() for p in backend_params(dev)]
# (state shape, number of terms)
CASES = [((1, 1, 1), 1), ((3, 0, 5), 2), ((0, 4, 3), 3), ((5, 33, 3), 4), ((4, 7, 13), 7), ((2, 150, 3), 0),
         ((6, 5), 2)]


def _inputs(shape, n_terms, device, seed, dtype=torch.float64, mask_kind="bool"):
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(shape, generator=g, dtype=dtype)
    ks = [torch.randn(shape, generator=g, dtype=dtype) for _ in range(n_terms)]
    coeffs = torch.randn(n_terms, generator=g, dtype=torch.float64).tolist()
    h = torch.randn(shape[0], generator=g, dtype=dtype)
    mask = None
    if len(shape) >= 3:
        mask = torch.rand(shape[:2], generator=g) < 0.7
        if mask_kind == "float":
            mask = mask * torch.rand(shape[:2], generator=g, dtype=dtype)
    return y.to(device), [k.to(device) for k in ks], coeffs, h.to(device), None if mask is None else mask.to(device)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
@pytest.mark.parametrize("case", CASES, ids=lambda c: "x".join(map(str, c[0])) + f"-k{c[1]}")
@pytest.mark.parametrize("mask_kind", ["bool", "float", "none"])
@pytest.mark.parametrize("y_coeff", [1.0, 0.7])
def test_matches_float64_reference(device, backend, case, mask_kind, y_coeff):
    shape, n = case
    y, ks, coeffs, h, mask = _inputs(shape, n, device, seed=hash((shape, n, mask_kind)) % 2**31, mask_kind=mask_kind)
    if mask_kind == "none":
        mask = None
    ref64 = ode_combine_reference(y, ks, coeffs, h, None if mask is None else mask.double(), y_coeff)
    f = lambda t: t.float()  # noqa: E731
    ref32 = ode_combine_reference(f(y), [f(k) for k in ks], coeffs, f(h), None if mask is None else f(mask.double()),
                                  y_coeff)
    with ops.use_backend(backend):
        out = ode_combine(f(y), [f(k) for k in ks], coeffs, f(h), mask, y_coeff)
        out64 = ode_combine(y, ks, coeffs, h, mask, y_coeff)
    assert_close_to_reference(out, ref32, ref64)
    # float64 all the way (Triton must not round the coefficients to float32)
    torch.testing.assert_close(out64, ref64, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_padding_stays_zero_and_is_not_read(device, backend):
    y, ks, coeffs, h, mask = _inputs((4, 9, 3), 3, device, seed=1)
    pad = ~mask.unsqueeze(-1)
    y = y.masked_fill(pad, float("nan"))
    ks = [k.masked_fill(pad, float("inf")) for k in ks]
    with ops.use_backend(backend):
        out = ode_combine(y, ks, coeffs, 0.1, mask)
    assert torch.isfinite(out).all() and (out[~mask] == 0).all()


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_non_contiguous_inputs(device, backend):
    y, ks, coeffs, h, mask = _inputs((5, 8, 6), 2, device, seed=2)
    yt = y.transpose(1, 2).contiguous().transpose(1, 2)
    k0 = ks[0][:, :, :].clone().transpose(0, 1).contiguous().transpose(0, 1)
    assert not yt.is_contiguous() and not k0.is_contiguous()
    with ops.use_backend(backend):
        out = ode_combine(yt, [k0, ks[1]], coeffs, h, mask[:, :])
    torch.testing.assert_close(out, ode_combine_reference(y, ks, coeffs, h, mask.double()))


def test_gradients_and_opcheck():
    y, ks, coeffs, h, mask = _inputs((3, 4, 2), 2, "cpu", seed=3)
    leaves = [y.requires_grad_(), *[k.requires_grad_() for k in ks], h.requires_grad_()]
    fn = lambda y, k0, k1, h: ode_combine(y, [k0, k1], coeffs, h, mask, 0.9)  # noqa: E731
    assert torch.autograd.gradcheck(fn, leaves)
    torch.library.opcheck(ODE_COMBINE.custom_op, (y, ks, coeffs, h, mask.double(), 0.9))
    torch.library.opcheck(ODE_COMBINE.custom_op, (y.float(), [k.float() for k in ks], coeffs, h.float(), None, 1.0))


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        (dict(ks=[torch.zeros(2, 4)]), ValueError, r"ks\[0\] must have y's shape"),
        (dict(ks=[torch.zeros(2, 3, dtype=torch.float64)]), TypeError, r"ks\[0\] must have y's dtype"),
        (dict(coeffs=[1.0, 2.0]), ValueError, "coeffs must have one entry per term"),
        (dict(h=torch.zeros(3)), ValueError, r"h must be a float or a tensor of shape \(samples,\)"),
        (dict(mask=torch.ones(2, 4, dtype=torch.bool)), ValueError, r"mask must have shape y.shape\[:2\]"),
        (dict(mask=torch.ones(2, 3, dtype=torch.int64)), TypeError, "mask must be bool or floating"),
        (dict(y=torch.zeros(2, 3, dtype=torch.int64)), TypeError, "y must have a floating dtype"),
        (dict(coeffs=[float("nan")]), ValueError, r"coeffs\[0\] must be finite"),
    ],
)
def test_bad_input_is_rejected(kwargs, error, match):
    args = dict(y=torch.zeros(2, 3), ks=[torch.zeros(2, 3)], coeffs=[1.0], h=0.1, mask=None)
    args.update(kwargs)
    with pytest.raises(error, match=match):
        ode_combine(**args)


def test_custom_op_path_gradients():
    """The op path (what torch.compile sees) has the same gradients as the eager path."""
    y, ks, coeffs, h, mask = _inputs((3, 4, 2), 2, "cpu", seed=4)
    leaves = [y.requires_grad_(), *[k.requires_grad_() for k in ks], h.requires_grad_()]
    assert torch.autograd.gradcheck(lambda y, k0, k1, h: ODE_COMBINE.custom_op(y, [k0, k1], coeffs, h, mask.double(), 0.9),
                                    leaves)
