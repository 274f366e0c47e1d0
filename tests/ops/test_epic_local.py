"""hepgen.ops.epic_local beyond the conformance suite (tests/ops/conformance): the reference
against the published layer, exact zeros on padding, and the CPU backend's chunking.

The reference itself is checked against autograd through a plain EPiC local update written
with per-particle concatenation, so the fused per-set bias form is tied to the published layer.
"""

import pytest
import torch
from oracle import backend_params, devices

import hepgen.ops as ops
from hepgen.ops.epic_local import epic_local

# (B, N, H, H1): odd sizes, one particle, empty sets and batches, H1 != H, EPiC's 128.

ALL_PARAMS = [p for dev in devices() for p in backend_params(dev)]


def _inputs(B, N, H, H1, device, seed, dtype=torch.float64, mask_kind="bool", non_contiguous=False):
    g = torch.Generator().manual_seed(seed)
    r = lambda *s: torch.randn(*s, generator=g, dtype=dtype)  # noqa: E731
    if non_contiguous:
        x = r(B, H, N + 2)[:, :, 1 : N + 1].transpose(1, 2)
    else:
        x = r(B, N, H)
    if mask_kind == "bool":
        mask = torch.rand(B, N, generator=g) < 0.6
        if B > 1:
            mask[1] = False  # an empty set inside a non-empty batch
        if B > 2 and N > 0:
            mask[2] = True  # a full set
    else:
        mask = torch.rand(B, N, generator=g, dtype=dtype) * (torch.rand(B, N, generator=g) < 0.6)
    # Weights on the scale of a default-initialised linear layer.
    w1, w2 = r(H1, H) / max(H, 1) ** 0.5, r(H, H1) / max(H1, 1) ** 0.5
    b1, b2 = r(B, H1) * 0.5, r(B, H) * 0.5
    return [t.to(device) for t in (x, mask, w1, b1, w2, b2)]


def _published_local_update(x, mask, W3, b3, W4, b4, per_set, slope=0.01):
    """EPiC's local update as published: [x, g', t, c] concatenated to every particle."""
    N = x.shape[1]
    rep = per_set.unsqueeze(1).expand(-1, N, -1)
    act = lambda v: torch.nn.functional.leaky_relu(v, slope)  # noqa: E731
    h = act(torch.cat([x, rep], -1) @ W3.t() + b3)
    y = act(torch.cat([h, rep], -1) @ W4.t() + b4 + x) * mask.unsqueeze(-1)
    m = mask.unsqueeze(-1)
    return y, torch.cat([(y * m).sum(1) / m.sum(1).clamp_min(1), (y * m).sum(1) * 0.01], -1)


def test_reference_equals_published_layer_with_per_set_bias():
    g = torch.Generator().manual_seed(0)
    B, N, H, S = 4, 9, 12, 7  # S: size of the per-set vector [g', t, c]
    x = torch.randn(B, N, H, generator=g, dtype=torch.float64, requires_grad=True)
    mask = (torch.rand(B, N, generator=g) < 0.7).double()
    per_set = torch.randn(B, S, generator=g, dtype=torch.float64)
    W3 = torch.randn(H, H + S, generator=g, dtype=torch.float64, requires_grad=True)
    W4 = torch.randn(H, H + S, generator=g, dtype=torch.float64, requires_grad=True)
    b3, b4 = torch.randn(H, generator=g, dtype=torch.float64), torch.randn(H, generator=g, dtype=torch.float64)
    y_pub, p_pub = _published_local_update(x, mask, W3, b3, W4, b4, per_set)
    bias1 = per_set @ W3[:, H:].t() + b3
    bias2 = per_set @ W4[:, H:].t() + b4
    for backend in ("reference", "cpu"):
        if ops.why_unavailable(backend, torch.device("cpu"), torch.float64):
            continue
        with ops.use_backend(backend):
            y, p = epic_local(x, mask, W3[:, :H], bias1, W4[:, :H], bias2)
        torch.testing.assert_close(y, y_pub)
        torch.testing.assert_close(p, p_pub)
        w = torch.randn_like(y)
        g_pub = torch.autograd.grad((y_pub * w).sum() + p_pub.sum(), (x, W3, W4), retain_graph=True)
        g_ours = torch.autograd.grad((y * w).sum() + p.sum(), (x, W3, W4), retain_graph=True)
        for a, b in zip(g_ours, g_pub):
            torch.testing.assert_close(a, b)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_padding_is_never_read_and_output_zero(device, backend):
    x, mask, w1, b1, w2, b2 = [a.float() if a.is_floating_point() else a for a in _inputs(4, 9, 5, 6, device, seed=3)]
    x = x.masked_fill(~mask.unsqueeze(-1), float("nan")).requires_grad_()
    with ops.use_backend(backend):
        y, pooled = epic_local(x, mask, w1, b1, w2, b2)
    assert torch.isfinite(y).all() and torch.isfinite(pooled).all()
    assert (y[~mask] == 0).all()
    (gx,) = torch.autograd.grad(y.sum() + pooled.sum(), x)
    assert torch.isfinite(gx).all() and (gx[~mask] == 0).all()


