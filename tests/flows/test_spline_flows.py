"""hepgen.flows: spline flows normalise, invert, agree with nflows, sample consistently, learn."""

import math

import pytest
import torch

from hepgen.flows import (
    LULinear,
    MaskedRQSAutoregressiveTransform,
    RandomPermutation,
    RQSCouplingTransform,
    alternating_mask,
    autoregressive_spline_flow,
    coupling_spline_flow,
)

torch.set_default_dtype(torch.float32)


def _perturb(module, scale=0.3, seed=0):
    """Move every parameter away from its identity-like initialisation, reproducibly."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.add_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
    return module


def _flows(features, context):
    g = torch.Generator().manual_seed(1)
    return {
        "coupling": coupling_spline_flow(features, context, hidden_features=16, num_blocks=2, generator=g),
        "autoregressive": autoregressive_spline_flow(features, context, num_layers=2, hidden_features=16, generator=g),
    }


@pytest.mark.parametrize("kind", ["coupling", "autoregressive"])
def test_density_integrates_to_one_in_2d(kind):
    flow = _perturb(_flows(2, 1)[kind].double(), scale=0.1)
    n = 401
    axis = torch.linspace(-8, 8, n, dtype=torch.float64)
    grid = torch.stack(torch.meshgrid(axis, axis, indexing="ij"), dim=-1).reshape(-1, 2)
    for c in (-1.0, 0.7):
        with torch.no_grad():
            p = flow.log_prob(grid, torch.full((grid.shape[0], 1), c, dtype=torch.float64)).exp().view(n, n)
        integral = torch.trapezoid(torch.trapezoid(p, axis), axis).item()
        assert abs(integral - 1) < 1e-2, integral


def test_density_integrates_to_one_in_1d():
    flow = _perturb(autoregressive_spline_flow(1, 2, num_layers=3, hidden_features=8).double(), scale=0.5)
    x = torch.linspace(-12, 12, 20001, dtype=torch.float64).unsqueeze(1)
    with torch.no_grad():
        p = flow.log_prob(x, torch.tensor([[0.3, -1.0]], dtype=torch.float64).expand(x.shape[0], 2)).exp()
    assert abs(torch.trapezoid(p, x[:, 0]).item() - 1) < 1e-3


@pytest.mark.parametrize("kind", ["coupling", "autoregressive"])
def test_inverse_round_trip_and_log_det_sign(kind):
    flow = _perturb(_flows(5, 3)[kind].double())
    x, c = torch.randn(64, 5, dtype=torch.float64) * 1.5, torch.randn(64, 3, dtype=torch.float64)
    with torch.no_grad():
        z, ld = flow.transform(x, c)
        x2, ld_inv = flow.transform.inverse(z, c)
    torch.testing.assert_close(x2, x, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(ld_inv, -ld, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("kind", ["coupling", "autoregressive"])
def test_sample_log_prob_is_the_log_prob_of_the_samples(kind):
    flow = _perturb(_flows(4, 2)[kind].double())
    context = torch.randn(3, 2, dtype=torch.float64)
    with torch.no_grad():
        samples, lp = flow.sample_and_log_prob(5, context)
        assert samples.shape == (3, 5, 4) and lp.shape == (3, 5)
        again = flow.log_prob(samples.reshape(15, 4), context.repeat_interleave(5, dim=0)).view(3, 5)
    torch.testing.assert_close(lp, again, rtol=1e-8, atol=1e-8)
    assert flow.sample(7, context).shape == (3, 7, 4)


def test_autoregressive_layer_is_autoregressive():
    layer = _perturb(MaskedRQSAutoregressiveTransform(4, 16, context_features=2).double())
    x, c = torch.randn(1, 4, dtype=torch.float64), torch.randn(1, 2, dtype=torch.float64)
    jac = torch.autograd.functional.jacobian(lambda t: layer(t, c)[0], x)[0, :, 0, :]
    assert torch.equal(jac.triu(1), torch.zeros_like(jac))  # output d depends on inputs <= d only
    logdet = layer(x, c)[1]
    torch.testing.assert_close(logdet[0], jac.diagonal().abs().log().sum())


def test_layers_log_det_matches_the_jacobian():
    x, c = torch.randn(1, 5, dtype=torch.float64), torch.randn(1, 2, dtype=torch.float64)
    for layer in (
        _perturb(LULinear(5).double()),
        RandomPermutation(5),
        _perturb(RQSCouplingTransform(alternating_mask(5, True), 8, 2, 2).double()),
    ):
        jac = torch.autograd.functional.jacobian(lambda t: layer(t, c)[0], x)[0, :, 0, :]
        torch.testing.assert_close(layer(x, c)[1][0], torch.linalg.slogdet(jac)[1])


def test_log_prob_agrees_with_nflows_carrying_the_same_weights():
    pytest.importorskip("nflows")
    from nflows import distributions, flows, transforms
    from nflows.nn.nets import ResidualNet as NflowsResidualNet
    from nflows.utils import torchutils

    D, C = 6, 2
    ours = _perturb(
        coupling_spline_flow(
            D,
            C,
            num_layers=4,
            hidden_features=64,
            num_blocks=3,
            num_bins=8,
            tail_bound=1.0,
            generator=torch.Generator().manual_seed(3),
        ),
        scale=0.1,
    )
    layers = []
    for i in range(4):
        layers += [
            transforms.PiecewiseRationalQuadraticCouplingTransform(
                mask=torchutils.create_alternating_binary_mask(D, even=i % 2 == 0),
                transform_net_create_fn=lambda a, b: NflowsResidualNet(a, b, 64, context_features=C, num_blocks=3),
                num_bins=8,
                tails="linear",
                tail_bound=1.0,
            ),
            transforms.RandomPermutation(D),
            transforms.LULinear(D, identity_init=True),
        ]
    theirs = flows.Flow(transforms.CompositeTransform(layers), distributions.StandardNormal([D]))
    with torch.no_grad():
        for mine, their in zip(ours.transform.transforms, theirs._transform._transforms):
            if isinstance(mine, RQSCouplingTransform):
                their.transform_net.load_state_dict(mine.transform_net.state_dict())
            elif isinstance(mine, RandomPermutation):
                their._permutation.copy_(mine._permutation)
            else:
                for name in ("lower_entries", "upper_entries", "unconstrained_upper_diag", "bias"):
                    getattr(their, name).copy_(getattr(mine, name))
        x, c = torch.randn(256, D) * 1.3, torch.randn(256, C)
        torch.testing.assert_close(ours.log_prob(x, c), theirs.log_prob(x, c), rtol=1e-4, atol=1e-4)
        z = torch.randn(32, D)
        torch.testing.assert_close(
            ours.transform.inverse(z, c[:32])[0], theirs._transform.inverse(z, c[:32])[0], rtol=1e-4, atol=1e-4
        )


def _two_moons_like(n, g):
    """A mixture of two Gaussians at (+-1.5, 0), sigma 0.5, with its exact log-density."""
    sign = torch.where(torch.rand(n, generator=g) < 0.5, -1.0, 1.0)
    x = torch.randn(n, 2, generator=g) * 0.5 + torch.stack([1.5 * sign, torch.zeros(n)], dim=1)
    return x


def _true_log_prob(x):
    comps = [-((x - torch.tensor([m, 0.0])) ** 2).sum(1) / (2 * 0.25) for m in (-1.5, 1.5)]
    return torch.logsumexp(torch.stack(comps), 0) + math.log(0.5) - math.log(2 * math.pi * 0.25)


def test_tiny_fit_to_a_known_2d_density_improves_the_nll():
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    flow = coupling_spline_flow(2, None, num_layers=4, hidden_features=32, num_blocks=2, tail_bound=3.0, generator=g)
    test = _two_moons_like(4000, g)
    best = -_true_log_prob(test).mean().item()
    with torch.no_grad():
        start = -flow.log_prob(test).mean().item()
    opt = torch.optim.Adam(flow.parameters(), lr=5e-3)
    for _ in range(250):
        loss = -flow.log_prob(_two_moons_like(512, g)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        end = -flow.log_prob(test).mean().item()
    assert end < start - 0.5, (start, end, best)
    assert end < best + 0.25, (start, end, best)


def test_bad_shapes_are_clear_errors():
    flow = coupling_spline_flow(3, 2, hidden_features=8, num_blocks=1)
    with pytest.raises(ValueError, match=r"x must be \[batch, 3\]"):
        flow.log_prob(torch.randn(4, 2), torch.randn(4, 2))
    with pytest.raises(ValueError, match="context is required"):
        flow.log_prob(torch.randn(4, 3))
    with pytest.raises(ValueError, match=r"context must be \[batch, 2\]"):
        flow.log_prob(torch.randn(4, 3), torch.randn(4, 3))
    with pytest.raises(ValueError, match="needs features >= 2"):
        coupling_spline_flow(1)
