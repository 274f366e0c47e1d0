"""A backward pass runs on the backend its forward ran on, whatever thread runs it.

Autograd runs the backward of CUDA tensors on its own worker thread, where a ``use_backend``
block of the calling thread is not in force (seen on an H100: a forced reference forward had
its backward dispatched to Triton). The override travels with the autograd context instead.
Here the backward is run on a fresh thread, which reproduces that on the CPU.
"""

from __future__ import annotations

import importlib
import threading

import pytest
import torch

from hepgen import ops
# hepgen.ops re-exports the functions under the modules' names: import the modules themselves.
ma_module = importlib.import_module("hepgen.ops.masked_attention")
sp_module = importlib.import_module("hepgen.ops.set_pool")


def _in_thread(fn):
    box = {}

    def run():
        try:
            box["out"] = fn()
        except BaseException as err:  # re-raised in the caller
            box["err"] = err
    t = threading.Thread(target=run)
    t.start()
    t.join()
    if "err" in box:
        raise box["err"]
    return box.get("out")


def _spy(monkeypatch, table, backend, fn_name):
    calls = []
    original = table.impls[backend][fn_name]

    def spy(*args):
        calls.append(threading.current_thread().name)
        return original(*args)
    monkeypatch.setitem(table.impls, backend, {**table.impls[backend], fn_name: spy})
    return calls


@pytest.mark.parametrize("path", ["eager", "custom_op"])
def test_set_pool_backward_in_another_thread_keeps_the_forced_backend(monkeypatch, path):
    calls = _spy(monkeypatch, sp_module.BACKENDS, "reference", "backward")
    x = torch.randn(3, 5, 4, requires_grad=True)
    mask = torch.ones(3, 5)
    with ops.use_backend("reference"):
        out = ops.set_pool(x, mask) if path == "eager" else sp_module.SET_POOL.custom_op(x, mask, 0.01)
    _in_thread(lambda: out.sum().backward())
    assert len(calls) == 1 and calls[0] != threading.current_thread().name
    assert torch.allclose(x.grad, torch.full_like(x, 1 / 5 + 0.01))  # d(mean + 0.01 sum)/dx


@pytest.mark.parametrize("path", ["eager", "custom_op"])
def test_masked_attention_backward_in_another_thread_keeps_the_forced_backend(monkeypatch, path):
    calls = _spy(monkeypatch, ma_module.BACKENDS, "reference", "backward")
    q, k, v = (torch.randn(2, 2, 5, 8, requires_grad=True) for _ in range(3))
    with ops.use_backend("reference"):
        if path == "eager":
            out = ops.masked_attention(q, k, v)
        else:
            out = ma_module.MASKED_ATTENTION.custom_op(q, k, v, None, True, 8 ** -0.5)[0]
    _in_thread(lambda: out.sum().backward())
    assert len(calls) == 1
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_without_an_override_the_backward_uses_the_default_choice(monkeypatch):
    calls = _spy(monkeypatch, sp_module.BACKENDS, "reference", "backward")
    x = torch.randn(2, 3, 4, requires_grad=True)
    out = ops.set_pool(x, torch.ones(2, 3))
    _in_thread(lambda: out.sum().backward())
    expected = sp_module.BACKENDS.choose(x.device, x.dtype)
    assert len(calls) == (1 if expected == "reference" else 0)


def test_rq_spline_backward_in_another_thread_keeps_the_forced_backend(monkeypatch):
    rq_module = importlib.import_module("hepgen.ops.rq_spline")
    calls = _spy(monkeypatch, rq_module.BACKENDS, "reference", "backward")
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(20, generator=g) * 2 - 1).requires_grad_()
    uw, uh, ud = torch.randn(20, 8, generator=g), torch.randn(20, 8, generator=g), torch.randn(20, 7, generator=g)
    with ops.use_backend("reference"):
        y, ld = ops.rq_spline(x, uw, uh, ud)
    _in_thread(lambda: (y.sum() + ld.sum()).backward())
    assert len(calls) == 1 and torch.isfinite(x.grad).all()
