"""Comparing a fuzzed op result with the float64 reference, at a tolerance fit for its dtype
(used by test_fuzz_rq_spline.py and test_fuzz_masked_attention.py).

The tolerance follows tests/oracle.py: a float32 result may differ from the float64 reference
by a multiple of the float32 *reference's* own error (which measures how ill-conditioned the
input is) plus a floor of a few ulps. Other dtypes scale that measured error by their epsilon
over float32's (float64: 2^-29 of it; float16: 2^13 times it), so an ill-conditioned spline
bin or a large score gets the slack its conditioning needs in every dtype.

NaN and ±inf must sit exactly where the reference has them; the only exception is a finite
reference value beyond the dtype's range (a half-type result may be inf there).
"""

from __future__ import annotations

import torch

EPS32 = torch.finfo(torch.float32).eps


def _first(mask: torch.Tensor) -> tuple:
    return tuple(int(i) for i in mask.nonzero()[0])


def assert_like_reference(
    what: str,
    got: torch.Tensor,
    ref64: torch.Tensor,
    ref32: torch.Tensor,
    *,
    factor: float = 8.0,
    floor_ulps: float = 100.0,
) -> None:
    """`got` (any dtype) against `ref64` (float64 reference on the same, rounded, input values);
    `ref32` is the float32 reference on those values (its error sets the conditioning)."""
    assert tuple(got.shape) == tuple(ref64.shape), f"{what}: shape {tuple(got.shape)} != {tuple(ref64.shape)}"
    if got.numel() == 0:
        return
    dtype = got.dtype
    got, ref64, ref32 = got.detach().double().cpu(), ref64.detach().double().cpu(), ref32.detach().double().cpu()
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
    scale = torch.finfo(dtype).eps / EPS32
    ok32 = finite & ref32.isfinite()
    cond = (ref32 - ref64)[ok32].abs().max().item() if ok32.any() else 0.0
    top = max(ref64[finite].abs().max().item(), 1.0)
    bound = factor * cond * scale + floor_ulps * torch.finfo(dtype).eps * top
    err = (got - ref64).abs().masked_fill(~finite, 0)
    if err.max().item() > bound:
        i = _first(err == err.max())
        raise AssertionError(
            f"{what} ({dtype}): max error {err.max().item():.3e} exceeds {bound:.3e} at {i}: got "
            f"{got[i].item()!r}, reference {ref64[i].item()!r} (float32 reference's error {cond:.3e})"
        )
