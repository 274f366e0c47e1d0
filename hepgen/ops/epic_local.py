"""The fused local update of an EPiC layer, with the pooling the next global update needs.

For particles ``x`` [B, N, H], a ``mask`` [B, N], weights ``w1`` [H1, H] and ``w2`` [H, H1]
and per-set biases ``bias1`` [B, H1] and ``bias2`` [B, H]:

    z1 = x · w1ᵀ + bias1[b]          h = act(z1)             act = LeakyReLU(negative_slope)
    z2 = h · w2ᵀ + bias2[b] + x      y = mask · act(z2)      (exactly 0 on padding)
    pooled = set_pool(y, mask, sum_scale) = [masked mean of y, sum_scale · masked sum of y]

This is EPiC's x' = act(W4·act(W3·[x, g', t, c]) + x) without the per-particle
concatenation: the columns of W3 (and W4) that multiply the per-set vector [g', t, c] are
applied once per set by the caller and enter here as ``bias1`` (``bias2``). Padded particles
are never computed and never read. Returns ``(y, pooled)``.

The backward is its own op, ``hepgen::epic_local_backward``, returning the gradients of x,
w1, bias1, w2 and bias2; it recomputes h instead of saving it. It has no autograd formula
itself (no double backward).

Backends: ``cpu`` runs the two matrix products in BLAS (torch.mm) over the packed real
particles, and everything around them (bias, activation, residual, mask, pooling, and the
gradients of those) in fused C++ passes — on the CPU, BLAS beats a hand-written GEMM
(docs/epic.md). ``triton`` and ``cuda`` run the whole forward, and the whole backward except
the weight-gradient GEMMs (torch), in one kernel per set.
"""

from __future__ import annotations

import torch

from hepgen import _core
from hepgen.ops import _checks
from hepgen.ops._backends import op_backends, records_forced_backend, under_forced_backend
from hepgen.ops._compiled import stream_of
from hepgen.ops.set_pool import DEFAULT_SUM_SCALE, set_pool_reference

__all__ = ["epic_local", "epic_local_reference", "epic_local_backward_reference", "BACKENDS"]

DEFAULT_NEGATIVE_SLOPE = 0.01  # EPiC's LeakyReLU


# ---- reference: the spec ----------------------------------------------------------------

def _act(v: torch.Tensor, slope: float) -> torch.Tensor:
    return torch.where(v > 0, v, v * slope)


def _act_grad_from_output(out: torch.Tensor, slope: float) -> torch.Tensor:
    # LeakyReLU keeps the sign: act'(z) = 1 where act(z) > 0, slope elsewhere.
    return torch.where(out > 0, torch.ones_like(out), torch.full_like(out, slope))


def epic_local_reference(x, mask, w1, bias1, w2, bias2, sum_scale=DEFAULT_SUM_SCALE,
                         negative_slope=DEFAULT_NEGATIVE_SLOPE):
    """Plain-PyTorch fused local update: (y [B, N, H], pooled [B, 2H])."""
    m = mask.to(x.dtype).unsqueeze(-1)
    real = m != 0
    x = torch.where(real, x, torch.zeros((), dtype=x.dtype, device=x.device))  # padding is never read
    h = _act(x @ w1.t() + bias1.unsqueeze(1), negative_slope)
    z2 = h @ w2.t() + bias2.unsqueeze(1) + x
    y = torch.where(real, m * _act(z2, negative_slope), torch.zeros((), dtype=x.dtype, device=x.device))
    return y, set_pool_reference(y, mask, sum_scale)


def epic_local_backward_reference(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, negative_slope):
    """Gradients (x, w1, bias1, w2, bias2) of epic_local, written out; y is the forward's output."""
    H = x.shape[-1]
    slope = negative_slope
    m = mask.to(x.dtype).unsqueeze(-1)
    real = m != 0
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    x = torch.where(real, x, zero)
    count = m.sum(dim=1)  # [B, 1]
    inv = torch.where(count != 0, 1 / torch.where(count != 0, count, torch.ones_like(count)), torch.zeros_like(count))
    coef = grad_pooled[:, :H] * inv + grad_pooled[:, H:] * sum_scale  # [B, H]
    # pooled reads y with weight m; y = m · act(z2)
    dz2 = torch.where(real, (grad_y + m * coef.unsqueeze(1)) * m * _act_grad_from_output(y, slope), zero)
    h = torch.where(real, _act(x @ w1.t() + bias1.unsqueeze(1), slope), zero)
    dz1 = (dz2 @ w2) * _act_grad_from_output(h, slope)
    dx = torch.where(real, dz1 @ w1 + dz2, zero)
    dw1 = dz1.flatten(0, 1).t() @ x.flatten(0, 1)
    dw2 = dz2.flatten(0, 1).t() @ h.flatten(0, 1)
    return dx, dw1, dz1.sum(dim=1), dw2, dz2.sum(dim=1)