def test_cpu_forward_in_chunks_of_whole_sets_matches_one_pass(monkeypatch):
    import importlib

    module = importlib.import_module("hepgen.ops.compiled.epic_local")
    if ops.why_unavailable("cpu", torch.device("cpu"), torch.float64):
        pytest.skip(ops.why_unavailable("cpu", torch.device("cpu"), torch.float64))
    args = _inputs(9, 37, 6, 5, "cpu", seed=21)
    args[1][4, :30] = True  # one set larger than a chunk
    with ops.use_backend("cpu"):
        whole = epic_local(*args)
        monkeypatch.setattr(module, "CPU_CHUNK_ROWS", 7)
        assert len(module._set_chunks(module._pack(args[0], args[1].double())[1], 7)) > 3
        chunked = epic_local(*args)
    for a, b in zip(chunked, whole):
        torch.testing.assert_close(a, b, rtol=1e-14, atol=1e-14)


def _strided_bias_trial(backend, seed):
    """Gradients of the issue's case (B=5, N=13, H=2, H1=7, float64) with bias1 a view b[::2]."""
    g = torch.Generator().manual_seed(seed)
    B, N, H, H1 = 5, 13, 2, 7
    x = torch.randn(B, N, H, generator=g, dtype=torch.float64).requires_grad_()
    mask = torch.rand(B, N, generator=g) < 0.7
    w1 = torch.randn(H1, H, generator=g, dtype=torch.float64).requires_grad_()
    w2 = torch.randn(H, H1, generator=g, dtype=torch.float64).requires_grad_()
    b = torch.randn(2 * B, H1, generator=g, dtype=torch.float64).requires_grad_()
    b2 = torch.randn(B, H, generator=g, dtype=torch.float64)
    with ops.use_backend(backend):
        y, pooled = epic_local(x, mask, w1, b[::2], w2, b2)
        return torch.autograd.grad((y * y).sum() + (pooled * pooled).sum(), (x, w1, b, w2))


@pytest.mark.parametrize("backend", [p.values[1] for p in backend_params("cpu", torch.float64, op="epic_local")][1:])
def test_gradients_with_a_strided_bias1_match_the_reference(backend):
    """Issue 19: cpu gradients of x and w2 were wrong (up to 0.13) with bias1 = b[::2]."""
    if ops.why_unavailable(backend, torch.device("cpu"), torch.float64, "epic_local"):
        pytest.skip(ops.why_unavailable(backend, torch.device("cpu"), torch.float64, "epic_local"))
    for seed in range(20 if backend == "cpu" else 3):
        for ours, ref in zip(_strided_bias_trial(backend, seed), _strided_bias_trial("reference", seed)):
            torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_negative_mask_weights_get_the_true_gradient(device, backend):
    """y = m · act(z2): with m < 0, act'(z2) is read from y's sign relative to m's (every backend
    read it from y alone and gave such rows the slope where z2 > 0, or 1 where z2 < 0)."""
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 6, 4, generator=g, dtype=torch.float64)
    mask = torch.tensor([-1.0, 0.5, 0.0, 2.0, -0.5, 1.0], dtype=torch.float64).repeat(3, 1)
    w1, w2 = torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(4, 5, generator=g, dtype=torch.float64)
    b1, b2 = torch.randn(3, 5, generator=g, dtype=torch.float64), torch.randn(3, 4, generator=g, dtype=torch.float64)
    dtype = torch.float64 if backend in ("reference", "cpu") else torch.float32
    leaves = [t.to(device, dtype).requires_grad_() for t in (x, w1, b1, w2, b2)]
    m = mask.to(device, dtype)
    with ops.use_backend(backend):
        y, pooled = epic_local(leaves[0], m, leaves[1], leaves[2], leaves[3], leaves[4], 0.3, 0.1)
        ours = torch.autograd.grad(y.sum() + pooled.sum(), leaves)
    ref_leaves = [t.detach().double().cpu().requires_grad_() for t in leaves]
    ry, rp = ops.epic_local_reference(ref_leaves[0], m.double().cpu(), *ref_leaves[1:], 0.3, 0.1)
    truth = torch.autograd.grad(ry.sum() + rp.sum(), ref_leaves)  # autograd through the forward spec
    tol = 1e-10 if dtype == torch.float64 else 1e-4
    for a, b in zip(ours, truth):
        torch.testing.assert_close(a.double().cpu(), b, rtol=tol, atol=tol)
