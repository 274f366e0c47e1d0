"""Comparing a backend against the float64 reference.

The bound follows flash-attention's tests: a float32 kernel may be off from the float64
reference by at most a small multiple of the float32 *reference's* own error, plus a tiny
absolute floor for outputs that are exactly representable (where the reference's error is 0).
"""

from __future__ import annotations

import torch

from hepgen.ops._backends import BACKEND_NAMES, why_unavailable


def devices() -> list[str]:
    return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def backend_params(device: str, dtype: torch.dtype = torch.float32, op: str | None = None) -> list:
    """pytest params (device, backend) for every backend, skipped with the reason where it cannot run
    (`op`'s own limits included when given)."""
    import pytest

    params = []
    for backend in BACKEND_NAMES:
        why = why_unavailable(backend, torch.device(device), dtype, op)
        marks = [pytest.mark.skip(reason=why)] if why else []
        params.append(pytest.param(device, backend, marks=marks, id=f"{device}-{backend}"))
    return params


def assert_close_to_reference(
    out: torch.Tensor,
    ref_same_dtype: torch.Tensor,
    ref64: torch.Tensor,
    factor: float = 4.0,
    floor: float | None = None,
    what: str = "output",
) -> None:
    assert out.shape == ref64.shape, f"{what}: shape {tuple(out.shape)} != {tuple(ref64.shape)}"
    assert out.dtype == ref_same_dtype.dtype, f"{what}: dtype {out.dtype} != {ref_same_dtype.dtype}"
    if out.numel() == 0:
        return
    out64 = out.double().cpu()
    ref64 = ref64.double().cpu()
    ref_err = (ref_same_dtype.double().cpu() - ref64).abs().max().item()
    err = (out64 - ref64).abs().max().item()
    if floor is None:
        floor = 10 * torch.finfo(out.dtype).eps * max(ref64.abs().max().item(), 1.0)
    bound = factor * ref_err + floor
    assert err <= bound, f"{what}: max error {err:.3e} exceeds bound {bound:.3e} (reference's own error {ref_err:.3e})"
