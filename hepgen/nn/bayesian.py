"""Mean-field Gaussian (variational Bayesian) linear layers, as in the Bayesian networks of
"Jet Diffusion versus JetGPT" (Butter, Huetsch et al.) and the Plehn group's ``VBLinear``.

Every weight w_ij has its own Gaussian q(w_ij) = N(mu_ij, sigma_ij^2), learned through
``weight_mean`` and ``weight_log_var`` (initialised to log sigma^2 ~ -9, the paper's value);
the prior is N(0, prior_std^2). The bias is an ordinary (deterministic) parameter, as in
the authors' code: it holds few parameters and carries no useful uncertainty.

Training (``module.train()``) uses the local reparametrisation trick (Kingma et al. 2015):
instead of drawing a weight matrix per batch, it draws the pre-activations
b ~ N(x mu^T + bias, x^2 sigma^2^T), which has the same marginal per sample, lower gradient
variance and costs two matrix products. Add ``kl_divergence(model) / n_train`` to the loss.

Evaluation (``module.eval()``) is deterministic: the layer uses a fixed weight draw when one
was made with :func:`resample` (one ensemble member), otherwise the means. An ensemble of K
networks is K fixed draws (:func:`weight_draws`); the spread of their histograms is the
Bayesian uncertainty.

API (stable; used by the JetGPT helper):

- ``BayesianLinear(in_features, out_features, bias=True, prior_std=1.0, init_log_var=-9.0)``
  with ``.kl()``, ``.resample(generator=None)``, ``.use_mean()``, ``.fixed``;
- ``linear(in_features, out_features, bayesian=False, **kw)``: nn.Linear or BayesianLinear;
- ``to_bayesian(module, **kw)``: every nn.Linear inside ``module`` replaced (in place) by a
  BayesianLinear whose means start from the layer's weights (e.g. a flow's conditioners);
- ``bayesian_layers(module)``, ``is_bayesian(module)``;
- ``kl_divergence(module)``: the summed KL of every Bayesian layer (a 0-d tensor);
- ``resample(module, generator=None)`` / ``use_mean(module)``: fix a new draw / go back to means;
- ``weight_draws(module, k, seed=None)``: iterate over ``k`` fixed draws (yields the member index).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

# log sigma^2 is clamped in use (as in the authors' VBLinear): below -11 the weight is
# effectively deterministic, above 11 the layer is noise; the clamp keeps exp() finite.
LOG_VAR_MIN, LOG_VAR_MAX = -11.0, 11.0


class BayesianLinear(nn.Module):
    """y = x W^T + b with W ~ N(weight_mean, exp(weight_log_var)) per entry, prior N(0, prior_std^2)."""

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, prior_std: float = 1.0, init_log_var: float = -9.0
    ):
        super().__init__()
        for name, value in (("in_features", in_features), ("out_features", out_features)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if not prior_std > 0:
            raise ValueError(f"prior_std must be positive, got {prior_std!r}")
        self.in_features, self.out_features = in_features, out_features
        self.prior_std, self.init_log_var = float(prior_std), float(init_log_var)
        self.weight_mean = nn.Parameter(torch.empty(out_features, in_features))
        self.weight_log_var = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        # The standard-normal draw of the fixed weights (not saved: a draw is not a parameter).
        self.register_buffer("_epsilon", None, persistent=False)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # Means as nn.Linear's weights (uniform, bound 1/sqrt(fan_in)); tiny variances.
        bound = 1.0 / math.sqrt(self.in_features)
        nn.init.uniform_(self.weight_mean, -bound, bound)
        nn.init.normal_(self.weight_log_var, self.init_log_var, 1e-3)
        if self.bias is not None:
            nn.init.uniform_(self.bias, -bound, bound)

    def _log_var(self) -> torch.Tensor:
        return self.weight_log_var.clamp(LOG_VAR_MIN, LOG_VAR_MAX)

    @property
    def fixed(self) -> bool:
        """Whether a weight draw is fixed (used in eval mode instead of the means)."""
        return self._epsilon is not None

    def resample(self, generator: torch.Generator | None = None) -> None:
        """Fix a new weight draw W = mu + sigma * eps (eps ~ N(0, 1)), used in eval mode."""
        self._epsilon = torch.randn(
            self.weight_mean.shape,
            generator=generator,
            dtype=self.weight_mean.dtype,
            device="cpu" if generator is not None else self.weight_mean.device,
        ).to(self.weight_mean.device)

    def use_mean(self) -> None:
        """Forget the fixed draw: eval mode uses the mean weights."""
        self._epsilon = None

    def weight(self) -> torch.Tensor:
        """The weights eval mode uses: the fixed draw, or the means."""
        if self._epsilon is None:
            return self.weight_mean
        return self.weight_mean + torch.exp(0.5 * self._log_var()) * self._epsilon

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.in_features:
            raise ValueError(f"x: expected last dimension {self.in_features}, got shape {tuple(x.shape)}")
        if not self.training:
            return F.linear(x, self.weight(), self.bias)
        # Local reparametrisation: sample the pre-activations, not the weights.
        mean = F.linear(x, self.weight_mean, self.bias)
        var = F.linear(x * x, torch.exp(self._log_var()))
        return mean + torch.sqrt(var + 1e-12) * torch.randn_like(mean)

    def kl(self) -> torch.Tensor:
        """KL(q || prior) summed over the weights, in closed form (0-d tensor)."""
        log_var = self._log_var()
        prior_var = self.prior_std**2
        return 0.5 * ((self.weight_mean**2 + log_var.exp()) / prior_var - 1.0 - log_var + math.log(prior_var)).sum()

    def extra_repr(self) -> str:
        return (
            f"in_features={self.in_features}, out_features={self.out_features}, "
            f"bias={self.bias is not None}, prior_std={self.prior_std:g}, fixed={self.fixed}"
        )


def linear(in_features: int, out_features: int, bayesian: bool = False, bias: bool = True, **kwargs) -> nn.Module:
    """An ``nn.Linear``, or a :class:`BayesianLinear` (``kwargs``: prior_std, init_log_var)."""
    if bayesian:
        return BayesianLinear(in_features, out_features, bias=bias, **kwargs)
    if kwargs:
        raise ValueError(f"{sorted(kwargs)} only apply to Bayesian layers (bayesian=True)")
    return nn.Linear(in_features, out_features, bias=bias)


def to_bayesian(module: nn.Module, **kwargs) -> nn.Module:
    """Replace every ``nn.Linear`` inside ``module`` (not ``module`` itself) by a
    :class:`BayesianLinear` with the same shape, means and bias (``kwargs``: prior_std,
    init_log_var), keeping each layer's initialisation (e.g. near-zero last layers).
    Returns ``module``."""
    for name, child in list(module.named_children()):
        if type(child) is nn.Linear:  # subclasses (masked layers) have their own forward
            layer = BayesianLinear(child.in_features, child.out_features, bias=child.bias is not None, **kwargs)
            layer = layer.to(device=child.weight.device, dtype=child.weight.dtype)
            with torch.no_grad():
                layer.weight_mean.copy_(child.weight)
                if child.bias is not None:
                    layer.bias.copy_(child.bias)
            setattr(module, name, layer)
        else:
            to_bayesian(child, **kwargs)
    return module


def bayesian_layers(module: nn.Module) -> list[BayesianLinear]:
    """Every :class:`BayesianLinear` inside ``module`` (itself included)."""
    return [m for m in module.modules() if isinstance(m, BayesianLinear)]


def is_bayesian(module: nn.Module) -> bool:
    return bool(bayesian_layers(module))


def kl_divergence(module: nn.Module) -> torch.Tensor:
    """Summed KL of every Bayesian layer of ``module``; 0 when it has none."""
    layers = bayesian_layers(module)
    if not layers:
        p = next(module.parameters(), None)
        return torch.zeros((), device=None if p is None else p.device)
    return torch.stack([layer.kl() for layer in layers]).sum()


def resample(module: nn.Module, generator: torch.Generator | None = None) -> None:
    """Fix a new weight draw in every Bayesian layer (one ensemble member)."""
    for layer in bayesian_layers(module):
        layer.resample(generator)


def use_mean(module: nn.Module) -> None:
    """Every Bayesian layer back to its mean weights (in eval mode)."""
    for layer in bayesian_layers(module):
        layer.use_mean()


@contextmanager
def _eval_mode(module: nn.Module):
    was_training = module.training
    module.eval()
    try:
        yield
    finally:
        module.train(was_training)


def weight_draws(module: nn.Module, k: int, seed: int | None = None) -> Iterator[int]:
    """Iterate over ``k`` ensemble members: before each yield (of the member index 0..k-1)
    every Bayesian layer holds a fresh fixed draw and the module is in eval mode; afterwards
    the module's mode is restored and its layers use their means again. A module without
    Bayesian layers yields once per member with its usual (deterministic) weights."""
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    with _eval_mode(module):
        try:
            for member in range(k):
                resample(module, generator)
                yield member
        finally:
            use_mean(module)


__all__ = [
    "LOG_VAR_MAX",
    "LOG_VAR_MIN",
    "BayesianLinear",
    "bayesian_layers",
    "is_bayesian",
    "kl_divergence",
    "linear",
    "resample",
    "to_bayesian",
    "use_mean",
    "weight_draws",
]
