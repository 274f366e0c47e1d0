"""Hypothesis strategies for the memory layouts an op must handle: one tensor, many layouts.

Every layout holds the same values as the contiguous tensor, so an op's result on it must
equal its result on the contiguous copy (values and gradients). `layout_of` says which one
a tensor got, for failure messages.

- contiguous: the tensor as made;
- strided: every second element along each dimension of a larger tensor (non-unit strides);
- permuted: a transposed contiguous tensor transposed back (strides out of order);
- offset: a view starting part-way into a larger storage (storage_offset > 0);
- expanded: a size-1 dimension broadcast to its size with stride 0 (aliased memory; an input
  only, never an output written in place).
"""

from __future__ import annotations

import torch
from hypothesis import strategies as st

LAYOUTS = ("contiguous", "strided", "permuted", "offset", "expanded")


def as_layout(t: torch.Tensor, layout: str) -> torch.Tensor:
    """`t`'s values in `layout` (a new view; `t` itself for contiguous)."""
    if layout == "contiguous" or t.dim() == 0:
        return t
    if layout == "strided":
        big = torch.zeros([2 * s + 1 for s in t.shape], dtype=t.dtype, device=t.device)
        view = big[tuple(slice(0, 2 * s, 2) for s in t.shape)]
        view.copy_(t)
        return view
    if layout == "permuted":
        dims = list(range(t.dim()))[::-1]
        return t.permute(dims).contiguous().permute(dims)
    if layout == "offset":
        flat = torch.zeros(t.numel() + 7, dtype=t.dtype, device=t.device)
        view = flat[7:].view(t.shape)
        view.copy_(t)
        return view
    if layout == "expanded":
        # Only where the values are constant along a dimension can a stride-0 view hold them;
        # the caller gets a tensor whose first dimension of size > 1 is broadcast from row 0.
        for d, s in enumerate(t.shape):
            if s > 1:
                index = [slice(None)] * t.dim()
                index[d] = slice(0, 1)
                return t[tuple(index)].expand(t.shape)
        return t
    raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")


def layout_of(t: torch.Tensor) -> str:
    if t.is_contiguous() and t.storage_offset() == 0:
        return "contiguous"
    if 0 in t.stride() and t.numel() > 1:
        return "expanded"
    if t.storage_offset():
        return "offset"
    return "non-contiguous"


def layouts(include_expanded: bool = True) -> st.SearchStrategy[str]:
    """A layout name; expanded ones only for inputs that are only read."""
    return st.sampled_from(LAYOUTS if include_expanded else LAYOUTS[:-1])


def values(shape, dtype=torch.float64, special: bool = False, seed: int = 0) -> torch.Tensor:
    """Fresh normal values of `shape`; with `special`, some NaN, ±inf and huge entries."""
    g = torch.Generator().manual_seed(seed)
    t = torch.randn(shape, generator=g, dtype=torch.float64)
    if special and t.numel():
        picks = torch.randint(0, t.numel(), (max(1, t.numel() // 8),), generator=g)
        specials = torch.tensor([float("nan"), float("inf"), -float("inf"), 1e300, -1e300], dtype=torch.float64)
        t.view(-1)[picks] = specials[torch.randint(0, len(specials), (len(picks),), generator=g)]
    return t.to(dtype)


def factors(largest: float) -> st.SearchStrategy[float]:
    """A scalar factor of an op (a coefficient, a scale): 0, or of magnitude in [1e-3, largest].

    Not smaller: a float64 factor of 1e-200 is 0 in a half-precision kernel, and 0 · inf = NaN
    where the float64 reference has inf; that is rounding of the factor, not a fault of the op.
    """
    return st.one_of(st.just(0.0), st.floats(1e-3, largest), st.floats(-largest, -1e-3))
