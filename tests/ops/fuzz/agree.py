"""Comparing a backend's result with the float64 reference, NaN and inf patterns included.

The bound is a forward error bound, per element: ``terms · eps(dtype) · scale`` where
``scale`` is the same computation done on absolute values (|a|·|b| for every product, so no
cancellation hides an error) and ``terms`` the number of roundings along the longest sum. It is
loose for float16, but a wrong index or a stride mistake is an O(1) relative error and fails it.
"""

from __future__ import annotations

import torch

EPS = {dt: torch.finfo(dt).eps for dt in (torch.float16, torch.bfloat16, torch.float32, torch.float64)}


def scalar_terms(backend: str, dtype) -> int:
    """Extra roundings a backend's scalar arguments cost: Triton takes a float64 scalar as two
    float32 parts, within 2^-48 of it (hepgen/triton/_scalars.py), i.e. 16 float64 eps."""
    return 32 if backend == "triton" and dtype == torch.float64 else 0


def assert_agrees(out: torch.Tensor, ref64: torch.Tensor, scale: torch.Tensor, terms: int, what: str) -> None:
    """`out` (any float dtype) equals `ref64` within terms·eps·scale, with the same NaN and ±inf entries."""
    assert tuple(out.shape) == tuple(ref64.shape), f"{what}: shape {tuple(out.shape)} != {tuple(ref64.shape)}"
    o = out.detach().to(torch.float64).cpu()
    r = ref64.detach().to(torch.float64).cpu()
    if o.numel() == 0:
        return
    nan_o, nan_r = o.isnan(), r.isnan()
    if not torch.equal(nan_o, nan_r):
        where = (nan_o != nan_r).nonzero()[:4].tolist()
        raise AssertionError(f"{what}: NaN pattern differs from the reference at {where} (got {o[nan_o != nan_r][:4]})")
    inf_o, inf_r = o.isinf(), r.isinf()
    if not torch.equal(inf_o, inf_r) or not torch.equal(o[inf_o], r[inf_r]):
        where = ((inf_o != inf_r) | (inf_o & (o != r))).nonzero()[:4].tolist()
        raise AssertionError(f"{what}: inf pattern differs from the reference at {where}")
    finite = torch.isfinite(r)
    eps = EPS[out.dtype]
    tiny = 8 * torch.finfo(out.dtype).tiny  # results near the underflow threshold
    bound = terms * eps * scale.detach().to(torch.float64).cpu().expand_as(r) + tiny
    err = (o - r).abs()
    bad = finite & ~(err <= bound)  # a NaN bound (scale inf on a finite result) counts as bad too
    if bad.any():
        i = bad.nonzero()[0].tolist()
        raise AssertionError(
            f"{what}: {int(bad.sum())} entries off the float64 reference, e.g. at {i}: {o[tuple(i)].item():.6g} vs "
            f"{r[tuple(i)].item():.6g} (bound {bound[tuple(i)].item():.3g}, {out.dtype})"
        )


def fuzz_backends(candidates=("reference", "cpu", "triton")) -> list[str]:
    """The backends a fuzz test draws from: those that run here (on CPU tensors), less any not
    named in ``HEPGEN_FUZZ_BACKENDS`` (e.g. ``reference,cpu`` for a long run without the slow
    Triton interpreter)."""
    import os

    from hepgen.ops import why_unavailable

    chosen = os.environ.get("HEPGEN_FUZZ_BACKENDS", "").replace(" ", "")
    wanted = set(chosen.split(",")) if chosen else set(candidates)
    return [b for b in candidates if b in wanted and not why_unavailable(b, torch.device("cpu"), torch.float32)]