# ---- cpu: BLAS over the packed real particles + fused C++ passes ------------------------

def _pack(x: torch.Tensor, mask: torch.Tensor):
    """Real rows of x, set after set, and the row offsets [B + 1] of each set."""
    B, N, H = x.shape
    real = mask != 0
    counts = real.sum(dim=1)
    offsets = torch.zeros(B + 1, dtype=torch.int64)
    torch.cumsum(counts, dim=0, out=offsets[1:])
    all_real = int(offsets[-1]) == B * N
    flat = x.reshape(B * N, H)
    packed = flat.contiguous() if all_real else flat[real.reshape(-1)]
    return packed, offsets, all_real


# Rows per chunk of the CPU forward: the chunk's two hidden tensors (2 × rows × H floats)
# stay in L2 between the GEMMs and the passes around them.
CPU_CHUNK_ROWS = 1024


def _set_chunks(offsets: torch.Tensor, rows: int) -> list[tuple[int, int]]:
    """Split sets 0..B into runs of whole sets of about `rows` packed rows each."""
    bounds = torch.searchsorted(offsets, torch.arange(rows, int(offsets[-1]), rows, dtype=torch.int64), right=True)
    cuts = [0] + sorted(set(int(c) - 1 for c in bounds.tolist() if 0 < int(c) - 1 < offsets.numel() - 1))
    B = offsets.numel() - 1
    return [(b0, b1) for b0, b1 in zip(cuts, cuts[1:] + [B]) if b1 > b0]


def _cpu_forward(x, mask, w1, bias1, w2, bias2, sum_scale, slope):
    B, N, H = x.shape
    H1 = w1.shape[0]
    y = torch.empty((B, N, H), dtype=x.dtype)
    pooled = torch.empty((B, 2 * H), dtype=x.dtype)
    if B == 0 or H == 0:
        return y, pooled.zero_()
    C = _core.compiled()
    xp, offsets, _ = _pack(x, mask)
    bias1, bias2 = bias1.contiguous(), bias2.contiguous()
    w1t, w2t = w1.t().contiguous().t(), w2.t().contiguous().t()  # BLAS-friendly layouts (tiny copies)
    M = xp.shape[0]
    chunk = min(M, CPU_CHUNK_ROWS * 2)
    h_buf = torch.empty((chunk, H1), dtype=x.dtype)
    z_buf = torch.empty((chunk, H), dtype=x.dtype)
    for b0, b1 in _set_chunks(offsets, CPU_CHUNK_ROWS) if M > chunk else [(0, B)]:
        r0, r1 = int(offsets[b0]), int(offsets[b1])
        if r1 - r0 > h_buf.shape[0]:  # one very large set
            h_buf = torch.empty((r1 - r0, H1), dtype=x.dtype)
            z_buf = torch.empty((r1 - r0, H), dtype=x.dtype)
        xc = xp[r0:r1]
        h = torch.mm(xc, w1t.t(), out=h_buf[:r1 - r0])
        off = offsets[b0:b1 + 1]  # the chunk's sets; the core counts rows from off[0]
        C.epic_bias_act(h, bias1[b0:b1], off, slope)
        z2 = torch.mm(h, w2t.t(), out=z_buf[:r1 - r0])
        C.epic_residual_pool(z2, xc, bias2[b0:b1], mask[b0:b1], off, slope, sum_scale, y[b0:b1], pooled[b0:b1])
    return y, pooled


