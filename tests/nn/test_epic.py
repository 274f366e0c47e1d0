"""hepgen.nn.EPiCNet (fused ops) against the published, concatenating EPiC with the same weights."""

import pytest
import torch

import hepgen.ops as ops
from hepgen.bench.epic_baseline import plain_epic_forward
from hepgen.nn import EPiCLayer, EPiCNet, cosine_time_embedding


def _jets(B, N, F, seed, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(B, N, F, generator=g, dtype=dtype)
    n = torch.randint(0, N + 1, (B,), generator=g)
    n[0] = N  # one full jet
    if B > 1:
        n[1] = 0  # one empty jet
    mask = torch.arange(N).unsqueeze(0) < n.unsqueeze(1)
    return x, mask


@pytest.mark.parametrize("backend", ["reference", "cpu"])
@pytest.mark.parametrize("weight_norm, cond_dim", [(True, 0), (False, 2), (True, 3)])
def test_network_matches_published_epic_float64(backend, weight_norm, cond_dim):
    if ops.why_unavailable(backend, torch.device("cpu"), torch.float64):
        pytest.skip(ops.why_unavailable(backend, torch.device("cpu"), torch.float64))
    torch.manual_seed(0)
    net = EPiCNet(
        features=3, hidden=16, latent=5, layers=3, time_dim=8, cond_dim=cond_dim, weight_norm=weight_norm
    ).double()
    x, mask = _jets(5, 11, 3, seed=1)
    t = torch.rand(5, dtype=torch.float64)
    cond = torch.randn(5, cond_dim, dtype=torch.float64) if cond_dim else None
    x.requires_grad_()
    ref = plain_epic_forward(net, x, t, mask, cond)
    with ops.use_backend(backend):
        out = net(x, t, mask, cond)
    torch.testing.assert_close(out, ref)
    assert (out[~mask] == 0).all()
    w = torch.randn_like(ref)
    params = [x] + list(net.parameters())
    g_ref = torch.autograd.grad((ref * w).sum(), params)
    with ops.use_backend(backend):
        g_out = torch.autograd.grad((net(x, t, mask, cond) * w).sum(), params)
    for a, b in zip(g_out, g_ref):
        torch.testing.assert_close(a, b)


def test_float32_network_close_to_float64():
    torch.manual_seed(1)
    net = EPiCNet(hidden=32, latent=10, layers=2)
    x, mask = _jets(4, 30, 3, seed=2, dtype=torch.float32)
    # t = 0: cos(π t e^k) with k up to 31 has phases ~1e13 for t ~ 1, where float32 and float64
    # embeddings disagree completely; at t = 0 both are exact.
    out32 = net(x, 0.0, mask)
    out64 = plain_epic_forward(net.double(), x.double(), 0.0, mask)
    torch.testing.assert_close(out32.double(), out64, rtol=1e-4, atol=1e-5)


def test_default_sizes_are_epic_fm():
    net = EPiCNet()
    assert net.hidden == 128 and net.latent == 10 and len(net.layers) == 6 and net.time_dim == 32
    n_params = sum(p.numel() for p in net.parameters())
    assert 400_000 < n_params < 700_000  # the paper quotes ~0.57 M
    assert isinstance(net.layers[0], EPiCLayer)


def test_time_embedding_and_argument_errors():
    e = cosine_time_embedding(torch.tensor([0.0, 0.5]), 4)
    assert e.shape == (2, 4) and torch.equal(e[0], torch.ones(4))
    net = EPiCNet(hidden=8, layers=1, cond_dim=2)
    x, mask = torch.randn(2, 3, 3), torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"cond must have shape \(batch, cond_dim\)"):
        net(x, 0.1, mask)
    with pytest.raises(ValueError, match=r"t must be a scalar or have shape \(batch,\)"):
        net(x, torch.zeros(3), mask, torch.zeros(2, 2))
    with pytest.raises(ValueError, match=r"mask must have shape"):
        net(x, 0.1, mask[:, :2], torch.zeros(2, 2))
