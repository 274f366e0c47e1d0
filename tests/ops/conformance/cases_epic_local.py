"""epic_local's samples and bad inputs for the conformance suite."""

from __future__ import annotations

import torch
from cases import BadInput, OpCases, Sample, converter, seeded

from hepgen import ops
from hepgen.ops.epic_local import epic_local_reference

# (B, N, H, H1): odd sizes, one particle, empty sets and batches, H1 != H, EPiC's 128.
SHAPES = [
    (1, 1, 1, 1),
    (3, 0, 5, 4),
    (0, 4, 3, 3),
    (4, 1, 7, 9),
    (5, 33, 13, 11),
    (2, 150, 3, 6),
    (3, 17, 33, 20),
    (2, 30, 128, 128),
]
LEAVES = (0, 2, 3, 4, 5)  # x, w1, bias1, w2, bias2 (the mask gets no gradient)


def reference(x, mask, w1, bias1, w2, bias2, sum_scale=0.01, negative_slope=0.01):
    """The spec with the public signature (a bias may be shared by all sets, [H])."""
    B = x.shape[0]
    bias1 = bias1.expand(B, -1) if bias1.dim() == 1 else bias1
    bias2 = bias2.expand(B, -1) if bias2.dim() == 1 else bias2
    return epic_local_reference(x, mask, w1, bias1, w2, bias2, sum_scale, negative_slope)


def _mask(g, B, N, kind):
    if kind == "bool":
        mask = torch.rand(B, N, generator=g) < 0.6
        if B > 1:
            mask[1] = False  # an empty set inside a non-empty batch
        if B > 2 and N > 0:
            mask[2] = True  # a full set
        return mask
    return torch.rand(B, N, generator=g, dtype=torch.float64) * (torch.rand(B, N, generator=g) < 0.6)


def _weights(g, B, H, H1):
    """Weights on the scale of a default-initialised linear layer, and per-set biases."""

    def r(*s):
        return torch.randn(*s, generator=g, dtype=torch.float64)

    return r(H1, H) / max(H, 1) ** 0.5, r(B, H1) * 0.5, r(H, H1) / max(H1, 1) ** 0.5, r(B, H) * 0.5


def sample_inputs(device, dtype):
    to = converter(device, dtype)
    for B, N, H, H1 in SHAPES:
        for kind in ("bool", "float"):
            name = f"{B}x{N}x{H}x{H1}-{kind}"
            g = seeded(name)
            x = torch.randn(B, N, H, generator=g, dtype=torch.float64)
            mask = _mask(g, B, N, kind)
            w1, b1, w2, b2 = _weights(g, B, H, H1)
            yield Sample(name, tuple(to(t) for t in (x, mask, w1, b1, w2, b2)) + (0.37, 0.01), grad=LEAVES)
    # Strided x, w1 and mask; one bias shared by every set ([H]).
    name = "strided-shared-bias"
    g = seeded(name)
    x = to(torch.randn(6, 11, 43, generator=g, dtype=torch.float64))[:, :, 1:42].transpose(1, 2)
    mask = to(_mask(g, 6, 41, "bool"))
    w1, b1, w2, b2 = (to(t) for t in _weights(g, 6, 11, 13))
    yield Sample(
        name,
        (x, torch.stack([mask, mask], dim=-1)[..., 0], torch.stack([w1, w1], dim=-1)[..., 0], b1, w2, b2[0]),
        grad=LEAVES,
    )
    # Padding holds NaN: never read, and y is exactly 0 there.
    name = "nan-padding"
    g = seeded(name)
    mask = _mask(g, 4, 9, "bool")
    x = torch.randn(4, 9, 5, generator=g, dtype=torch.float64).masked_fill(~mask.unsqueeze(-1), float("nan"))
    yield Sample(name, tuple(to(t) for t in (x, mask, *_weights(g, 4, 5, 6))), grad=LEAVES)


def opcheck_samples(dtype):
    g = seeded("opcheck")
    x = torch.randn(4, 7, 5, generator=g, dtype=dtype)
    w1, b1, w2, b2 = (t.to(dtype) for t in _weights(g, 4, 5, 6))
    yield Sample("bool-mask", (x, torch.rand(4, 7, generator=g) < 0.6, w1, b1, w2, b2, 0.01, 0.01), grad=LEAVES)
    yield Sample(
        "float-mask",
        (
            x.clone(),
            torch.rand(4, 7, generator=g, dtype=dtype),
            w1.clone(),
            b1.clone(),
            w2.clone(),
            b2.clone(),
            0.5,
            0.1,
        ),
        grad=LEAVES,
    )


def gradcheck_samples():
    g = seeded("gradcheck")
    x = torch.randn(3, 5, 4, generator=g, dtype=torch.float64)
    yield Sample("float-mask", (x, _mask(g, 3, 5, "float"), *_weights(g, 3, 4, 3), 0.3, 0.2), grad=LEAVES)


def _bad(name, error, match, **change):
    args = dict(
        x=torch.randn(2, 3, 4),
        mask=torch.ones(2, 3, dtype=torch.bool),
        w1=torch.randn(6, 4),
        bias1=torch.randn(2, 6),
        w2=torch.randn(4, 6),
        bias2=torch.randn(4),
    )
    args.update(change)
    return BadInput(name, ops.epic_local, (), args, error, match)


BAD_INPUTS = [
    _bad("x-rank", ValueError, "x must have 3 dimensions", x=torch.randn(3, 4)),
    _bad(
        "mask-shape", ValueError, r"mask must have shape \(batch, set size\)", mask=torch.ones(2, 4, dtype=torch.bool)
    ),
    _bad("mask-dtype", TypeError, "mask must be bool or floating", mask=torch.ones(2, 3, dtype=torch.int32)),
    _bad("w1-shape", ValueError, r"w1 must have shape \(hidden, features\)", w1=torch.randn(6, 5)),
    _bad("w2-shape", ValueError, r"w2 must have shape \(features, hidden\) = \(4, 6\)", w2=torch.randn(4, 5)),
    _bad("w2-dtype", TypeError, "w2 must have x's dtype", w2=torch.randn(4, 6, dtype=torch.float64)),
    _bad("bias1-shape", ValueError, r"bias1 must have shape \(batch, 6\)", bias1=torch.randn(3, 6)),
    _bad("bias2-shape", ValueError, r"bias2 must have shape \(batch, 4\)", bias2=torch.randn(2, 5)),
    _bad("slope-zero", ValueError, "negative_slope must be > 0", negative_slope=0.0),
    _bad("sum-scale-inf", ValueError, "sum_scale must be finite", sum_scale=float("inf")),
    _bad("x-list", TypeError, "x must be a torch.Tensor", x=[[1.0]]),
]

CASES = OpCases(
    op="epic_local",
    public=ops.epic_local,
    reference=reference,
    sample_inputs=sample_inputs,
    opcheck_samples=opcheck_samples,
    gradcheck_samples=gradcheck_samples,
    bad_inputs=BAD_INPUTS,
    grad_factor=8.0,
    gradcheck_tolerance=dict(atol=1e-5, rtol=1e-4),
    # A documented limit (hepgen/triton/epic_local.py), not a wrong result.
    known_limits=(("triton", "does not fit this GPU's shared memory"),),
)