def _cpu_backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, slope):
    B, N, H = x.shape
    H1 = w1.shape[0]
    if B == 0 or H == 0:
        return (torch.zeros_like(x), torch.zeros_like(w1), torch.zeros((B, H1), dtype=x.dtype),
                torch.zeros_like(w2), torch.zeros((B, H), dtype=x.dtype))
    C = _core.compiled()
    grad_y, grad_pooled, y = grad_y.contiguous(), grad_pooled.contiguous(), y.contiguous()
    xp, offsets, all_real = _pack(x, mask)
    M = xp.shape[0]
    dz2 = torch.empty((M, H), dtype=x.dtype)
    gb2 = torch.empty((B, H), dtype=x.dtype)
    C.epic_output_grad(grad_y, grad_pooled, y, mask, offsets, slope, sum_scale, dz2, gb2)
    h = torch.mm(xp, w1.t())  # recomputed: the forward saves nothing but its output
    C.epic_bias_act(h, bias1.contiguous(), offsets, slope)
    dw2 = torch.mm(dz2.t(), h)
    dz1 = torch.mm(dz2, w2)
    gb1 = torch.empty((B, H1), dtype=x.dtype)
    C.epic_act_grad(dz1, h, offsets, slope, gb1)
    dw1 = torch.mm(dz1.t(), xp)
    dxp = torch.addmm(dz2, dz1, w1)
    if all_real:
        dx = dxp.view(B, N, H)
    else:
        dx = torch.empty((B, N, H), dtype=x.dtype)
        C.epic_unpack(dxp, mask, offsets, dx)
    return dx, dw1, gb1, dw2, gb2


# ---- triton and cuda: one kernel per set; weight-gradient GEMMs in torch ----------------

def _weight_grads(x, mask, dz1, h, dz2):
    xm = torch.where(mask.unsqueeze(-1) != 0, x, torch.zeros((), dtype=x.dtype, device=x.device))
    dw1 = dz1.flatten(0, 1).t() @ xm.flatten(0, 1)
    dw2 = dz2.flatten(0, 1).t() @ h.flatten(0, 1)
    return dw1, dw2


def _triton_forward(x, mask, w1, bias1, w2, bias2, sum_scale, slope):
    from hepgen.triton import epic_local as kernels

    return kernels.forward(x, mask, w1, bias1.contiguous(), w2, bias2.contiguous(), sum_scale, slope)


def _triton_backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, slope):
    from hepgen.triton import epic_local as kernels

    dx, dz1, h, dz2, gb1, gb2 = kernels.backward(grad_y.contiguous(), grad_pooled.contiguous(), x, y.contiguous(),
                                                 mask, w1, bias1.contiguous(), w2, sum_scale, slope)
    dw1, dw2 = _weight_grads(x, mask, dz1, h, dz2)
    return dx, dw1, gb1, dw2, gb2


def _cuda_forward(x, mask, w1, bias1, w2, bias2, sum_scale, slope):
    B, N, H = x.shape
    H1 = w1.shape[0]
    y = torch.empty((B, N, H), dtype=x.dtype, device=x.device)
    pooled = torch.empty((B, 2 * H), dtype=x.dtype, device=x.device)
    if B == 0 or H == 0:
        return y, pooled.zero_()
    w1t, w2t = w1.t().contiguous(), w2.t().contiguous()
    bias1, bias2 = bias1.contiguous(), bias2.contiguous()
    _core.compiled().cuda_epic_local_forward(x, mask, w1t, bias1, w2t, bias2, slope, sum_scale, y, pooled,
                                             stream_of(x))
    return y, pooled


def _cuda_backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, slope):
    B, N, H = x.shape
    H1 = w1.shape[0]
    new = lambda *shape: torch.empty(shape, dtype=x.dtype, device=x.device)  # noqa: E731
    dx, dz1, h, dz2, gb1, gb2 = new(B, N, H), new(B, N, H1), new(B, N, H1), new(B, N, H), new(B, H1), new(B, H)
    if B == 0 or (H == 0 and H1 == 0):
        return dx, torch.zeros_like(w1), gb1.zero_(), torch.zeros_like(w2), gb2.zero_()
    grad_y, grad_pooled, y = grad_y.contiguous(), grad_pooled.contiguous(), y.contiguous()
    w1, w2, bias1 = w1.contiguous(), w2.contiguous(), bias1.contiguous()
    w1t = w1.t().contiguous()
    _core.compiled().cuda_epic_local_backward(grad_y, grad_pooled, x, y, mask, w1, w1t, bias1, w2, slope, sum_scale,
                                              dx, dz1, h, dz2, gb1, gb2, stream_of(x))
    dw1, dw2 = _weight_grads(x, mask, dz1, h, dz2)
    return dx, dw1, gb1, dw2, gb2


BACKENDS = op_backends("epic_local", preference={"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")})
BACKENDS.register("reference", forward=epic_local_reference, backward=epic_local_backward_reference)
BACKENDS.register("cpu", forward=_cpu_forward, backward=_cpu_backward)
BACKENDS.register("triton", forward=_triton_forward, backward=_triton_backward)
BACKENDS.register("cuda", forward=_cuda_forward, backward=_cuda_backward)


