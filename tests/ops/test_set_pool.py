"""hepgen.ops.set_pool: every backend against the float64 reference, forward and backward."""

import pytest
import torch

import hepgen.ops as ops
from hepgen.ops.set_pool import SET_POOL, set_pool_backward_reference, set_pool_reference

_set_pool_op = SET_POOL.custom_op
from oracle import assert_close_to_reference, backend_params, devices

# (B, N, D): odd sizes, a single particle, empty sets and batches, wide features.
SHAPES = [(1, 1, 1), (3, 0, 5), (0, 4, 3), (4, 1, 7), (5, 33, 13), (2, 150, 3), (3, 17, 129), (2, 5, 0), (7, 30, 128)]

ALL_PARAMS = [p for dev in devices() for p in backend_params(dev)]


def _inputs(B, N, D, device, seed, mask_kind="bool", non_contiguous=False, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    if non_contiguous:
        # A view with permuted strides and a gap between sets.
        x64 = (torch.randn(B, D, N + 2, generator=g, dtype=torch.float64) * scale)[:, :, 1:N + 1].transpose(1, 2)
    else:
        x64 = torch.randn(B, N, D, generator=g, dtype=torch.float64) * scale
    if mask_kind == "bool":
        mask = torch.rand(B, N, generator=g) < 0.6
        if B > 1:
            mask[1] = False  # an empty set inside a non-empty batch
    else:
        mask = torch.rand(B, N, generator=g, dtype=torch.float64) * (torch.rand(B, N, generator=g) < 0.6)
    return x64.to(device), mask.to(device)


def _run(backend, x, mask, sum_scale=0.01):
    with ops.use_backend(backend):
        return ops.set_pool(x, mask, sum_scale)


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("mask_kind", ["bool", "float"])
def test_forward_and_gradient_match_float64_reference(device, backend, shape, mask_kind):
    seed = hash((backend, shape, mask_kind)) % 2**31  # fresh inputs per case
    x64, mask = _inputs(*shape, device, seed, mask_kind)
    x32 = x64.float()
    ref64 = set_pool_reference(x64, mask, 0.37)
    ref32 = set_pool_reference(x32, mask, 0.37)
    out = _run(backend, x32.clone().requires_grad_(), mask, 0.37)
    assert_close_to_reference(out, ref32, ref64, what=f"output (seed {seed})")

    # Gradients of a generic scalar function of the output.
    w = torch.randn(out.shape, dtype=torch.float64, device=device)
    xg = x32.clone().requires_grad_()
    # The backend is chosen per call, backward included: take the gradient inside the block.
    with ops.use_backend(backend):
        (gx,) = torch.autograd.grad((ops.set_pool(xg, mask, 0.37) * w.float()).sum(), xg)
    gref64 = set_pool_backward_reference(w, mask, 0.37)
    gref32 = set_pool_backward_reference(w.float(), mask, 0.37)
    assert_close_to_reference(gx, gref32, gref64, what=f"grad x (seed {seed})")


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_non_contiguous_and_large_values(device, backend):
    x64, mask = _inputs(6, 41, 11, device, seed=7, non_contiguous=True, scale=1e4)
    assert not x64.is_contiguous()
    mask_nc = torch.stack([mask, mask], dim=-1)[..., 0]  # non-contiguous mask view
    assert not mask_nc.is_contiguous()
    out = _run(backend, x64.float(), mask_nc)
    assert_close_to_reference(out, set_pool_reference(x64.float(), mask), set_pool_reference(x64, mask))


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_padding_is_never_read(device, backend):
    x, mask = _inputs(4, 9, 5, device, seed=3)
    x = x.float().masked_fill(~mask.unsqueeze(-1), float("nan"))
    out = _run(backend, x, mask)
    assert torch.isfinite(out).all()
    torch.testing.assert_close(out, set_pool_reference(x, mask))


@pytest.mark.parametrize("device, backend", ALL_PARAMS)
def test_empty_set_has_mean_zero_not_nan(device, backend):
    x = torch.randn(3, 4, 2, device=device, requires_grad=True)
    mask = torch.zeros(3, 4, dtype=torch.bool, device=device)
    with ops.use_backend(backend):
        out = ops.set_pool(x, mask)
        (g,) = torch.autograd.grad(out.sum(), x)
    assert torch.equal(out, torch.zeros(3, 4, device=device))
    assert torch.equal(g, torch.zeros_like(x))


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
def test_gradcheck_float64_cpu(backend):
    if ops.why_unavailable(backend, torch.device("cpu"), torch.float64):
        pytest.skip(ops.why_unavailable(backend, torch.device("cpu"), torch.float64))
    x, mask = _inputs(3, 6, 4, "cpu", seed=11, mask_kind="float")
    x.requires_grad_()
    with ops.use_backend(backend):
        assert torch.autograd.gradcheck(lambda t: ops.set_pool(t, mask, 0.3), (x,))
        assert torch.autograd.gradgradcheck(lambda t: ops.set_pool(t, mask, 0.3), (x,))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_opcheck(backend):
    if ops.why_unavailable(backend, torch.device("cpu"), torch.float32):
        pytest.skip(ops.why_unavailable(backend, torch.device("cpu"), torch.float32))
    x, mask = _inputs(4, 7, 5, "cpu", seed=5)
    with ops.use_backend(backend):
        torch.library.opcheck(_set_pool_op, (x.float().requires_grad_(), mask.float(), 0.01))
        torch.library.opcheck(_set_pool_op, (x.requires_grad_(), mask.double(), 0.5))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("backend", ["cuda", "triton"])
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_cuda_dtypes(backend, dtype):
    x64, mask = _inputs(9, 70, 33, "cuda", seed=13)
    out = _run(backend, x64.to(dtype), mask)
    assert_close_to_reference(out, set_pool_reference(x64.to(dtype), mask), set_pool_reference(x64, mask))


def test_default_choice_per_device_and_dtype():
    table = ops.registered_ops()["set_pool"]
    cpu = torch.device("cpu")
    expected = "cpu" if not ops.why_unavailable("cpu", cpu, torch.float32) else "reference"
    assert table.choose(cpu, torch.float32) == expected
    # No compiled half kernels on the CPU: the reference runs them.
    assert table.choose(cpu, torch.float16) == "reference"
    out = ops.set_pool(torch.randn(2, 3, 4, dtype=torch.float16), torch.ones(2, 3, dtype=torch.bool))
    assert out.dtype == torch.float16 and out.shape == (2, 8)


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


@pytest.mark.parametrize(
    "x, mask, scale, error, match",
    [
        (torch.randn(3, 4), torch.ones(3, 4), 0.01, ValueError, "x must have 3 dimensions"),
        (torch.randn(2, 3, 4), torch.ones(2, 4), 0.01, ValueError, r"mask must have shape \(batch, set size\) = \(2, 3\)"),
        (torch.randn(2, 3, 4), torch.ones(2, 3, 1), 0.01, ValueError, "mask must have 2 dimensions"),
        (torch.ones(2, 3, 4, dtype=torch.int64), torch.ones(2, 3), 0.01, TypeError, "x must have a floating dtype"),
        (torch.randn(2, 3, 4), torch.ones(2, 3, dtype=torch.int32), 0.01, TypeError, "mask must be bool or floating"),
        (torch.randn(2, 3, 4), torch.ones(2, 3, device="meta"), 0.01, ValueError, "mask is on meta but x is on cpu"),
        (torch.randn(2, 3, 4), torch.ones(2, 3), float("nan"), ValueError, "sum_scale must be finite"),
        (torch.randn(2, 3, 4), torch.ones(2, 3), "0.1", TypeError, "sum_scale must be a float"),
        ([[1.0]], torch.ones(2, 3), 0.01, TypeError, "x must be a torch.Tensor"),
    ],
)
def test_bad_input_is_rejected_before_any_kernel(x, mask, scale, error, match):
    with pytest.raises(error, match=match):
        ops.set_pool(x, mask, scale)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(B=st.integers(0, 6), N=st.integers(0, 40), D=st.integers(0, 20), scale=st.floats(-10, 10),
       seed=st.integers(0, 2**31 - 1))
def test_default_backend_matches_reference_on_any_shape(B, N, D, scale, seed):
    x, mask = _inputs(B, N, D, "cpu", seed, mask_kind="float" if seed % 2 else "bool")
    torch.testing.assert_close(ops.set_pool(x, mask, scale), set_pool_reference(x, mask, scale), rtol=1e-12, atol=1e-12)


def test_compiled_graph_goes_through_the_custom_op():
    x, mask = _inputs(3, 7, 4, "cpu", seed=17)
    x = x.float().requires_grad_()

    def f(t):
        return (ops.set_pool(t, mask, 0.2) ** 2).sum()

    compiled = torch.compile(f, backend="aot_eager", fullgraph=True)
    (g_compiled,) = torch.autograd.grad(compiled(x), x)
    (g_eager,) = torch.autograd.grad(f(x), x)
    torch.testing.assert_close(g_compiled, g_eager)
    torch.testing.assert_close(compiled(x), f(x))


@pytest.mark.parametrize("backend", ["reference", "cpu"])
def test_custom_op_path_matches_eager_path(backend):
    # The eager path bypasses the dispatcher; the custom op is what compile/export use.
    x, mask = _inputs(5, 9, 6, "cpu", seed=19)
    x = x.requires_grad_()
    with ops.use_backend(backend):
        eager = ops.set_pool(x, mask, 0.3)
        op = _set_pool_op(x, mask.double(), 0.3)
        torch.testing.assert_close(op, eager, rtol=0, atol=0)
        w = torch.randn_like(op)
        (g_op,) = torch.autograd.grad((op * w).sum(), x)
        (g_eager,) = torch.autograd.grad((eager * w).sum(), x)
        torch.testing.assert_close(g_op, g_eager, rtol=0, atol=0)
