"""ode_combine's samples and bad inputs for the conformance suite."""

from __future__ import annotations

import torch
from cases import BadInput, OpCases, Sample, converter, seeded

from hepgen import ops
from hepgen.ops.ode_combine import ode_combine_reference

# (state shape, number of terms)
CASES_ = [
    ((1, 1, 1), 1),
    ((3, 0, 5), 2),
    ((0, 4, 3), 3),
    ((5, 33, 3), 4),
    ((4, 7, 13), 7),
    ((2, 150, 3), 0),
    ((6, 5), 2),
]


def reference(y, ks, coeffs, h, mask=None, y_coeff=1.0):
    """The spec with the public signature (h a float or [S], any mask dtype)."""
    if not isinstance(h, torch.Tensor):
        h = torch.full((y.shape[0],), float(h), dtype=y.dtype, device=y.device)
    return ode_combine_reference(y, ks, coeffs, h.to(y.dtype), None if mask is None else mask.to(y.dtype), y_coeff)


def _leaves(n_terms, h=True):
    return (0, *((1, i) for i in range(n_terms)), *((3,) if h else ()))


def _state(g, shape, n_terms):
    y = torch.randn(shape, generator=g, dtype=torch.float64)
    ks = [torch.randn(shape, generator=g, dtype=torch.float64) for _ in range(n_terms)]
    coeffs = torch.randn(n_terms, generator=g, dtype=torch.float64).tolist()
    return y, ks, coeffs, torch.randn(shape[0], generator=g, dtype=torch.float64)


def sample_inputs(device, dtype):
    to = converter(device, dtype)
    for shape, n in CASES_:
        for mask_kind in ("bool", "float", "none"):
            if mask_kind != "none" and len(shape) < 3:
                continue
            for y_coeff in (1.0, 0.7):
                name = "x".join(map(str, shape)) + f"-k{n}-{mask_kind}-{y_coeff}"
                g = seeded(name)
                y, ks, coeffs, h = _state(g, shape, n)
                mask = None
                if mask_kind != "none":
                    mask = torch.rand(shape[:2], generator=g) < 0.7
                    if mask_kind == "float":
                        mask = mask * torch.rand(shape[:2], generator=g, dtype=torch.float64)
                    mask = to(mask)
                yield Sample(name, (to(y), [to(k) for k in ks], coeffs, to(h), mask, y_coeff), grad=_leaves(n))
    # Strided state and terms, a float step.
    name = "strided"
    g = seeded(name)
    y, ks, coeffs, _ = _state(g, (5, 8, 6), 2)
    mask = torch.rand(5, 8, generator=g) < 0.7
    yield Sample(
        name,
        (
            to(y).transpose(1, 2).contiguous().transpose(1, 2),
            [to(ks[0]).transpose(0, 1).contiguous().transpose(0, 1), to(ks[1])],
            coeffs,
            0.1,
            to(mask),
        ),
        grad=_leaves(2, h=False),
    )
    # Padding holds NaN (state) and inf (terms): never read, exactly 0 out. (The gradient for h
    # is not asked: the reference's would be 0 · inf there.)
    name = "nan-padding"
    g = seeded(name)
    y, ks, coeffs, h = _state(g, (4, 9, 3), 3)
    mask = torch.rand(4, 9, generator=g) < 0.7
    pad = ~mask.unsqueeze(-1)
    yield Sample(
        name,
        (
            to(y.masked_fill(pad, float("nan"))),
            [to(k.masked_fill(pad, float("inf"))) for k in ks],
            coeffs,
            to(h),
            to(mask),
        ),
        grad=_leaves(3, h=False),
    )


def opcheck_samples(dtype):
    g = seeded("opcheck")
    y, ks, coeffs, h = (t.to(dtype) if isinstance(t, torch.Tensor) else t for t in _state(g, (3, 4, 2), 2))
    ks = [k.to(dtype) for k in ks]
    mask = (torch.rand(3, 4, generator=g) < 0.7).to(dtype)
    yield Sample("mask", (y, ks, coeffs, h, mask, 0.9), grad=_leaves(2))
    yield Sample("no-mask", (y.clone(), [k.clone() for k in ks], coeffs, h.clone(), None, 1.0), grad=_leaves(2))


def gradcheck_samples():
    g = seeded("gradcheck")
    y, ks, coeffs, h = _state(g, (3, 4, 2), 2)
    yield Sample("mask", (y, ks, coeffs, h, torch.rand(3, 4, generator=g) < 0.7, 0.9), grad=_leaves(2))


def _bad(name, error, match, **change):
    args = dict(y=torch.zeros(2, 3), ks=[torch.zeros(2, 3)], coeffs=[1.0], h=0.1, mask=None)
    args.update(change)
    return BadInput(name, ops.ode_combine, (), args, error, match)


BAD_INPUTS = [
    _bad("ks-shape", ValueError, r"ks\[0\] must have y's shape", ks=[torch.zeros(2, 4)]),
    _bad("ks-dtype", TypeError, r"ks\[0\] must have y's dtype", ks=[torch.zeros(2, 3, dtype=torch.float64)]),
    _bad("coeffs-count", ValueError, "coeffs must have one entry per term", coeffs=[1.0, 2.0]),
    _bad("h-shape", ValueError, r"h must be a float or a tensor of shape \(samples,\)", h=torch.zeros(3)),
    _bad("mask-shape", ValueError, r"mask must have shape y.shape\[:2\]", mask=torch.ones(2, 4, dtype=torch.bool)),
    _bad("mask-dtype", TypeError, "mask must be bool or floating", mask=torch.ones(2, 3, dtype=torch.int64)),
    _bad("y-dtype", TypeError, "y must have a floating dtype", y=torch.zeros(2, 3, dtype=torch.int64)),
    _bad("coeffs-nan", ValueError, r"coeffs\[0\] must be finite", coeffs=[float("nan")]),
    _bad("too-many-terms", ValueError, "ks may hold at most 16 terms", ks=[torch.zeros(2, 3)] * 17, coeffs=[1.0] * 17),
    _bad("y-scalar", ValueError, r"y must have a leading sample dimension", y=torch.tensor(1.0), ks=[]),
]

CASES = OpCases(
    op="ode_combine",
    public=ops.ode_combine,
    reference=reference,
    sample_inputs=sample_inputs,
    opcheck_samples=opcheck_samples,
    gradcheck_samples=gradcheck_samples,
    bad_inputs=BAD_INPUTS,
    float64_rtol=1e-13,
)
