"""CaloMan's invertible preprocessing of showers, incident energies and energies per layer.

- voxels: each layer's voxels divided by that layer's energy (the paper's code's per-layer
  normalisation; an empty layer stays all zero), then standardised per voxel. The VAE thus
  learns the shapes of the layers; their energies come from the energy-per-layer flow.
- incident energy: log10(E_inc) min-max scaled to [0, 1] over the training range.
- energies per layer (the layer flow's data, and with E_inc the latent flow's context):
  y_0 = log10(E_tot / E_inc) and, for every layer but the one holding most of the energy
  (the "remainder" layer, chosen in fit), log10(E_l / E_tot + delta u) with u ~ U(0, 1) drawn
  afresh each time (dequantisation), all standardised. On the way back a share below delta
  is an empty layer, and the remainder layer gets 1 - (the other shares).
  They are standardised *per incident energy*: y -> (y - m(c)) / s(c), with m and log s
  polynomials of degree 4 in the scaled log E_inc c, fitted to the mean and std at each
  training energy.

Departures from the paper, and why:
- per-voxel standardisation after the per-layer normalisation: raw fractions (most ~1e-3)
  make the VAE's summed squared error tiny next to its KL term, and the latent collapses;
- the layer representation and its dequantisation are ours (the paper gives none). An
  earlier version used log10(E_l / E_inc + 1e-6): empty layers (35% of layer 0, 95% of
  layer 3 at 256 MeV) became point masses 4 to 6 decades below the bulk, which a spline flow
  fits poorly (it spread mass over the gap), and the response E_tot / E_inc was a nonlinear
  function of all five outputs, so its width, 23% at 256 MeV and 0.6% at 4 TeV, was not
  learned (flat ~18% in generation). Here the response is one coordinate of the flow, and
  the energy-dependent standardisation hands the flow residuals of about unit width at every
  energy (with one global standardisation, 10 epochs still left the 4 TeV width at 5%
  instead of 0.6%: a spline bin of the global scale is ~20 times the width to be learned).

All state lives in buffers, so it travels with the model's ``state_dict`` (checkpoints).
"""

from __future__ import annotations

import torch
from torch import nn

# The paper's code divides photon voxels by 3.1 × E_inc; kept as a config field (the scale
# is irrelevant after per-voxel standardisation but documents the origin).
PHOTON_SCALE = 3.1
# Dequantisation width of a layer's share of E_tot: shares below it are empty layers on
# sampling. 1e-5 of E_tot is at most 40 MeV at 4 TeV, where layer 0 (the only layer that is
# often empty there) holds ~0.01% of the energy; below 1 GeV it is under 3 keV.
SHARE_DELTA = 1e-5
# Keeps log10 of a (never seen) zero total deposit finite.
TOTAL_EPS = 1e-6
# Degree of the polynomials in the scaled log E_inc that standardise the layer values.
LAYER_POLY_DEGREE = 4
# Above this many distinct incident energies, the fit bins them in quantiles of log E.
_MAX_ENERGY_BINS = 32


def _powers(c: torch.Tensor) -> torch.Tensor:
    """[N, 1] → [N, degree + 1]: 1, c, c², ..."""
    return c ** torch.arange(LAYER_POLY_DEGREE + 1, dtype=c.dtype, device=c.device)


def _check_pair(showers: torch.Tensor, energies: torch.Tensor, n_voxels: int) -> None:
    if showers.dim() != 2 or showers.shape[1] != n_voxels:
        raise ValueError(f"showers must be [N, {n_voxels}], got shape {tuple(showers.shape)}")
    if energies.shape != (showers.shape[0], 1):
        raise ValueError(f"energies must be [{showers.shape[0]}, 1], got shape {tuple(energies.shape)}")


