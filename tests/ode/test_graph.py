"""CUDA-graph capture of a fixed-grid sampling loop (needs a GPU; skipped without one)."""

import pytest
import torch

from hepgen.ode import FixedGridSampler, integrate


def test_graph_flag_needs_cuda_tensors():
    sampler = FixedGridSampler(lambda t, y: -y, torch.linspace(0, 1, 5), cuda_graph=True)
    with pytest.raises(ValueError, match="cuda_graph=True needs y0 on a CUDA device"):
        sampler(torch.zeros(2, 3))


def test_without_graph_equals_integrate():
    t = torch.linspace(1, 0, 9, dtype=torch.float64)
    y0 = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(
        FixedGridSampler(lambda t, y: torch.sin(y), t, "rk4_classic")(y0),
        integrate(lambda t, y: torch.sin(y), y0, t, "rk4_classic"),
    )


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("method", ["euler", "midpoint", "rk4_classic"])
def test_graph_replay_matches_eager_loop(method):
    from hepgen.nn import EPiCNet

    net = EPiCNet(hidden=32, layers=2).cuda().eval()
    mask = torch.ones(8, 30, dtype=torch.bool, device="cuda")
    mask[1, 20:] = False
    func = lambda t, y: net(y, t, mask)  # noqa: E731
    t = torch.linspace(1, 0, 11, device="cuda")
    sampler = FixedGridSampler(func, t, method, mask, cuda_graph=True)
    with torch.no_grad():
        for _ in range(2):  # the second call replays the captured graph with new inputs
            y0 = torch.randn(8, 30, 3, device="cuda") * mask.unsqueeze(-1)
            torch.testing.assert_close(sampler(y0), integrate(func, y0, t, method, mask), rtol=1e-4, atol=1e-5)
