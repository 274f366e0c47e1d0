"""set_pool's samples and bad inputs for the conformance suite."""

from __future__ import annotations

import torch
from cases import BadInput, OpCases, Sample, converter, seeded

from hepgen import ops

# (B, N, D): odd sizes, a single particle, empty sets and batches, wide features.
SHAPES = [(1, 1, 1), (3, 0, 5), (0, 4, 3), (4, 1, 7), (5, 33, 13), (2, 150, 3), (3, 17, 129), (2, 5, 0), (7, 30, 128)]


def _mask(g, B, N, kind):
    if kind == "bool":
        mask = torch.rand(B, N, generator=g) < 0.6
        if B > 1:
            mask[1] = False  # an empty set inside a non-empty batch
        return mask
    return torch.rand(B, N, generator=g, dtype=torch.float64) * (torch.rand(B, N, generator=g) < 0.6)


def sample_inputs(device, dtype):
    to = converter(device, dtype)
    for B, N, D in SHAPES:
        for kind in ("bool", "float"):
            name = f"{B}x{N}x{D}-{kind}"
            g = seeded(name)
            x = torch.randn(B, N, D, generator=g, dtype=torch.float64)
            yield Sample(name, (to(x), to(_mask(g, B, N, kind)), 0.37), grad=(0,))
    # A view with permuted strides and a gap between sets, large values, a strided mask.
    name = "strided-large"
    g = seeded(name)
    x = to(torch.randn(6, 11, 43, generator=g, dtype=torch.float64) * 1e4)[:, :, 1:42].transpose(1, 2)
    mask = to(_mask(g, 6, 41, "bool"))
    yield Sample(name, (x, torch.stack([mask, mask], dim=-1)[..., 0]), grad=(0,))
    # Padding holds NaN: it must not be read (the reference ignores it too).
    name = "nan-padding"
    g = seeded(name)
    mask = _mask(g, 4, 9, "bool")
    x = torch.randn(4, 9, 5, generator=g, dtype=torch.float64).masked_fill(~mask.unsqueeze(-1), float("nan"))
    yield Sample(name, (to(x), to(mask)), grad=(0,))
    name = "all-empty"
    yield Sample(
        name,
        (
            to(torch.randn(3, 4, 2, generator=seeded(name), dtype=torch.float64)),
            torch.zeros(3, 4, dtype=torch.bool, device=device),
        ),
        grad=(0,),
    )


def opcheck_samples(dtype):
    g = seeded("opcheck")
    x = torch.randn(4, 7, 5, generator=g, dtype=dtype)
    yield Sample("bool-mask", (x, torch.rand(4, 7, generator=g) < 0.6, 0.01), grad=(0,))
    yield Sample("float-mask", (x.clone(), torch.rand(4, 7, generator=g, dtype=dtype), 0.5), grad=(0,))


def gradcheck_samples():
    g = seeded("gradcheck")
    yield Sample(
        "float-mask",
        (
            torch.randn(3, 6, 4, generator=g, dtype=torch.float64),
            torch.rand(3, 6, generator=g, dtype=torch.float64) * (torch.rand(3, 6, generator=g) < 0.6),
            0.3,
        ),
        grad=(0,),
    )


def _bad(name, x, mask, scale, error, match):
    return BadInput(name, ops.set_pool, (x, mask, scale), {}, error, match)


BAD_INPUTS = [
    _bad("x-rank", torch.randn(3, 4), torch.ones(3, 4), 0.01, ValueError, "x must have 3 dimensions"),
    _bad(
        "mask-shape",
        torch.randn(2, 3, 4),
        torch.ones(2, 4),
        0.01,
        ValueError,
        r"mask must have shape \(batch, set size\) = \(2, 3\)",
    ),
    _bad("mask-rank", torch.randn(2, 3, 4), torch.ones(2, 3, 1), 0.01, ValueError, "mask must have 2 dimensions"),
    _bad(
        "x-dtype",
        torch.ones(2, 3, 4, dtype=torch.int64),
        torch.ones(2, 3),
        0.01,
        TypeError,
        "x must have a floating dtype",
    ),
    _bad(
        "mask-dtype",
        torch.randn(2, 3, 4),
        torch.ones(2, 3, dtype=torch.int32),
        0.01,
        TypeError,
        "mask must be bool or floating",
    ),
    _bad(
        "mask-device",
        torch.randn(2, 3, 4),
        torch.ones(2, 3, device="meta"),
        0.01,
        ValueError,
        "mask is on meta but x is on cpu",
    ),
    _bad("scale-nan", torch.randn(2, 3, 4), torch.ones(2, 3), float("nan"), ValueError, "sum_scale must be finite"),
    _bad("scale-str", torch.randn(2, 3, 4), torch.ones(2, 3), "0.1", TypeError, "sum_scale must be a float"),
    _bad("x-list", [[1.0]], torch.ones(2, 3), 0.01, TypeError, "x must be a torch.Tensor"),
]

CASES = OpCases(
    op="set_pool",
    public=ops.set_pool,
    reference=ops.set_pool_reference,
    sample_inputs=sample_inputs,
    opcheck_samples=opcheck_samples,
    gradcheck_samples=gradcheck_samples,
    bad_inputs=BAD_INPUTS,
    double_backward=True,
)
