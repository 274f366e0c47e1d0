"""hepgen._C takes tensors through DLPack: torch tensors (C exchange API), DLPack capsules
(consumed once, freed after the call) and any object with __dlpack__; bad tensors are refused
by the core with a message naming the argument."""

import gc
import resource
import sys

import numpy as np
import pytest
import torch
from torch.utils.dlpack import to_dlpack

from hepgen import _core

C = _core.compiled_or_none()
pytestmark = pytest.mark.skipif(C is None, reason="needs the compiled core")


def _inputs(B=2, N=5, D=3):
    x = torch.randn(B, N, D, dtype=torch.float64)
    mask = (torch.rand(B, N) > 0.3).to(torch.float64)
    return x, mask, torch.empty(B, 2 * D, dtype=torch.float64)


def _expected(x, mask, scale=0.01):
    total = (x * mask[..., None]).sum(1)
    count = mask.sum(1, keepdim=True)
    return torch.cat([torch.where(count > 0, total / count.clamp_min(1), 0.0), total * scale], dim=1)


def test_tensors_capsules_and_numpy_give_the_same_result():
    x, mask, out = _inputs()
    C.set_pool_forward(x, mask, 0.01, out)
    torch.testing.assert_close(out, _expected(x, mask))
    out2 = torch.empty_like(out)
    C.set_pool_forward(to_dlpack(x), to_dlpack(mask), 0.01, to_dlpack(out2))
    torch.testing.assert_close(out2, out)
    out3 = np.empty(tuple(out.shape))
    C.set_pool_forward(x.numpy(), mask.numpy(), 0.01, out3)  # numpy: __dlpack__
    np.testing.assert_allclose(out3, out.numpy())


def test_a_capsule_is_consumed_once():
    x, mask, out = _inputs()
    cap = to_dlpack(x)
    C.set_pool_forward(cap, mask, 0.01, out)
    with pytest.raises(ValueError, match="x: this DLPack capsule was already consumed"):
        C.set_pool_forward(cap, mask, 0.01, out)


def test_bad_tensors_are_refused_naming_the_argument():
    x, mask, out = _inputs()
    with pytest.raises(ValueError, match=r"mask must have shape \[2, 5\]"):
        C.set_pool_forward(x, mask[:1, :1], 0.01, out)
    with pytest.raises(ValueError, match="out is written by this kernel and shares memory with x"):
        C.set_pool_forward(x, mask, 0.01, x.view(-1)[: out.numel()].view(out.shape))
    with pytest.raises(ValueError, match="out must be contiguous"):
        C.set_pool_forward(x, mask, 0.01, torch.empty(out.shape[1], out.shape[0], dtype=x.dtype).t())
    with pytest.raises(ValueError, match="x: expected a tensor"):
        C.set_pool_forward([1.0], mask, 0.01, out)
    with pytest.raises(TypeError, match="no float16 kernel"):
        C.set_pool_forward(x.half(), mask.half(), 0.01, out.half())


def test_requires_grad_and_noncontiguous_inputs_are_read_in_place():
    x, mask, out = _inputs(B=3, N=8, D=4)
    xs = x.transpose(1, 2).contiguous().transpose(1, 2).requires_grad_()  # strided, requires grad
    C.set_pool_forward(xs, mask, 0.01, out)
    torch.testing.assert_close(out, _expected(x, mask))


class _TensorWithoutExchangeApi(torch.Tensor):
    """A torch tensor as torch < 2.10 has it: no C exchange API on the type."""

    __dlpack_c_exchange_api__ = None


def test_torch_without_the_exchange_api_goes_through_to_dlpack():
    x, mask, out = _inputs()
    old_style = x.as_subclass(_TensorWithoutExchangeApi).requires_grad_()  # __dlpack__ would refuse it
    C.set_pool_forward(old_style, mask, 0.01, out)
    torch.testing.assert_close(out, _expected(x, mask))


def _rss_mib():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**20


@pytest.mark.parametrize("via", ["tensor", "capsule", "old torch"])
def test_no_leak_over_many_calls(via):
    x, mask, out = _inputs(B=1, N=4, D=3)
    wrap = {
        "tensor": lambda t: t,
        "capsule": to_dlpack,
        "old torch": lambda t: t.as_subclass(_TensorWithoutExchangeApi),
    }[via]
    for _ in range(2000):  # warm up allocator pools
        C.set_pool_forward(wrap(x), wrap(mask), 0.01, wrap(out))
    gc.collect()
    before = _rss_mib()
    for _ in range(100_000):
        C.set_pool_forward(wrap(x), wrap(mask), 0.01, wrap(out))
    gc.collect()
    grown = _rss_mib() - before
    # A leaked DLManagedTensor (or tensor reference) per call would be >= 3 * 100 bytes * 1e5 = 30 MiB.
    assert grown < 8, f"RSS grew by {grown:.1f} MiB over 10^5 calls"


@pytest.mark.parametrize("via", ["numpy", "capsule"])
def test_a_refused_tensor_is_released(via):
    # The core refuses the array (int32) after its capsule was consumed: the capsule's deleter
    # must still run, or the array stays referenced for ever (it did, once per call).
    x = np.zeros((2, 5, 3), dtype=np.int32)
    mask, out = np.ones((2, 5)), np.zeros((2, 6))
    before = sys.getrefcount(x)
    for _ in range(10):
        arg = x if via == "numpy" else x.__dlpack__()
        with pytest.raises(ValueError, match=r"x: DLPack dtype \(code 0, 32 bits"):
            C.set_pool_forward(arg, mask, 0.01, out)
        del arg
    assert sys.getrefcount(x) == before
