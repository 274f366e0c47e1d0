"""Comparing a fuzzed op result with the float64 reference, at a tolerance fit for its dtype
(used by test_fuzz_rq_spline.py and test_fuzz_masked_attention.py).

The tolerance follows tests/oracle.py: a float32 result may differ from the float64 reference
by a multiple of the float32 *reference's* own error (which measures how ill-conditioned the
input is) plus a floor of a few ulps. Measured in units of epsilon, the same count scales to
every dtype (float64: 2^-29 of float32's error; float16: 2^13 times it), so an ill-conditioned
spline bin or a large score gets the slack its conditioning needs in every dtype.

NaN and ±inf must sit exactly where the reference has them; the only exception is a finite
reference value beyond the dtype's range (a half-type result may be inf there).
"""

from __future__ import annotations

import torch


def _first(mask: torch.Tensor) -> tuple:
    return tuple(int(i) for i in mask.nonzero()[0])


def assert_like_reference(
    what: str,
    got: torch.Tensor,
    ref64: torch.Tensor,
    evaluations: torch.Tensor | tuple[torch.Tensor, ...],
    *,
    factor: float = 8.0,
    floor_ulps: float = 100.0,
    magnitude: float | torch.Tensor = 1.0,
) -> None:
    """`got` (any dtype) against `ref64` (float64 reference on the same, rounded, input values).

    `evaluations`: other evaluations of the spec on those values, each in its own dtype (the
    float32 reference; autograd's and the hand-derived backward's gradients, in float32 and
    float64, whose roundings differ). Their largest deviation from ref64, in units of their
    dtype's epsilon, measures the conditioning: the bound is `factor` times that many
    epsilons of got's dtype, plus a floor of `floor_ulps` ulps of the largest of the result
    and `magnitude` (the size of the terms the result is a sum of, where they cancel: an
    attention gradient that is 0 in exact arithmetic is a difference of terms of that size;
    a tensor gives one per entry).
    """
    assert tuple(got.shape) == tuple(ref64.shape), f"{what}: shape {tuple(got.shape)} != {tuple(ref64.shape)}"
    if got.numel() == 0:
        return
    dtype = got.dtype
    got, ref64 = got.detach().double().cpu(), ref64.detach().double().cpu()
    evaluations = evaluations if isinstance(evaluations, (tuple, list)) else (evaluations,)
    big = ref64.abs() > torch.finfo(dtype).max  # finite in float64, beyond the dtype's range
    nan_got, nan_ref = got.isnan(), ref64.isnan()
    if not torch.equal(nan_got, nan_ref):
        wrong = nan_got != nan_ref
        i = _first(wrong)
        raise AssertionError(
            f"{what}: NaN pattern differs at {int(wrong.sum())} of {got.numel()} entries; first at {i}: "
            f"got {got[i].item()!r}, reference {ref64[i].item()!r}"
        )
    inf_got, inf_ref = got.isinf(), ref64.isinf()
    wrong = (inf_got != inf_ref) & ~(inf_got & big)
    wrong |= inf_got & inf_ref & (got.sign() != ref64.sign())
    if wrong.any():
        i = _first(wrong)
        raise AssertionError(
            f"{what}: ±inf pattern differs at {int(wrong.sum())} entries; first at {i}: "
            f"got {got[i].item()!r}, reference {ref64[i].item()!r}"
        )
    finite = got.isfinite() & ref64.isfinite()
    if not finite.any():
        return
    cond = 0.0  # in epsilons
    for r in evaluations:
        eps = torch.finfo(r.dtype).eps
        r = r.detach().double().cpu()
        ok = finite & r.isfinite()
        if ok.any():
            cond = max(cond, (r - ref64)[ok].abs().max().item() / eps)
    top = max(ref64[finite].abs().max().item(), 1.0)
    if isinstance(magnitude, torch.Tensor):  # per entry
        magnitude = magnitude.detach().double().cpu().nan_to_num(0, 0, 0).clamp_min(top)
    else:
        magnitude = max(top, magnitude)
    eps = torch.finfo(dtype).eps
    bound = (factor * cond * eps + floor_ulps * eps * torch.as_tensor(magnitude, dtype=torch.float64)).expand_as(got)
    excess = ((got - ref64).abs() - bound).masked_fill(~finite, -1)
    if excess.max().item() > 0:
        i = _first(excess == excess.max())
        b = bound[i].item()
        raise AssertionError(
            f"{what} ({dtype}): error {abs(got[i].item() - ref64[i].item()):.3e} exceeds {b:.3e} at {i}: got "
            f"{got[i].item()!r}, reference {ref64[i].item()!r} (the spec's other evaluations: {cond:.1f} eps)"
        )
