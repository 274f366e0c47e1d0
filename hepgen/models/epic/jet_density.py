"""The density of jet-level features (pT, eta, mass, N) that generation starts from.

The paper draws (pT, mass, N) from a conditional normalizing flow fitted to the training
jets. Here: N from its empirical distribution (exact: N takes at most P values), then
(log pT, eta, log mass) | N from a Gaussian kernel density estimate (a smoothed bootstrap
of the training jets with that N, bandwidth by Scott's rule per N and per feature).
Why a KDE, not hepgen.flows: a 3-D density given N with thousands of jets per value of N is
well described by a KDE, which needs no training, cannot diverge and samples exactly the
correlations present in the data; the cost is that the checkpoint stores the jets it
resamples (at most ``max_points`` × 4 floats: 320 KB for 20k jets).
"""

from __future__ import annotations

import torch
from torch import nn

_MASS_FLOOR = 1e-3  # GeV; log of a massless (one-particle) jet


class JetFeatureDensity(nn.Module):
    """Fit with jets [J, 4] = (pT, eta, mass, N); ``sample(n, generator)`` → [n, 4] alike."""

    def __init__(self, particles: int, max_points: int = 20_000):
        super().__init__()
        self.particles, self.max_points = particles, max_points
        P = particles
        self.register_buffer("n_probs", torch.zeros(P + 1, dtype=torch.float64))
        self.register_buffer("points", torch.zeros(0, 3))  # (log pT, eta, log mass), sorted by N
        self.register_buffer("bandwidth", torch.zeros(P + 1, 3))  # per N, per feature
        self.register_buffer("group_start", torch.zeros(P + 1, dtype=torch.long))
        self.register_buffer("group_count", torch.zeros(P + 1, dtype=torch.long))

    @staticmethod
    def _transform(jets: torch.Tensor) -> torch.Tensor:
        return torch.stack([jets[:, 0].log(), jets[:, 1], jets[:, 2].clamp_min(_MASS_FLOOR).log()], dim=1)

    def fit(self, jets: torch.Tensor, generator: torch.Generator | None = None) -> JetFeatureDensity:
        jets = torch.as_tensor(jets, dtype=torch.float64)
        if jets.dim() != 2 or jets.shape[1] != 4 or len(jets) < 2:
            raise ValueError(f"jets must be [J >= 2, 4] = (pT, eta, mass, N), got shape {tuple(jets.shape)}")
        n = jets[:, 3].round().long()
        if n.min() < 1 or n.max() > self.particles:
            raise ValueError(f"jets: N must lie in 1..{self.particles}, got {int(n.min())}..{int(n.max())}")
        if not (jets[:, 0] > 0).all():
            raise ValueError("jets: pT must be positive")
        P = self.particles
        u = self._transform(jets)
        counts = torch.bincount(n, minlength=P + 1)
        self.n_probs.copy_(counts.double() / counts.sum())
        overall = u.std(dim=0)
        bandwidth = torch.zeros(P + 1, 3, dtype=torch.float64)
        for k in range(1, P + 1):
            c = int(counts[k])
            if c == 0:
                continue
            spread = u[n == k].std(dim=0) if c > 2 else overall
            spread = torch.where(spread > 0, spread, overall)
            bandwidth[k] = spread * c ** (-1.0 / 7.0)  # Scott's rule in d = 3
        self.bandwidth.copy_(bandwidth.float())
        keep = torch.randperm(len(jets), generator=generator)[: self.max_points]
        order = keep[torch.argsort(n[keep], stable=True)]
        self.points = u[order].float()
        kept_n = n[order]
        count = torch.bincount(kept_n, minlength=P + 1)
        start = torch.cumsum(count, 0) - count
        # Values of N seen in the data but absent from the kept subset resample the nearest N kept.
        present = torch.nonzero(count > 0).flatten()
        for k in range(P + 1):
            if count[k] == 0:
                j = present[torch.argmin((present - k).abs())]
                start[k], count[k] = start[j], count[j]
        self.group_start.copy_(start)
        self.group_count.copy_(count)
        return self

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        # ``points`` has as many rows as were kept: take the stored shape.
        key = prefix + "points"
        if key in state_dict:
            self.points = torch.empty_like(state_dict[key])
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """[n, 4] float32 jets (pT GeV, eta, mass GeV, N) on the CPU."""
        if len(self.points) == 0:
            raise RuntimeError("the jet feature density was never fitted")
        probs = self.n_probs.cpu()
        mult = torch.multinomial(probs, n, replacement=True, generator=generator)
        count, start = self.group_count.cpu()[mult], self.group_start.cpu()[mult]
        pick = start + (torch.rand(n, generator=generator, dtype=torch.float64) * count).long().clamp_max(count - 1)
        u = self.points.cpu()[pick] + torch.randn(n, 3, generator=generator) * self.bandwidth.cpu()[mult]
        return torch.stack([u[:, 0].exp(), u[:, 1], u[:, 2].exp(), mult.float()], dim=1)

    def sample_given(
        self, pt_mass: torch.Tensor, candidates: int = 128, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """[n, 4] jets with the given (pT, mass) [n, 2] (GeV) and eta, N from the density near
        them: for each jet, the nearest (in log pT, log mass, in units of the density's
        spread) of ``candidates`` draws. Ours: the paper's conditional flow draws N given
        (pT, mass) exactly; this is an approximation good where the density has support."""
        pt_mass = torch.as_tensor(pt_mass, dtype=torch.float64)
        n = len(pt_mass)
        draws = self.sample(n * candidates, generator).view(n, candidates, 4).double()
        target = torch.stack([pt_mass[:, 0].log(), pt_mass[:, 1].clamp_min(_MASS_FLOOR).log()], dim=1)
        drawn = torch.stack([draws[..., 0].log(), draws[..., 2].clamp_min(_MASS_FLOOR).log()], dim=2)
        scale = self.points[:, [0, 2]].double().std(dim=0).clamp_min(1e-6) if len(self.points) > 1 else 1.0
        nearest = (((drawn - target[:, None]) / scale) ** 2).sum(-1).argmin(1)
        pick = draws[torch.arange(n), nearest]
        return torch.stack([pt_mass[:, 0], pick[:, 1], pt_mass[:, 1], pick[:, 3]], dim=1).float()
