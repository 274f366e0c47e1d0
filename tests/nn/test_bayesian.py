"""Mean-field Bayesian linear layers: closed-form KL, deterministic fixed draws, gradients,
the local reparametrisation's moments, ensembles."""

import math

import pytest
import torch
from torch import nn

from hepgen.nn.bayesian import (
    BayesianLinear,
    bayesian_layers,
    is_bayesian,
    kl_divergence,
    linear,
    resample,
    to_bayesian,
    use_mean,
    weight_draws,
)


def _gaussian_kl(mu, var, prior_var):
    # KL(N(mu, var) || N(0, prior_var)) per entry, written independently of the layer.
    return 0.5 * (math.log(prior_var / var) + (var + mu**2) / prior_var - 1.0)


@pytest.mark.parametrize("prior_std", [1.0, 0.5])
def test_kl_matches_closed_form(prior_std):
    torch.manual_seed(0)
    layer = BayesianLinear(3, 2, prior_std=prior_std).double()
    with torch.no_grad():
        layer.weight_mean.copy_(torch.randn(2, 3))
        layer.weight_log_var.copy_(torch.empty(2, 3).uniform_(-5, 2))
    expected = sum(
        _gaussian_kl(float(m), math.exp(float(lv)), prior_std**2)
        for m, lv in zip(layer.weight_mean.detach().flatten(), layer.weight_log_var.detach().flatten())
    )
    assert float(layer.kl().detach()) == pytest.approx(expected, rel=1e-12)
    # KL is zero exactly at the prior.
    with torch.no_grad():
        layer.weight_mean.zero_()
        layer.weight_log_var.fill_(2 * math.log(prior_std))
    assert float(layer.kl().detach()) == pytest.approx(0.0, abs=1e-12)


def test_kl_divergence_sums_layers_and_is_zero_without_any():
    model = nn.Sequential(BayesianLinear(4, 5), nn.SiLU(), BayesianLinear(5, 1), nn.Linear(1, 1))
    assert len(bayesian_layers(model)) == 2 and is_bayesian(model)
    assert torch.allclose(kl_divergence(model), model[0].kl() + model[2].kl())
    plain = nn.Sequential(nn.Linear(2, 2))
    assert not is_bayesian(plain) and float(kl_divergence(plain)) == 0.0


def test_fixed_draw_is_deterministic_and_differs_between_draws():
    torch.manual_seed(1)
    layer = BayesianLinear(6, 4, init_log_var=-2.0).eval()
    x = torch.randn(10, 6)
    assert torch.equal(layer(x), layer(x))  # eval without a draw: the means
    assert torch.allclose(layer(x), x @ layer.weight_mean.T + layer.bias)
    layer.resample(torch.Generator().manual_seed(3))
    assert layer.fixed
    first = layer(x)
    assert torch.equal(first, layer(x))  # frozen weights: same output every call
    layer.resample(torch.Generator().manual_seed(3))
    assert torch.equal(first, layer(x))  # same seed, same member
    layer.resample(torch.Generator().manual_seed(4))
    assert not torch.allclose(first, layer(x))
    layer.use_mean()
    assert torch.allclose(layer(x), x @ layer.weight_mean.T + layer.bias)


def test_training_mode_is_stochastic_with_the_right_moments():
    # Local reparametrisation: b ~ N(x mu^T + bias, x^2 sigma^2^T), checked over many draws.
    torch.manual_seed(2)
    layer = BayesianLinear(3, 2, init_log_var=-1.0).double().train()
    x = torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64).expand(200_000, 3)
    with torch.no_grad():
        out = layer(x)
    mean = x[0] @ layer.weight_mean.T + layer.bias
    std = torch.sqrt((x[0] ** 2) @ layer.weight_log_var.exp().T)
    assert torch.allclose(out.mean(0), mean.detach(), atol=5 * float(std.max().detach()) / math.sqrt(len(x)))
    assert torch.allclose(out.std(0), std.detach(), rtol=0.01)


def test_gradients_reach_means_log_variances_bias_and_input():
    torch.manual_seed(3)
    layer = BayesianLinear(4, 3).train()
    x = torch.randn(8, 4, requires_grad=True)
    loss = layer(x).pow(2).sum() + layer.kl()
    loss.backward()
    for name, tensor in (
        ("mean", layer.weight_mean),
        ("log_var", layer.weight_log_var),
        ("bias", layer.bias),
        ("x", x),
    ):
        assert tensor.grad is not None and torch.isfinite(tensor.grad).all() and tensor.grad.abs().sum() > 0, name


def test_weight_draws_gives_distinct_members_and_restores_state():
    torch.manual_seed(4)
    model = nn.Sequential(linear(2, 8, bayesian=True, init_log_var=-3.0), nn.Tanh(), linear(8, 1, bayesian=True))
    model.train()
    x = torch.randn(5, 2)
    outs = [model(x) for _ in weight_draws(model, 3, seed=0)]
    assert model.training and not any(layer.fixed for layer in bayesian_layers(model))
    assert not torch.allclose(outs[0], outs[1])
    again = [model(x) for _ in weight_draws(model, 3, seed=0)]
    assert all(torch.equal(a, b) for a, b in zip(outs, again))  # a seed reproduces the ensemble
    resample(model)
    use_mean(model)
    assert not any(layer.fixed for layer in bayesian_layers(model))


def test_checkpoint_holds_parameters_not_the_draw():
    layer = BayesianLinear(2, 2)
    layer.resample()
    assert set(layer.state_dict()) == {"weight_mean", "weight_log_var", "bias"}


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="in_features"):
        BayesianLinear(0, 2)
    with pytest.raises(ValueError, match="prior_std"):
        BayesianLinear(2, 2, prior_std=0.0)
    with pytest.raises(ValueError, match="last dimension 3"):
        BayesianLinear(3, 2)(torch.zeros(1, 4))
    with pytest.raises(ValueError, match="only apply to Bayesian"):
        linear(2, 2, prior_std=1.0)
    with pytest.raises(ValueError, match="k must be"):
        list(weight_draws(nn.Linear(1, 1), 0))
    assert isinstance(linear(2, 3), nn.Linear)


def test_to_bayesian_keeps_the_function_at_the_means():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Sequential(nn.Linear(4, 2)))
    x = torch.randn(6, 3)
    before = model(x)
    to_bayesian(model, init_log_var=-9.0)
    assert len(bayesian_layers(model)) == 2 and not any(type(m) is nn.Linear for m in model.modules())
    assert torch.allclose(model.eval()(x), before)
