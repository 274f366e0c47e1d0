"""Random draws of a training batch that do not depend on how the batch is split over ranks.

A loss draws noise for its batch (flow-matching times and noise, diffusion steps, the
reparametrisation noise of a VAE or of Bayesian layers). With K ranks each computing a
slice of the global batch, those draws must be the slice of what one process would draw
for the whole batch, or 2 ranks x b cannot equal 1 process x 2b. :class:`SplitDraws` makes
that so for code that calls torch's own samplers (``torch.rand``, ``randn``, ``randint``
and their ``_like`` forms, with or without a ``generator``), without changing the losses:
it is a ``torch.overrides.TorchFunctionMode`` (PyTorch's own hook for intercepting torch
calls) that, for the k-th draw inside it,

- when the draw's leading dimension is this rank's batch size (a per-sample draw), draws
  the whole global batch (``total`` rows) from a generator seeded by (key, k) and returns
  rows ``offset .. offset + local``;
- otherwise (a draw not shaped like the batch, e.g. a weight's noise), draws it whole from
  the same generator, identically on every rank.

The rule's one assumption, said here because a coincidence breaks it: a non-batch draw
must not have the local batch size as its leading dimension. Samplers it cannot slice
(``randperm``, ``bernoulli``, ``normal``, ``multinomial``, in-place ``normal_``/``uniform_``,
dropout in training) raise instead of silently depending on the split.

Draws are made on the CPU (a CPU generator gives the same numbers on every device) and
moved to the requested device; each rank draws the whole batch's noise, a cost that is
small beside the network's.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from integer parts (numpy's SeedSequence: well mixed, order-sensitive)."""
    state = np.random.SeedSequence([int(p) % 2**64 for p in parts]).generate_state(2, np.uint32)
    return (int(state[0]) << 31 | int(state[1]) >> 1) & (2**63 - 1)


def _size(args, kwargs) -> tuple[int, ...]:
    size = kwargs.get("size", args)
    if len(size) == 1 and isinstance(size[0], (tuple, list, torch.Size)):
        size = size[0]
    return tuple(int(s) for s in size)


class SplitDraws(TorchFunctionMode):
    """Inside ``with SplitDraws(key, total, offset, local):``, per-sample draws are the rows
    ``offset .. offset+local`` of a draw for ``total`` samples (see the module docstring)."""

    def __init__(self, key: int, total: int, offset: int, local: int):
        super().__init__()
        if not 0 <= offset <= offset + local <= total:
            raise ValueError(f"SplitDraws: rows {offset}..{offset + local} do not lie in a batch of {total}")
        self.key, self.total, self.offset, self.local = int(key), int(total), int(offset), int(local)
        self.calls = 0

    def _draw(self, sampler, size, dtype, device, **extra) -> torch.Tensor:
        g = torch.Generator().manual_seed(mix_seed(self.key, self.calls))
        self.calls += 1
        dtype = dtype or (torch.int64 if sampler is torch.randint else torch.get_default_dtype())
        if size and size[0] == self.local:
            full = sampler(size=(self.total, *size[1:]), generator=g, dtype=dtype, **extra)
            out = full[self.offset : self.offset + self.local]
        else:
            out = sampler(size=size, generator=g, dtype=dtype, **extra)
        return out.to(device) if device is not None else out

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in (torch.rand, torch.randn):
            return self._draw(func, _size(args, kwargs), kwargs.get("dtype"), kwargs.get("device"))
        if func in (torch.rand_like, torch.randn_like):
            like = args[0] if args else kwargs["input"]
            sampler = torch.rand if func is torch.rand_like else torch.randn
            dtype, device = kwargs.get("dtype", like.dtype), kwargs.get("device", like.device)
            return self._draw(sampler, tuple(like.shape), dtype, device)
        if func is torch.randint:
            low, high, size = _randint_args(args, kwargs)
            return self._draw(torch.randint, size, kwargs.get("dtype"), kwargs.get("device"), low=low, high=high)
        if func in _UNSLICEABLE or (func is F.dropout and _dropping(args, kwargs)):
            name = getattr(func, "__name__", str(func))
            raise NotImplementedError(
                f"{name} inside a training loss cannot be split over ranks reproducibly (hepgen.distributed.draws); "
                "use torch.rand/randn/randint"
            )
        return func(*args, **kwargs)


def _randint_args(args, kwargs):
    args = list(args)
    if "size" in kwargs:
        size = kwargs["size"]
    else:
        size = args.pop()
    if "high" in kwargs:
        high, low = kwargs["high"], kwargs.get("low", args[0] if args else 0)
    elif len(args) == 2:
        low, high = args
    else:
        low, high = kwargs.get("low", 0), args[0]
    return int(low), int(high), tuple(int(s) for s in size)


def _dropping(args, kwargs) -> bool:
    p = kwargs.get("p", args[1] if len(args) > 1 else 0.5)
    training = kwargs.get("training", args[2] if len(args) > 2 else True)
    return bool(training) and p > 0


_UNSLICEABLE = {
    torch.randperm,
    torch.bernoulli,
    torch.normal,
    torch.multinomial,
    torch.poisson,
    torch.Tensor.normal_,
    torch.Tensor.uniform_,
    torch.Tensor.bernoulli_,
    torch.Tensor.random_,
    torch.Tensor.exponential_,
}
