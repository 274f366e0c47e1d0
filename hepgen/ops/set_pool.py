"""Masked set pooling: the global read-out of an EPiC layer.

For particles ``x`` [B, N, D] and a ``mask`` [B, N] (bool, or non-negative float weights):

    count = Σ_n mask                    (per set)
    total = Σ_n mask · x                (per set and feature)
    out   = [total / count,  total · sum_scale]      → [B, 2D]

An empty set (count = 0) has mean 0, never NaN. Padded particles are ignored whatever
they hold (the compiled kernels never read them). The mask is a constant for autograd (it gets no gradient).

The backward is its own op, ``hepgen::set_pool_backward``; it is linear in the incoming
gradient and its adjoint is the forward pooling, so gradients of any order are available.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops import _checks
from hepgen.ops._backends import op_backends, records_forced_backend, under_forced_backend
from hepgen.ops._compiled import stream_of

__all__ = ["set_pool", "set_pool_reference", "set_pool_backward_reference", "BACKENDS"]

# EPiC's choice: the sum enters the global update scaled by 0.01 so it stays O(1) for
# O(100) particles.
DEFAULT_SUM_SCALE = 0.01


# ---- reference: the spec ----------------------------------------------------------------

def set_pool_reference(x: torch.Tensor, mask: torch.Tensor, sum_scale: float = DEFAULT_SUM_SCALE) -> torch.Tensor:
    """Plain-PyTorch masked mean and scaled sum, concatenated to [B, 2D]."""
    m = mask.to(x.dtype).unsqueeze(-1)  # [B, N, 1]
    # Padded entries are ignored whatever they hold (NaN included), as the kernels never read them.
    total = torch.where(m != 0, x * m, torch.zeros((), dtype=x.dtype, device=x.device)).sum(dim=1)  # [B, D]
    count = m.sum(dim=1)  # [B, 1]
    safe_count = torch.where(count != 0, count, torch.ones_like(count))
    mean = torch.where(count != 0, total / safe_count, torch.zeros_like(total))
    return torch.cat([mean, total * sum_scale], dim=-1)


def set_pool_backward_reference(grad_out: torch.Tensor, mask: torch.Tensor, sum_scale: float) -> torch.Tensor:
    """Gradient of set_pool with respect to x, given the gradient of its output [B, 2D]."""
    D = grad_out.shape[-1] // 2
    m = mask.to(grad_out.dtype).unsqueeze(-1)  # [B, N, 1]
    count = m.sum(dim=1)  # [B, 1]
    inv_count = torch.where(count != 0, 1 / torch.where(count != 0, count, torch.ones_like(count)), torch.zeros_like(count))
    coef = grad_out[:, :D] * inv_count + grad_out[:, D:] * sum_scale  # [B, D]
    return m * coef.unsqueeze(1)


# ---- compiled core (cpu, cuda) ----------------------------------------------------------

def _core_forward(x: torch.Tensor, mask: torch.Tensor, sum_scale: float, device_kind: str) -> torch.Tensor:
    B, N, D = x.shape
    out = torch.empty((B, 2 * D), dtype=x.dtype, device=x.device)
    if out.numel() == 0:
        return out
    C = _core.compiled()
    args = (x, mask, float(sum_scale), out)
    if device_kind == "cuda":
        C.cuda_set_pool_forward(*args, stream_of(x))
    else:
        C.set_pool_forward(*args)
    return out


def _core_backward(grad_out: torch.Tensor, mask: torch.Tensor, sum_scale: float, device_kind: str) -> torch.Tensor:
    grad_out = grad_out.contiguous()
    B, N = mask.shape
    D = grad_out.shape[1] // 2
    grad_x = torch.empty((B, N, D), dtype=grad_out.dtype, device=grad_out.device)
    if grad_x.numel() == 0:
        return grad_x
    C = _core.compiled()
    args = (grad_out, mask, float(sum_scale), grad_x)
    if device_kind == "cuda":
        C.cuda_set_pool_backward(*args, stream_of(grad_out))
    else:
        C.set_pool_backward(*args)
    return grad_x


def _triton_forward(x, mask, sum_scale):
    from hepgen.triton import set_pool as kernels

    return kernels.forward(x, mask, sum_scale)


def _triton_backward(grad_out, mask, sum_scale):
    from hepgen.triton import set_pool as kernels

    return kernels.backward(grad_out, mask, sum_scale)


BACKENDS = op_backends("set_pool", preference={"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")})
BACKENDS.register("reference", forward=set_pool_reference, backward=set_pool_backward_reference)
BACKENDS.register("cpu", forward=lambda x, m, s: _core_forward(x, m, s, "cpu"),
                  backward=lambda g, m, s: _core_backward(g, m, s, "cpu"))
BACKENDS.register("cuda", forward=lambda x, m, s: _core_forward(x, m, s, "cuda"),
                  backward=lambda g, m, s: _core_backward(g, m, s, "cuda"))
BACKENDS.register("triton", forward=_triton_forward, backward=_triton_backward)


# ---- dispatch: one place that picks the backend --------------------------------------------

def _forward(x: torch.Tensor, mask: torch.Tensor, sum_scale: float) -> torch.Tensor:
    return BACKENDS.get(BACKENDS.choose(x.device, x.dtype), "forward")(x, mask, sum_scale)


def _backward(grad_out: torch.Tensor, mask: torch.Tensor, sum_scale: float) -> torch.Tensor:
    return BACKENDS.get(BACKENDS.choose(grad_out.device, grad_out.dtype), "backward")(grad_out, mask, sum_scale)


# ---- the custom ops: what torch.compile and export see --------------------------------------

@torch.library.custom_op("hepgen::set_pool", mutates_args=())
def _set_pool_op(x: torch.Tensor, mask: torch.Tensor, sum_scale: float) -> torch.Tensor:
    return _forward(x, mask, sum_scale)


@_set_pool_op.register_fake
def _(x, mask, sum_scale):
    return x.new_empty((x.shape[0], 2 * x.shape[2]))


@torch.library.custom_op("hepgen::set_pool_backward", mutates_args=())
def _set_pool_backward_op(grad_out: torch.Tensor, mask: torch.Tensor, sum_scale: float) -> torch.Tensor:
    return _backward(grad_out, mask, sum_scale)


@_set_pool_backward_op.register_fake
def _(grad_out, mask, sum_scale):
    return grad_out.new_empty((mask.shape[0], mask.shape[1], grad_out.shape[1] // 2))


@records_forced_backend
def _save_mask_and_scale(ctx, inputs, output):
    _, mask, sum_scale = inputs
    ctx.save_for_backward(mask)
    ctx.sum_scale = sum_scale


@under_forced_backend
def _op_backward(ctx, grad_out):
    (mask,) = ctx.saved_tensors
    return _set_pool_backward_op(grad_out, mask, ctx.sum_scale), None, None


@under_forced_backend
def _op_double_backward(ctx, grad_grad_x):
    # set_pool_backward is linear in grad_out and its adjoint is the pooling itself.
    (mask,) = ctx.saved_tensors
    return _set_pool_op(grad_grad_x, mask, ctx.sum_scale), None, None


_set_pool_op.register_autograd(_op_backward, setup_context=_save_mask_and_scale)
_set_pool_backward_op.register_autograd(_op_double_backward, setup_context=_save_mask_and_scale)


# ---- eager path: the same kernels without the custom-op dispatcher --------------------------
# A torch.library custom op costs tens of microseconds per call in eager mode, more than the
# kernel itself for a small batch; batch-1 latency is what a fast-simulation framework sees.
# Outside torch.compile, calls take these autograd Functions (or no autograd at all) instead;
# both paths run the same _forward/_backward and are tested alike.

class _SetPoolEager(torch.autograd.Function):
    @staticmethod
    @records_forced_backend
    def forward(ctx, x, mask, sum_scale):
        ctx.save_for_backward(mask)
        ctx.sum_scale = sum_scale
        return _forward(x, mask, sum_scale)

    @staticmethod
    @under_forced_backend
    def backward(ctx, grad_out):
        (mask,) = ctx.saved_tensors
        return _SetPoolBackwardEager.apply(grad_out, mask, ctx.sum_scale), None, None


class _SetPoolBackwardEager(torch.autograd.Function):
    @staticmethod
    @records_forced_backend
    def forward(ctx, grad_out, mask, sum_scale):
        ctx.save_for_backward(mask)
        ctx.sum_scale = sum_scale
        return _backward(grad_out, mask, sum_scale)

    @staticmethod
    @under_forced_backend
    def backward(ctx, grad_grad_x):
        (mask,) = ctx.saved_tensors
        return _SetPoolEager.apply(grad_grad_x, mask, ctx.sum_scale), None, None


# ---- public entry point -----------------------------------------------------------------

def set_pool(x: torch.Tensor, mask: torch.Tensor, sum_scale: float = DEFAULT_SUM_SCALE) -> torch.Tensor:
    """Masked mean and scaled masked sum over a set: [B, N, D], [B, N] → [B, 2D].

    Args:
        x: particle features [B, N, D], floating point; any strides.
        mask: [B, N], bool or floating (non-negative weights); False/0 marks padding.
        sum_scale: factor applied to the masked sum (EPiC uses 0.01).

    Returns:
        [B, 2D]: the masked mean (0 for an empty set), then the scaled masked sum.
    """
    x = _checks.tensor("x", x)
    mask = _checks.tensor("mask", mask)
    _checks.floating("x", x)
    _checks.rank("x", x, 3, "[batch, set size, features]")
    _checks.rank("mask", mask, 2, "[batch, set size]")
    if tuple(mask.shape) != tuple(x.shape[:2]):
        raise ValueError(f"mask must have shape (batch, set size) = {tuple(x.shape[:2])} to match x, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"mask must be bool or floating point, got {mask.dtype}")
    _checks.same_device("mask", mask, "x", x)
    sum_scale = _checks.finite_float("sum_scale", sum_scale)
    # One dtype for both inputs keeps every kernel to one template parameter; [B, N] is small.
    mask = mask.to(x.dtype)
    if torch.compiler.is_compiling():
        return _set_pool_op(x, mask, sum_scale)
    if torch.is_grad_enabled() and x.requires_grad:
        return _SetPoolEager.apply(x, mask, sum_scale)
    return _forward(x, mask, sum_scale)
