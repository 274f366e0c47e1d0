"""hepgen.ops.ode_combine beyond the conformance suite (tests/ops/conformance): padded particles
come out exactly 0 whatever they hold."""

import pytest
import torch
from oracle import backend_params, devices

import hepgen.ops as ops
from hepgen.ops.ode_combine import ode_combine

ALL_PARAMS = [p for dev in devices() for p in backend_params(dev)]
# (state shape, number of terms)
CASES = [
    ((1, 1, 1), 1),
    ((3, 0, 5), 2),
    ((0, 4, 3), 3),
    ((5, 33, 3), 4),
    ((4, 7, 13), 7),
    ((2, 150, 3), 0),
    ((6, 5), 2),
]


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
def test_padding_stays_zero_and_is_not_read(device, backend):
    y, ks, coeffs, _h, mask = _inputs((4, 9, 3), 3, device, seed=1)
    pad = ~mask.unsqueeze(-1)
    y = y.masked_fill(pad, float("nan"))
    ks = [k.masked_fill(pad, float("inf")) for k in ks]
    with ops.use_backend(backend):
        out = ode_combine(y, ks, coeffs, 0.1, mask)
    assert torch.isfinite(out).all() and (out[~mask] == 0).all()


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_padded_rows_reach_no_gradient(device, backend):
    """Issue 19: NaN/inf only in padded rows (of y, ks and the output gradient) must leak into
    nothing; grad_h summed 0 · NaN over padded rows on every backend."""
    y, ks, coeffs, h, mask = _inputs((4, 9, 3), 3, device, seed=2)
    pad = ~mask.unsqueeze(-1)
    y = y.masked_fill(pad, float("nan")).requires_grad_()
    ks = [k.masked_fill(pad, float("inf")).requires_grad_() for k in ks]
    h = h.requires_grad_()
    grad = torch.randn_like(y).masked_fill(pad, float("nan"))
    with ops.use_backend(backend):
        out = ode_combine(y, ks, coeffs, h, mask)
        grads = torch.autograd.grad(out, [y, *ks, h], grad)
    assert torch.isfinite(out).all() and (out[~mask] == 0).all()
    for g in grads:
        assert torch.isfinite(g).all()
    for g in grads[:-1]:
        assert (g[~mask] == 0).all()