# ---- dispatch: one place that picks the backend --------------------------------------------

def _forward(x, mask, w1, bias1, w2, bias2, sum_scale, slope):
    return BACKENDS.get(BACKENDS.choose(x.device, x.dtype), "forward")(x, mask, w1, bias1, w2, bias2, sum_scale,
                                                                        slope)


def _backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, slope):
    return BACKENDS.get(BACKENDS.choose(x.device, x.dtype), "backward")(grad_y, grad_pooled, x, mask, w1, bias1, w2,
                                                                         y, sum_scale, slope)


# ---- the custom ops: what torch.compile and export see --------------------------------------

@torch.library.custom_op("hepgen::epic_local", mutates_args=())
def _epic_local_op(x: torch.Tensor, mask: torch.Tensor, w1: torch.Tensor, bias1: torch.Tensor, w2: torch.Tensor,
                   bias2: torch.Tensor, sum_scale: float, negative_slope: float) -> tuple[torch.Tensor, torch.Tensor]:
    y, pooled = _forward(x, mask, w1, bias1, w2, bias2, sum_scale, negative_slope)
    return y, pooled


@_epic_local_op.register_fake
def _(x, mask, w1, bias1, w2, bias2, sum_scale, negative_slope):
    B, N, H = x.shape
    return x.new_empty((B, N, H)), x.new_empty((B, 2 * H))


@torch.library.custom_op("hepgen::epic_local_backward", mutates_args=())
def _epic_local_backward_op(grad_y: torch.Tensor, grad_pooled: torch.Tensor, x: torch.Tensor, mask: torch.Tensor,
                            w1: torch.Tensor, bias1: torch.Tensor, w2: torch.Tensor, y: torch.Tensor,
                            sum_scale: float, negative_slope: float
                            ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    grads = _backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, negative_slope)
    # custom_op outputs may not alias inputs or each other.
    return tuple(g.clone() if g.data_ptr() in {t.data_ptr() for t in (grad_y, grad_pooled, x, y)} and g.numel()
                 else g for g in grads)


@_epic_local_backward_op.register_fake
def _(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, sum_scale, negative_slope):
    B = x.shape[0]
    return (torch.empty_like(x), torch.empty_like(w1), x.new_empty((B, w1.shape[0])), torch.empty_like(w2),
            x.new_empty((B, x.shape[2])))


@records_forced_backend
def _setup_context(ctx, inputs, output):
    x, mask, w1, bias1, w2, _, sum_scale, slope = inputs
    ctx.save_for_backward(x, mask, w1, bias1, w2, output[0])
    ctx.sum_scale, ctx.slope = sum_scale, slope


@under_forced_backend
def _op_backward(ctx, grad_y, grad_pooled):
    x, mask, w1, bias1, w2, y = ctx.saved_tensors
    if grad_y is None:
        grad_y = torch.zeros_like(y)
    if grad_pooled is None:
        grad_pooled = x.new_zeros((x.shape[0], 2 * x.shape[2]))
    dx, dw1, db1, dw2, db2 = _epic_local_backward_op(grad_y, grad_pooled, x, mask, w1, bias1, w2, y,
                                                     ctx.sum_scale, ctx.slope)
    return dx, None, dw1, db1, dw2, db2, None, None


_epic_local_op.register_autograd(_op_backward, setup_context=_setup_context)


# ---- eager path: the same kernels without the custom-op dispatcher --------------------------
# As for set_pool: a custom op costs tens of microseconds per eager call, a visible share of
# an EPiC layer at small batches (measured ~0.2 ms of ~1.3 ms per layer at 1280 particles).
# Outside torch.compile, calls take this autograd Function, or no autograd at all.

class _EpicLocalEager(torch.autograd.Function):
    @staticmethod
    @records_forced_backend
    def forward(ctx, x, mask, w1, bias1, w2, bias2, sum_scale, slope):
        y, pooled = _forward(x, mask, w1, bias1, w2, bias2, sum_scale, slope)
        ctx.save_for_backward(x, mask, w1, bias1, w2, y)
        ctx.sum_scale, ctx.slope = sum_scale, slope
        return y, pooled

    @staticmethod
    @torch.autograd.function.once_differentiable
    @under_forced_backend
    def backward(ctx, grad_y, grad_pooled):
        x, mask, w1, bias1, w2, y = ctx.saved_tensors
        dx, dw1, db1, dw2, db2 = _backward(grad_y, grad_pooled, x, mask, w1, bias1, w2, y, ctx.sum_scale, ctx.slope)
        return dx, None, dw1, db1, dw2, db2, None, None


