"""hepgen.ops.set_pool beyond the conformance suite (tests/ops/conformance): exact zeros for empty
sets, forced-backend errors, and the default backend on any shape (hypothesis)."""

import pytest
import torch
from oracle import backend_params, devices

import hepgen.ops as ops
from hepgen.ops.set_pool import set_pool_reference

ALL_PARAMS = [p for dev in devices() for p in backend_params(dev)]


def _inputs(B, N, D, device, seed, mask_kind="bool"):
    g = torch.Generator().manual_seed(seed)
    x64 = torch.randn(B, N, D, generator=g, dtype=torch.float64)
    if mask_kind == "bool":
        mask = torch.rand(B, N, generator=g) < 0.6
        if B > 1:
            mask[1] = False  # an empty set inside a non-empty batch
    else:
        mask = torch.rand(B, N, generator=g, dtype=torch.float64) * (torch.rand(B, N, generator=g) < 0.6)
    return x64.to(device), mask.to(device)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_empty_set_has_mean_zero_not_nan(device, backend):
    x = torch.randn(3, 4, 2, device=device, requires_grad=True)
    mask = torch.zeros(3, 4, dtype=torch.bool, device=device)
    with ops.use_backend(backend):
        out = ops.set_pool(x, mask)
        (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(out, torch.zeros(3, 4, device=device))
    assert torch.equal(g, torch.zeros_like(x))


def test_forced_backend_that_cannot_run_is_a_clear_error(monkeypatch):
    x, mask = torch.randn(2, 3, 4), torch.ones(2, 3, dtype=torch.bool)
    with pytest.raises(RuntimeError, match="backend 'cuda' was requested but cannot run"):
        with ops.use_backend("cuda"):
            ops.set_pool(x, mask)
    with pytest.raises(ValueError, match="backend must be one of"):
        with ops.use_backend("fastest"):
            pass
    with pytest.raises(ValueError, match="unknown op"):
        with ops.use_backend({"no_such_op": "cpu"}):
            pass
    monkeypatch.setenv("HEPGEN_BACKEND", "reference")
    assert ops.registered_ops()["set_pool"].choose(torch.device("cpu"), torch.float32) == "reference"
    monkeypatch.setenv("HEPGEN_BACKEND", "bogus")
    with pytest.raises(ValueError, match="HEPGEN_BACKEND must be one of"):
        ops.set_pool(x, mask)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(deadline=None)
@given(
    B=st.integers(0, 6),
    N=st.integers(0, 40),
    D=st.integers(0, 20),
    scale=st.floats(-10, 10),
    seed=st.integers(0, 2**31 - 1),
)
def test_default_backend_matches_reference_on_any_shape(B, N, D, scale, seed):
    x, mask = _inputs(B, N, D, "cpu", seed, mask_kind="float" if seed % 2 else "bool")
    torch.testing.assert_close(ops.set_pool(x, mask, scale), set_pool_reference(x, mask, scale), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_mask_weights_rule_is_the_same_on_every_backend(device, backend):
    """The documented rule: weights are used as given (0 excludes a particle; negative weights
    count with their sign; a set whose weights sum to 0 has mean 0; NaN/inf propagate to the
    set's outputs), and a padded particle's gradient is 0 whatever the output gradient holds."""
    nan, inf = float("nan"), float("inf")
    x = torch.tensor([[[1.0], [2.0], [4.0]], [[1.0], [2.0], [4.0]], [[1.0], [2.0], [4.0]], [[1.0], [2.0], [4.0]]])
    mask = torch.tensor([[1.0, -1.0, 0.0], [2.0, 0.0, -1.0], [nan, 1.0, 0.0], [inf, 1.0, 0.0]])
    x = x.to(device).requires_grad_()
    with ops.use_backend(backend):
        out = ops.set_pool(x, mask.to(device), 0.5)
        (gx,) = torch.autograd.grad(out, x, torch.tensor([[1.0, nan]] * 4, device=device))
    out = out.detach().cpu()
    assert out[0].tolist() == [0.0, -0.5]  # weights sum to 0: mean 0, sum 0.5 * (1 - 2)
    assert out[1].tolist() == [-2.0, -1.0]  # (2 - 4) / (2 - 1)
    assert out[2].isnan().all() and out[3].isnan()[0]  # NaN weight; inf / inf
    assert (gx[mask == 0] == 0).all()  # padding: exactly 0 although the output gradient is NaN


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_weights_summing_to_zero_give_mean_zero_even_for_an_infinite_total(device, backend):
    """Found by tests/ops/fuzz: cpu and triton computed the mean as total · 0 (NaN for an infinite
    total) where the reference selects 0."""
    x = torch.tensor([[[float("inf")], [1.0], [float("nan")]]], device=device)
    mask = torch.tensor([[1.0, -1.0, 0.0]], device=device)
    with ops.use_backend(backend):
        out = ops.set_pool(x, mask, 0.5)
    assert out.cpu().tolist() == [[0.0, float("inf")]]
