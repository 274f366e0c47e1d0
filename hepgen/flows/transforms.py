"""Invertible layers of a flow: the common interface, composition, permutations, LU-linear.

Every transform maps data towards noise in ``forward(x, context) -> (z, logabsdet)`` and
back in ``inverse(z, context) -> (x, logabsdet)``; ``logabsdet`` is per sample [B] (summed
over features) and the inverse's is the negative of the forward's at the matching point.
Inputs are [B, D]. Conventions (names, directions, initialisations) follow nflows, so
models move between the two by copying weights.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class Transform(nn.Module):
    """Base class: subclasses implement forward and inverse, both returning (outputs, logabsdet)."""

    def forward(self, x: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def inverse(self, z: torch.Tensor, context: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class CompositeTransform(Transform):
    """Transforms applied in order (forward) and in reverse order (inverse); log-dets add."""

    def __init__(self, transforms: list[Transform]):
        super().__init__()
        self.transforms = nn.ModuleList(transforms)

    def forward(self, x, context=None):
        total = x.new_zeros(x.shape[0])
        for t in self.transforms:
            x, ld = t(x, context)
            total = total + ld
        return x, total

    def inverse(self, z, context=None):
        total = z.new_zeros(z.shape[0])
        for t in reversed(self.transforms):
            z, ld = t.inverse(z, context)
            total = total + ld
        return z, total


class RandomPermutation(Transform):
    """A fixed random permutation of the features (log-det 0); `generator` makes it reproducible."""

    def __init__(self, features: int, generator: torch.Generator | None = None):
        super().__init__()
        if not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a positive int, got {features!r}")
        perm = torch.randperm(features, generator=generator)
        self.register_buffer("_permutation", perm)
        self.register_buffer("_inverse_permutation", torch.argsort(perm))

    def forward(self, x, context=None):
        return x[:, self._permutation], x.new_zeros(x.shape[0])

    def inverse(self, z, context=None):
        return z[:, self._inverse_permutation], z.new_zeros(z.shape[0])


class LULinear(Transform):
    """z = L U x + b with L unit lower-triangular and U upper-triangular with a positive diagonal.

    The diagonal is softplus(unconstrained) + eps, so the map stays invertible; log|det| =
    sum(log diag U). Initialised to the identity (as nflows' ``identity_init=True``).

    Without autograd (sampling, evaluation) the dense W = L U, W^-1 and log|det| are cached,
    keyed on the parameters' version counters and storage (so an optimiser step, a
    ``load_state_dict`` or a ``.to()`` invalidates them): rebuilding them cost several small
    ops per call, most of a batch-1 pass. Under autograd they are rebuilt every call, so
    gradients flow as before.
    """

    def __init__(self, features: int, eps: float = 1e-3):
        super().__init__()
        if not isinstance(features, int) or features < 1:
            raise ValueError(f"features must be a positive int, got {features!r}")
        self.features, self.eps = features, eps
        n_tri = features * (features - 1) // 2
        self.register_buffer("_lower_indices", torch.tril_indices(features, features, -1))
        self.register_buffer("_upper_indices", torch.triu_indices(features, features, 1))
        self.lower_entries = nn.Parameter(torch.zeros(n_tri))
        self.upper_entries = nn.Parameter(torch.zeros(n_tri))
        # softplus(c) + eps = 1 at initialisation.
        self.unconstrained_upper_diag = nn.Parameter(torch.full((features,), math.log(math.expm1(1 - eps))))
        self.bias = nn.Parameter(torch.zeros(features))

    def _lower_upper(self):
        D = self.features
        lower = self.lower_entries.new_zeros(D, D).index_put(
            (self._lower_indices[0], self._lower_indices[1]), self.lower_entries
        )
        lower = lower + torch.eye(D, dtype=lower.dtype, device=lower.device)
        upper = self.upper_entries.new_zeros(D, D).index_put(
            (self._upper_indices[0], self._upper_indices[1]), self.upper_entries
        )
        upper = upper + torch.diag(self.upper_diag)
        return lower, upper

    @property
    def upper_diag(self) -> torch.Tensor:
        return F.softplus(self.unconstrained_upper_diag) + self.eps

    def logabsdet(self) -> torch.Tensor:
        return torch.log(self.upper_diag).sum()

    def _params(self):
        return (self.lower_entries, self.upper_entries, self.unconstrained_upper_diag, self.bias)

    def _cached(self):
        """(W, W^-1, log|det|) when no gradient is needed, else None."""
        params = self._params()
        if torch.is_grad_enabled() and any(p.requires_grad for p in params):
            return None
        key = tuple((p._version, p.data_ptr(), p.dtype, p.device) for p in params)
        cache = self.__dict__.get("_inference_cache")
        if cache is None or cache[0] != key:
            with torch.no_grad():
                lower, upper = self._lower_upper()
                eye = torch.eye(self.features, dtype=lower.dtype, device=lower.device)
                lower_inv = torch.linalg.solve_triangular(lower, eye, upper=False, unitriangular=True)
                upper_inv = torch.linalg.solve_triangular(upper, eye, upper=True)
                cache = (key, lower @ upper, upper_inv @ lower_inv, self.logabsdet())
            self.__dict__["_inference_cache"] = cache
        return cache[1:]

    def forward(self, x, context=None):
        cached = self._cached()
        if cached is not None:
            weight, _, logabsdet = cached
            return F.linear(x, weight, self.bias), logabsdet.expand(x.shape[0])
        lower, upper = self._lower_upper()
        z = F.linear(F.linear(x, upper), lower, self.bias)
        return z, self.logabsdet().expand(x.shape[0])

    def inverse(self, z, context=None):
        cached = self._cached()
        if cached is not None:
            _, weight_inv, logabsdet = cached
            return F.linear(z - self.bias, weight_inv), (-logabsdet).expand(z.shape[0])
        lower, upper = self._lower_upper()
        y = (z - self.bias).T
        y = torch.linalg.solve_triangular(lower, y, upper=False, unitriangular=True)
        x = torch.linalg.solve_triangular(upper, y, upper=True).T
        return x, (-self.logabsdet()).expand(z.shape[0])