# ---- public entry point -----------------------------------------------------------------

def _per_set_bias(name: str, bias: torch.Tensor, B: int, size: int, x: torch.Tensor) -> torch.Tensor:
    bias = _checks.tensor(name, bias)
    _checks.same_device(name, bias, "x", x)
    if bias.dtype != x.dtype:
        raise TypeError(f"{name} must have x's dtype {x.dtype}, got {bias.dtype}")
    if tuple(bias.shape) == (size,):
        return bias.unsqueeze(0).expand(B, size)
    if tuple(bias.shape) != (B, size):
        raise ValueError(f"{name} must have shape (batch, {size}) = {(B, size)} or ({size},), got {tuple(bias.shape)}")
    return bias


def epic_local(x: torch.Tensor, mask: torch.Tensor, w1: torch.Tensor, bias1: torch.Tensor, w2: torch.Tensor,
               bias2: torch.Tensor, sum_scale: float = DEFAULT_SUM_SCALE,
               negative_slope: float = DEFAULT_NEGATIVE_SLOPE) -> tuple[torch.Tensor, torch.Tensor]:
    """EPiC local update fused with the next pooling: returns (y [B, N, H], pooled [B, 2H]).

    Args:
        x: particle features [B, N, H], floating point; any strides.
        mask: [B, N], bool or floating (0 marks padding; other values weight y and the pooling).
        w1: first linear layer's weight on the particle features, [H1, H].
        bias1: per-set bias of the first layer [B, H1] (or [H1], shared): W3's columns on
            [g', t, c] applied to the set's vector, plus W3's bias.
        w2: second linear layer's weight [H, H1].
        bias2: per-set bias of the second layer [B, H] (or [H]).
        sum_scale: factor on the pooled sum (EPiC: 0.01).
        negative_slope: LeakyReLU slope (EPiC: 0.01).
    """
    x = _checks.tensor("x", x)
    mask = _checks.tensor("mask", mask)
    w1 = _checks.tensor("w1", w1)
    w2 = _checks.tensor("w2", w2)
    _checks.floating("x", x)
    _checks.rank("x", x, 3, "[batch, set size, features]")
    _checks.rank("mask", mask, 2, "[batch, set size]")
    B, N, H = x.shape
    if tuple(mask.shape) != (B, N):
        raise ValueError(f"mask must have shape (batch, set size) = {(B, N)} to match x, got {tuple(mask.shape)}")
    if mask.dtype != torch.bool and not mask.is_floating_point():
        raise TypeError(f"mask must be bool or floating point, got {mask.dtype}")
    _checks.same_device("mask", mask, "x", x)
    for name, w in (("w1", w1), ("w2", w2)):
        _checks.rank(name, w, 2, "[out features, in features]")
        _checks.same_device(name, w, "x", x)
        if w.dtype != x.dtype:
            raise TypeError(f"{name} must have x's dtype {x.dtype}, got {w.dtype}")
    H1 = w1.shape[0]
    if w1.shape[1] != H:
        raise ValueError(f"w1 must have shape (hidden, features) = (H1, {H}), got {tuple(w1.shape)}")
    if tuple(w2.shape) != (H, H1):
        raise ValueError(f"w2 must have shape (features, hidden) = {(H, H1)}, got {tuple(w2.shape)}")
    bias1 = _per_set_bias("bias1", bias1, B, H1, x)
    bias2 = _per_set_bias("bias2", bias2, B, H, x)
    sum_scale = _checks.finite_float("sum_scale", sum_scale)
    negative_slope = _checks.finite_float("negative_slope", negative_slope)
    if negative_slope <= 0:
        # The backward reads act'(z) from the sign of act(z), which needs a positive slope.
        raise ValueError(f"negative_slope must be > 0, got {negative_slope}")
    mask = mask.to(x.dtype)
    if torch.compiler.is_compiling():
        return _epic_local_op(x, mask, w1, bias1, w2, bias2, sum_scale, negative_slope)
    if torch.is_grad_enabled() and any(t.requires_grad for t in (x, w1, bias1, w2, bias2)):
        return _EpicLocalEager.apply(x, mask, w1, bias1, w2, bias2, sum_scale, negative_slope)
    return _forward(x, mask, w1, bias1, w2, bias2, sum_scale, negative_slope)