def _fit_affine_polynomials(c: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Coefficients of the mean and log std of y [N, L] as polynomials in c [N, 1].

    Fitted to the mean and std per incident energy (or per quantile bin of c when energies
    are continuous), weighted by the counts: a regression on single samples would need the
    distribution's shape (the layer values are bimodal where layers are often empty).
    """
    values = torch.unique(c[:, 0])
    if len(values) > _MAX_ENERGY_BINS:
        edges = torch.quantile(c[:, 0], torch.linspace(0, 1, _MAX_ENERGY_BINS + 1, dtype=c.dtype))
        group = torch.bucketize(c[:, 0], edges[1:-1])
    else:
        group = torch.bucketize(c[:, 0], values)
    centres, means, log_stds, weights = [], [], [], []
    for g in torch.unique(group):
        sel = group == g
        if int(sel.sum()) < 2:
            continue
        centres.append(c[sel, 0].mean())
        means.append(y[sel].mean(0))
        log_stds.append(torch.log(y[sel].std(0).clamp_min(1e-6)))
        weights.append(sel.sum().double().sqrt())
    if not centres:
        raise ValueError("showers: need at least 2 showers at one incident energy to fit the preprocessing")
    w = torch.stack(weights)[:, None]
    basis = _powers(torch.stack(centres)[:, None]) * w
    # gelsd: the basis is rank-deficient with fewer energies than coefficients (minimum norm).
    mean_coef = torch.linalg.lstsq(basis, torch.stack(means) * w, driver="gelsd").solution
    log_std_coef = torch.linalg.lstsq(basis, torch.stack(log_stds) * w, driver="gelsd").solution
    return mean_coef, log_std_coef


class Preprocessing(nn.Module):
    """Invertible maps between physical showers (MeV) and the networks' inputs."""

    def __init__(self, n_voxels: int, layer_sizes: tuple[int, ...], scale: float = PHOTON_SCALE):
        super().__init__()
        if sum(layer_sizes) != n_voxels:
            raise ValueError(f"layer_sizes must sum to n_voxels={n_voxels}, got {sum(layer_sizes)}")
        if not scale > 0:
            raise ValueError(f"scale must be positive, got {scale}")
        self.n_voxels, self.layer_sizes, self.scale = n_voxels, tuple(layer_sizes), float(scale)
        n_layers = len(layer_sizes)
        # Defaults are identity maps; fit() replaces them with the training data's.
        self.register_buffer("log_e_range", torch.tensor([0.0, 1.0], dtype=torch.float64))
        self.register_buffer("voxel_mean", torch.zeros(n_voxels))
        self.register_buffer("voxel_std", torch.ones(n_voxels))
        # Polynomial coefficients [degree + 1, n_layers] of the mean and log std of the layer values.
        self.register_buffer("layer_mean_coef", torch.zeros(LAYER_POLY_DEGREE + 1, n_layers, dtype=torch.float64))
        self.register_buffer("layer_log_std_coef", torch.zeros(LAYER_POLY_DEGREE + 1, n_layers, dtype=torch.float64))
        # Range of the standardised layer values in training: samples are clamped to it, since
        # 10**y turns a flow's rare far-tail draw into a layer with many times E_inc.
        self.register_buffer("layer_low", torch.full((n_layers,), -torch.inf))
        self.register_buffer("layer_high", torch.full((n_layers,), torch.inf))
        self.register_buffer("remainder_layer", torch.tensor(n_layers - 1))
        self.register_buffer("fitted", torch.tensor(False))
        # Layer of each voxel: spreads per-layer factors over voxels by indexing (persistent=False:
        # derived from layer_sizes, so not part of a checkpoint).
        sizes = torch.tensor(self.layer_sizes)
        self.register_buffer("voxel_layer", torch.repeat_interleave(torch.arange(n_layers), sizes), persistent=False)

    @property
    def n_layers(self) -> int:
        return len(self.layer_sizes)

    # --- fitting -------------------------------------------------------------------
    @torch.no_grad()
    def fit(
        self, showers: torch.Tensor, energies: torch.Tensor, generator: torch.Generator | None = None
    ) -> Preprocessing:
        _check_pair(showers, energies, self.n_voxels)
        if showers.shape[0] < 2:
            raise ValueError(f"showers: need at least 2 showers to fit the preprocessing, got {showers.shape[0]}")
        if not bool(torch.all(energies > 0)):
            raise ValueError("energies must be positive (MeV)")
        if bool((showers < 0).any()):
            raise ValueError("showers must be non-negative (MeV)")
        log_e = torch.log10(energies.double())
        lo, hi = log_e.min(), log_e.max()
        if hi - lo < 1e-6:  # one incident energy: any width maps it to 0
            hi = lo + 1.0
        self.log_e_range.copy_(torch.stack([lo, hi]))
        layers = self.layer_energies(showers.double())
        # The remainder layer is the one with the largest share: 1 - (small shares) stays positive.
        self.remainder_layer.fill_(int(torch.argmax(layers.sum(0))))
        x = self._layer_fractions(showers.double(), layers)
        self.voxel_mean.copy_(x.mean(0))
        # A voxel that never fires has std 0: keep it at 1 so the map stays invertible.
        std = x.std(0)
        self.voxel_std.copy_(torch.where(std > 1e-12, std, torch.ones_like(std)))
        y = self._raw_layer_values(layers, energies.double(), generator)
        c = self.energy_to_condition(energies).double()
        mean_coef, log_std_coef = _fit_affine_polynomials(c, y)
        self.layer_mean_coef.copy_(mean_coef)
        self.layer_log_std_coef.copy_(log_std_coef)
        basis = _powers(c)
        y = (y - basis @ mean_coef) / self._layer_std(basis)
        self.layer_low.copy_(y.min(0).values)
        self.layer_high.copy_(y.max(0).values)
        self.fitted.fill_(True)
        return self

    # --- incident energy --------------------------------------------------------------
    def energy_to_condition(self, energies: torch.Tensor) -> torch.Tensor:
        """[N, 1] MeV → [N, 1] in [0, 1] over the training range (min-max on log10)."""
        lo, hi = self.log_e_range
        return ((torch.log10(energies.double()) - lo) / (hi - lo)).to(self.voxel_mean.dtype)

    def condition_to_energy(self, condition: torch.Tensor) -> torch.Tensor:
        lo, hi = self.log_e_range
        return (10 ** (condition.double() * (hi - lo) + lo)).to(self.voxel_mean.dtype)

    # --- voxels ---------------------------------------------------------------------------
    def _layer_fractions(self, showers, layers):
        per_voxel = layers[:, self.voxel_layer]
        return torch.where(per_voxel > 0, showers / per_voxel.clamp_min(1e-30), torch.zeros_like(showers))

    def voxels_forward(self, showers: torch.Tensor, layers: torch.Tensor | None = None) -> torch.Tensor:
        """Showers [N, n_voxels] (MeV) → standardised voxel shares of their layer's energy."""
        if showers.dim() != 2 or showers.shape[1] != self.n_voxels:
            raise ValueError(f"showers must be [N, {self.n_voxels}], got shape {tuple(showers.shape)}")
        layers = self.layer_energies(showers) if layers is None else layers
        return (self._layer_fractions(showers, layers) - self.voxel_mean) / self.voxel_std

    def voxels_inverse(self, x: torch.Tensor, layers: torch.Tensor) -> torch.Tensor:
        """Standardised shares [N, n_voxels] and layer energies [N, n_layers] (MeV) → showers (MeV).

        The shares are clamped at 0 (an MLP undershoots zero; a negative deposit is unphysical)
        and renormalised within each layer, so each layer holds exactly its energy; a layer
        whose decoded shares are all zero gets its energy spread evenly.
        """
        if x.dim() != 2 or x.shape[1] != self.n_voxels:
            raise ValueError(f"x must be [N, {self.n_voxels}], got shape {tuple(x.shape)}")
        if layers.shape != (x.shape[0], self.n_layers):
            raise ValueError(f"layers must be [{x.shape[0]}, {self.n_layers}], got shape {tuple(layers.shape)}")
        share = (x * self.voxel_std + self.voxel_mean).clamp_min(0)
        sums = self.layer_energies(share)
        sizes = torch.tensor(self.layer_sizes, dtype=share.dtype, device=share.device)
        empty = sums <= 0
        share = torch.where(empty[:, self.voxel_layer], (1 / sizes)[self.voxel_layer].expand_as(share), share)
        sums = torch.where(empty, torch.ones_like(sums), sums)
        return share * (layers / sums)[:, self.voxel_layer]

    # --- energy per layer -----------------------------------------------------------------
    def _layer_std(self, basis):
        # Bounded so that a wild polynomial between training energies cannot blow up or vanish.
        return torch.exp((basis @ self.layer_log_std_coef).clamp(-12, 3))

    def _layer_affine(self, energies):
        """Per-shower mean and std [N, n_layers] (float64) of the raw layer values."""
        basis = _powers(self.energy_to_condition(energies).double())
        return basis @ self.layer_mean_coef, self._layer_std(basis)

    def layer_energies(self, showers: torch.Tensor) -> torch.Tensor:
        """[N, n_voxels] → [N, n_layers] sums per layer."""
        return torch.stack([part.sum(1) for part in showers.split(self.layer_sizes, dim=1)], dim=1)

    def _raw_layer_values(self, layers, energies, generator=None):
        total = layers.sum(1, keepdim=True)
        shares = layers / total.clamp_min(1e-30)
        # u ~ U(1/2, 1): an empty layer becomes a box half a decade wide at log10(delta), not a
        # long tail towards -inf (log10 of U(0, 1) reaches -5 decades below delta in 10^5 draws).
        noise = 0.5 + 0.5 * torch.rand(shares.shape, generator=generator, dtype=shares.dtype).to(shares.device)
        y = torch.log10(shares + SHARE_DELTA * noise)
        y[:, int(self.remainder_layer)] = torch.log10(total[:, 0] / energies[:, 0] + TOTAL_EPS)
        return y

    def layers_forward(
        self, layers: torch.Tensor, energies: torch.Tensor, generator: torch.Generator | None = None
    ) -> torch.Tensor:
        """Layer energies [N, n_layers] (MeV) → the layer flow's standardised, dequantised values.

        Column ``remainder_layer`` holds log10(E_tot / E_inc); the others log10 of the shares.
        """
        if layers.dim() != 2 or layers.shape[1] != self.n_layers:
            raise ValueError(f"layers must be [N, {self.n_layers}], got shape {tuple(layers.shape)}")
        if energies.shape != (layers.shape[0], 1):
            raise ValueError(f"energies must be [{layers.shape[0]}, 1], got shape {tuple(energies.shape)}")
        y = self._raw_layer_values(layers.double(), energies.double(), generator)
        mean, std = self._layer_affine(energies)
        return ((y - mean) / std).to(layers.dtype)

    def layers_inverse(self, y: torch.Tensor, energies: torch.Tensor, clamp: bool = True) -> torch.Tensor:
        """Layer energies (MeV); ``clamp``: first clamp y to the training range (sampling)."""
        if clamp:
            y = torch.maximum(torch.minimum(y, self.layer_high), self.layer_low)
        mean, std = self._layer_affine(energies)
        raw = y.double() * std + mean
        r = int(self.remainder_layer)
        total = (10 ** raw[:, r] - TOTAL_EPS).clamp_min(0) * energies[:, 0]
        shares = 10**raw
        shares = torch.where(shares < SHARE_DELTA, torch.zeros_like(shares), shares)  # dequantised empty layer
        shares[:, r] = 0
        others = shares.sum(1)
        # The other shares may exceed 1 in a far-tail draw: scale them to 1, the remainder is then empty.
        shares = shares / others.clamp_min(1)[:, None]
        shares[:, r] = (1 - others).clamp_min(0)
        return (shares * total[:, None]).to(y.dtype)
