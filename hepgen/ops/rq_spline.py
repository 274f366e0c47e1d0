"""Monotonic rational-quadratic spline with linear tails (Neural Spline Flows, Durkan et al. 2019).

Same arguments and semantics as nflows' ``unconstrained_rational_quadratic_spline`` with
``tails="linear"``, so nflows code can swap it in:

    outputs, logabsdet = rq_spline(inputs, unnormalized_widths, unnormalized_heights,
                                   unnormalized_derivatives, inverse=False, tail_bound=1.0, ...)

Per element, with K bins on [-B, B] (B = tail_bound):

- widths  = min_bin_width  + (1 - K min_bin_width)  softmax(unnormalized_widths)   → x-knots
- heights = min_bin_height + (1 - K min_bin_height) softmax(unnormalized_heights)  → y-knots
  knots are -B + 2B · cumsum(...), the end knots pinned to exactly -B and B;
- derivatives at the K-1 interior knots: min_derivative + softplus(unnormalized_derivatives);
  at the two end knots the derivative is min_derivative + softplus(log(exp(1 - min_derivative) - 1)),
  i.e. 1 (nflows' constant), so the spline joins the identity tails with a continuous slope;
- inside [-B, B] (inclusive) the spline maps the element (forward: x → y; inverse: y → x, by
  the root of a quadratic); outside it the map is the identity with log|det J| = 0.

Shapes (broadcasting): ``inputs`` [...], the three parameter tensors [..., K], [..., K], [..., K-1].
The batch shapes ``inputs.shape``, ``widths.shape[:-1]``, ... broadcast together as in
PyTorch; outputs have the broadcast shape. (nflows requires them to be equal; equal shapes are
the fast path. A broadcast parameter tensor, e.g. one spline per feature [D, K] for inputs
[B, D], is expanded before the kernel and its gradient is summed back by autograd.)

Non-finite inputs: NaN, +inf and -inf lie outside [-B, B], so they pass through the identity
tails (NaN → NaN, ±inf → ±inf) with log|det J| = 0 and gradient 1, as in nflows. Non-finite
parameters give NaN outputs for the elements that use them. No kernel ever reads outside a
row: the bin index is clamped to [0, K-1] whatever the comparisons say.

Gradients: first order, for the inputs and all three parameter tensors, from a fused
backward op (``hepgen::rq_spline_backward``) that recomputes the spline from the inputs; its
derivation is written out in csrc/cpu/rq_spline.cpp. Second-order gradients are not
supported (the backward op has no autograd formula).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hepgen import _core
from hepgen.ops import _checks
from hepgen.ops._backends import op_backends, records_forced_backend, under_forced_backend
from hepgen.ops._compiled import stream_of

__all__ = ["rq_spline", "rq_spline_reference", "rq_spline_backward_reference", "BACKENDS",
           "DEFAULT_MIN_BIN_WIDTH", "DEFAULT_MIN_BIN_HEIGHT", "DEFAULT_MIN_DERIVATIVE"]

# nflows' defaults.
DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3


def boundary_derivative_logit(min_derivative: float) -> float:
    """nflows' constant: the unnormalised derivative at the end knots, log(e^(1 - min_d) - 1).

    With it the end-knot derivative is min_d + softplus(constant) = 1, the tails' slope.
    """
    return math.log(math.expm1(1.0 - min_derivative))


# ---- reference: the spec ----------------------------------------------------------------

def _knots(unnormalized: torch.Tensor, min_size: float, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Knot positions [..., K+1] on [-bound, bound] and bin sizes [..., K], computed as nflows does."""
    K = unnormalized.shape[-1]
    sizes = min_size + (1 - min_size * K) * torch.softmax(unnormalized, dim=-1)
    knots = F.pad(torch.cumsum(sizes, dim=-1), (1, 0), value=0.0)
    knots = 2 * bound * knots - bound
    # Pin the ends exactly (the cumulative sum only reaches 1 up to rounding).
    knots = torch.cat([torch.full_like(knots[..., :1], -bound), knots[..., 1:-1],
                       torch.full_like(knots[..., :1], bound)], dim=-1)
    return knots, knots[..., 1:] - knots[..., :-1]


def rq_spline_reference(inputs: torch.Tensor, unnormalized_widths: torch.Tensor,
                        unnormalized_heights: torch.Tensor, unnormalized_derivatives: torch.Tensor,
                        inverse: bool = False, tail_bound: float = 1.0,
                        min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
                        min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
                        min_derivative: float = DEFAULT_MIN_DERIVATIVE) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain-PyTorch spline: (outputs, logabsdet), both of the broadcast batch shape.

    Differentiable by autograd everywhere (elements outside the bounds are evaluated at 0
    and then replaced, so they contribute no NaN to any gradient).
    """
    K = unnormalized_widths.shape[-1]
    batch = torch.broadcast_shapes(inputs.shape, unnormalized_widths.shape[:-1],
                                   unnormalized_heights.shape[:-1], unnormalized_derivatives.shape[:-1])
    inputs = inputs.expand(batch)
    uw = unnormalized_widths.expand(*batch, K)
    uh = unnormalized_heights.expand(*batch, K)
    ud = unnormalized_derivatives.expand(*batch, K - 1)
    bound = tail_bound

    inside = (inputs >= -bound) & (inputs <= bound)  # False for NaN and ±inf
    z = torch.where(inside, inputs, torch.zeros_like(inputs))  # a safe point for the outside ones

    xk, widths = _knots(uw, min_bin_width, bound)
    yk, heights = _knots(uh, min_bin_height, bound)
    ud = F.pad(ud, (1, 1), value=boundary_derivative_logit(min_derivative))
    derivs = min_derivative + F.softplus(ud)  # [..., K+1], 1 at both ends

    # Bin k: the number of interior knots at or below the value (nflows' searchsorted),
    # so a value on a knot belongs to the bin on its right; B itself to the last bin.
    search = yk if inverse else xk
    k = (z.unsqueeze(-1) >= search[..., 1:K]).sum(-1, keepdim=True)

    def at(t: torch.Tensor, offset: int = 0) -> torch.Tensor:
        return t.gather(-1, k + offset).squeeze(-1)

    x0, w, y0, h, d0, d1 = at(xk), at(widths), at(yk), at(heights), at(derivs), at(derivs, 1)
    s = h / w  # the bin's mean slope

    if inverse:
        # Solve y = y0 + h (s θ² + d0 θ(1-θ)) / (s + (d0 + d1 - 2s) θ(1-θ)) for θ in [0, 1]:
        # a θ² + b θ + c = 0, taking the root that is stable for a → 0.
        dy = z - y0
        a = h * (s - d0) + dy * (d0 + d1 - 2 * s)
        b = h * d0 - dy * (d0 + d1 - 2 * s)
        c = -s * dy
        disc = (b * b - 4 * a * c).clamp_min(0)  # ≥ 0 in exact arithmetic
        theta = (2 * c) / (-b - torch.sqrt(disc))
        out = x0 + theta * w
    else:
        theta = (z - x0) / w
    q = theta * (1 - theta)
    den = s + (d0 + d1 - 2 * s) * q
    # dy/dx = s² (d1 θ² + 2 s θ(1-θ) + d0 (1-θ)²) / den²
    logdet = 2 * torch.log(s) + torch.log(d1 * theta**2 + 2 * s * q + d0 * (1 - theta) ** 2) - 2 * torch.log(den)
    if inverse:
        logdet = -logdet
    else:
        out = y0 + h * (s * theta**2 + d0 * q) / den

    outputs = torch.where(inside, out, inputs)
    logabsdet = torch.where(inside, logdet, torch.zeros_like(logdet))
    return outputs, logabsdet


def rq_spline_backward_reference(grad_outputs: torch.Tensor, grad_logabsdet: torch.Tensor, inputs: torch.Tensor,
                                 unnormalized_widths: torch.Tensor, unnormalized_heights: torch.Tensor,
                                 unnormalized_derivatives: torch.Tensor, inverse: bool = False, tail_bound: float = 1.0,
                                 min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
                                 min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
                                 min_derivative: float = DEFAULT_MIN_DERIVATIVE) -> tuple[torch.Tensor, ...]:
    """The hand-derived gradients of rq_spline_reference, in plain PyTorch, for equal batch shapes.

    Returns the gradients for (inputs, widths, heights, derivatives). The derivation is in
    csrc/cpu/rq_spline_bin.h; the kernels implement exactly these formulas, and the tests
    check them against autograd through rq_spline_reference.
    """
    x, uw, uh, ud, gy, gl = inputs, unnormalized_widths, unnormalized_heights, unnormalized_derivatives, grad_outputs, grad_logabsdet
    K, bound = uw.shape[-1], tail_bound
    inside = (x >= -bound) & (x <= bound)
    z = torch.where(inside, x, torch.zeros_like(x))
    xk, widths = _knots(uw, min_bin_width, bound)
    yk, heights = _knots(uh, min_bin_height, bound)
    derivs = min_derivative + F.softplus(F.pad(ud, (1, 1), value=boundary_derivative_logit(min_derivative)))
    k = (z.unsqueeze(-1) >= (yk if inverse else xk)[..., 1:K]).sum(-1, keepdim=True)

    def at(t, offset=0):
        return t.gather(-1, k + offset).squeeze(-1)

    x0, w, y0, h, d0, d1 = at(xk), at(widths), at(yk), at(heights), at(derivs), at(derivs, 1)
    s = h / w
    curv = d0 + d1 - 2 * s
    if inverse:
        dy = z - y0
        a, b, c = h * (s - d0) + dy * curv, h * d0 - dy * curv, -s * dy
        t = (2 * c) / (-b - torch.sqrt((b * b - 4 * a * c).clamp_min(0)))
    else:
        t = (z - x0) / w
    q = t * (1 - t)
    den = s + curv * q
    n = s * t**2 + d0 * q
    m = d1 * t**2 + 2 * s * q + d0 * (1 - t) ** 2
    # Partial derivatives of y = y0 + h n / den and L = log(s^2 m / den^2).
    y_t = h * s * m / den**2
    y_s = h * (t**2 * den - n * (1 - 2 * q)) / den**2
    y_h = n / den
    y_d0 = h * q * (den - n) / den**2
    y_d1 = -h * n * q / den**2
    l_t = 2 * (d1 * t + s * (1 - 2 * t) - d0 * (1 - t)) / m - 2 * curv * (1 - 2 * t) / den
    l_s = 2 / s + 2 * q / m - 2 * (1 - 2 * q) / den
    l_d0 = (1 - t) ** 2 / m - 2 * q / den
    l_d1 = t**2 / m - 2 * q / den
    if inverse:
        lam = (gy * w - gl * l_t) / y_t  # the gradient on t over dy/dt (implicit function)
        g_s = -gl * l_s - lam * y_s
        g_in, g_x0, g_w = lam, gy, gy * t - g_s * s / w
        g_y0, g_h = -lam, -lam * y_h + g_s / w
        g_d0, g_d1 = -gl * l_d0 - lam * y_d0, -gl * l_d1 - lam * y_d1
    else:
        g_t, g_s = gy * y_t + gl * l_t, gy * y_s + gl * l_s
        g_in, g_x0, g_w = g_t / w, -g_t / w, -(g_t * t + g_s * s) / w
        g_y0, g_h = gy, gy * y_h + g_s / w
        g_d0, g_d1 = gy * y_d0 + gl * l_d0, gy * y_d1 + gl * l_d1

    bins = torch.arange(K, device=x.device)
    below, here = bins < k, bins == k  # [..., K]

    def through_softmax(u, min_size, g_left, g_width):
        # Knots left of the bin move with g_left, its right knot with g_width (see the header).
        p = torch.softmax(u, dim=-1)
        g = torch.where(below, g_left.unsqueeze(-1), torch.where(here, g_width.unsqueeze(-1), torch.zeros_like(p)))
        mean = (p * g).sum(-1, keepdim=True)
        return 2 * bound * (1 - min_size * K) * p * (g - mean)

    keep = inside.unsqueeze(-1)
    zero = torch.zeros((), dtype=x.dtype, device=x.device)
    grad_w = torch.where(keep, through_softmax(uw, min_bin_width, g_x0, g_w), zero)
    grad_h = torch.where(keep, through_softmax(uh, min_bin_height, g_y0, g_h), zero)
    sig = torch.sigmoid(ud)  # softplus'
    knots = torch.arange(K - 1, device=x.device)
    grad_d = (torch.where(knots == k - 1, (g_d0.unsqueeze(-1) * sig), zero)
              + torch.where(knots == k, (g_d1.unsqueeze(-1) * sig), zero))
    grad_d = torch.where(keep, grad_d, zero)
    grad_in = torch.where(inside, g_in, gy)
    return grad_in, grad_w, grad_h, grad_d


# ---- compiled core (cpu, cuda) ----------------------------------------------------------

def _core_forward(x, uw, uh, ud, inverse, bound, mw, mh, md, device_kind):
    out = torch.empty_like(x, memory_format=torch.contiguous_format)
    logdet = torch.empty_like(out)
    if x.numel() == 0:
        return out, logdet
    C = _core.compiled()
    args = (x, uw, uh, ud, bool(inverse), float(bound), float(mw), float(mh), float(md), out, logdet)
    if device_kind == "cuda":
        C.cuda_rq_spline_forward(*args, stream_of(x))
    else:
        C.rq_spline_forward(*args)
    return out, logdet


def _core_backward(gy, gl, x, uw, uh, ud, inverse, bound, mw, mh, md, device_kind):
    gy, gl = gy.contiguous(), gl.contiguous()
    N, K = uw.shape
    gx = torch.empty((N,), dtype=x.dtype, device=x.device)
    gw = torch.empty((N, K), dtype=x.dtype, device=x.device)
    gh = torch.empty((N, K), dtype=x.dtype, device=x.device)
    gd = torch.empty((N, K - 1), dtype=x.dtype, device=x.device)
    if N == 0:
        return gx, gw, gh, gd
    C = _core.compiled()
    args = (x, uw, uh, ud, bool(inverse), float(bound), float(mw), float(mh), float(md), gy, gl, gx, gw, gh, gd)
    if device_kind == "cuda":
        C.cuda_rq_spline_backward(*args, stream_of(x))
    else:
        C.rq_spline_backward(*args)
    return gx, gw, gh, gd


def _triton_forward(*args):
    from hepgen.triton import rq_spline as kernels

    return kernels.forward(*args)


def _triton_backward(*args):
    from hepgen.triton import rq_spline as kernels

    return kernels.backward(*args)


BACKENDS = op_backends("rq_spline", preference={"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")})
BACKENDS.register("reference", forward=rq_spline_reference, backward=rq_spline_backward_reference)
BACKENDS.register("cpu", forward=lambda *a: _core_forward(*a, "cpu"), backward=lambda *a: _core_backward(*a, "cpu"))
BACKENDS.register("cuda", forward=lambda *a: _core_forward(*a, "cuda"), backward=lambda *a: _core_backward(*a, "cuda"))
BACKENDS.register("triton", forward=_triton_forward, backward=_triton_backward)


# ---- the custom ops -----------------------------------------------------------------------
# Both take flat inputs [N] and parameter rows [N, K] / [N, K-1] whose last stride is 1
# (any row stride: the slices of one conditioner output are read in place).

@torch.library.custom_op("hepgen::rq_spline", mutates_args=())
def _rq_spline_op(inputs: torch.Tensor, widths: torch.Tensor, heights: torch.Tensor, derivatives: torch.Tensor,
                  inverse: bool, tail_bound: float, min_bin_width: float, min_bin_height: float,
                  min_derivative: float) -> tuple[torch.Tensor, torch.Tensor]:
    backend = BACKENDS.choose(inputs.device, inputs.dtype)
    return BACKENDS.get(backend, "forward")(inputs, widths, heights, derivatives, inverse, tail_bound,
                                            min_bin_width, min_bin_height, min_derivative)


@_rq_spline_op.register_fake
def _(inputs, widths, heights, derivatives, inverse, tail_bound, min_bin_width, min_bin_height, min_derivative):
    return torch.empty_like(inputs), torch.empty_like(inputs)


@torch.library.custom_op("hepgen::rq_spline_backward", mutates_args=())
def _rq_spline_backward_op(grad_outputs: torch.Tensor, grad_logabsdet: torch.Tensor, inputs: torch.Tensor,
                           widths: torch.Tensor, heights: torch.Tensor, derivatives: torch.Tensor,
                           inverse: bool, tail_bound: float, min_bin_width: float, min_bin_height: float,
                           min_derivative: float) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    backend = BACKENDS.choose(inputs.device, inputs.dtype)
    return BACKENDS.get(backend, "backward")(grad_outputs, grad_logabsdet, inputs, widths, heights, derivatives,
                                             inverse, tail_bound, min_bin_width, min_bin_height, min_derivative)


@_rq_spline_backward_op.register_fake
def _(grad_outputs, grad_logabsdet, inputs, widths, heights, derivatives, *scalars):
    return (inputs.new_empty(inputs.shape), widths.new_empty(widths.shape), heights.new_empty(heights.shape),
            derivatives.new_empty(derivatives.shape))


@records_forced_backend
def _setup_context(ctx, inputs, output):
    ctx.save_for_backward(*inputs[:4])
    ctx.scalars = inputs[4:]


@under_forced_backend
def _backward(ctx, grad_outputs, grad_logabsdet):
    x, uw, uh, ud = ctx.saved_tensors
    grads = _rq_spline_backward_op(grad_outputs, grad_logabsdet, x, uw, uh, ud, *ctx.scalars)
    return (*grads, None, None, None, None, None)


_rq_spline_op.register_autograd(_backward, setup_context=_setup_context)


# ---- eager path: the same kernels without the custom-op dispatcher --------------------------
# As for set_pool: a torch.library custom op costs tens of microseconds per eager call, more
# than the kernel at CaloMan's batch-1 sizes (8 spline calls per shower). Outside
# torch.compile, calls take this autograd Function, or no autograd at all. Both paths run
# the same backend functions. (The custom op has no double backward either.)

class _RQSplineEager(torch.autograd.Function):
    @staticmethod
    @records_forced_backend
    def forward(ctx, x, uw, uh, ud, inverse, bound, mw, mh, md):
        ctx.save_for_backward(x, uw, uh, ud)
        ctx.scalars = (inverse, bound, mw, mh, md)
        backend = BACKENDS.choose(x.device, x.dtype)
        return BACKENDS.get(backend, "forward")(x, uw, uh, ud, inverse, bound, mw, mh, md)

    @staticmethod
    @under_forced_backend
    def backward(ctx, grad_outputs, grad_logabsdet):
        x, uw, uh, ud = ctx.saved_tensors
        backend = BACKENDS.choose(x.device, x.dtype)
        grads = BACKENDS.get(backend, "backward")(grad_outputs, grad_logabsdet, x, uw, uh, ud, *ctx.scalars)
        return (*grads, None, None, None, None, None)


# ---- public entry point -----------------------------------------------------------------

def _as_rows(t: torch.Tensor, n: int, width: int) -> torch.Tensor:
    """[..., width] → [n, width] with unit last stride, without a copy where the strides allow."""
    if t.shape[-1] > 0 and t.stride(-1) != 1:
        t = t.contiguous()
    try:
        return t.view(n, width)
    except RuntimeError:  # broadcast (stride 0) or non-collapsible leading dims
        return t.reshape(n, width)


def _check(inputs, uw, uh, ud, tails, tail_bound, min_bin_width, min_bin_height, min_derivative):
    inputs = _checks.tensor("inputs", inputs)
    uw = _checks.tensor("unnormalized_widths", uw)
    uh = _checks.tensor("unnormalized_heights", uh)
    ud = _checks.tensor("unnormalized_derivatives", ud)
    _checks.floating("inputs", inputs)
    for name, t in (("unnormalized_widths", uw), ("unnormalized_heights", uh), ("unnormalized_derivatives", ud)):
        if t.dtype != inputs.dtype:
            raise TypeError(f"{name} must have the dtype of inputs ({inputs.dtype}), got {t.dtype}")
        _checks.same_device(name, t, "inputs", inputs)
        if t.dim() < 1:
            raise ValueError(f"{name} must have at least 1 dimension [..., bins], got a scalar")
    K = uw.shape[-1]
    if K < 1:
        raise ValueError(f"unnormalized_widths must have at least 1 bin in its last dimension, got shape {tuple(uw.shape)}")
    if uh.shape[-1] != K:
        raise ValueError(f"unnormalized_heights must have K = {K} bins in its last dimension (as "
                         f"unnormalized_widths), got shape {tuple(uh.shape)}")
    if ud.shape[-1] != K - 1:
        raise ValueError(f"unnormalized_derivatives must have K - 1 = {K - 1} interior knots in its last "
                         f"dimension, got shape {tuple(ud.shape)}")
    try:
        # Equal batch shapes (every call from hepgen.flows) skip broadcast_shapes, a visible
        # share of a batch-1 call.
        if inputs.shape == uw.shape[:-1] == uh.shape[:-1] == ud.shape[:-1]:
            batch = inputs.shape
        else:
            batch = torch.broadcast_shapes(inputs.shape, uw.shape[:-1], uh.shape[:-1], ud.shape[:-1])
    except RuntimeError:
        raise ValueError(
            f"inputs {tuple(inputs.shape)} and the batch shapes of unnormalized_widths {tuple(uw.shape[:-1])}, "
            f"unnormalized_heights {tuple(uh.shape[:-1])} and unnormalized_derivatives {tuple(ud.shape[:-1])} "
            f"must broadcast together") from None
    if tails != "linear":
        raise ValueError(f"tails must be 'linear' (the only tails of nflows' unconstrained spline), got {tails!r}")
    tail_bound = _checks.finite_float("tail_bound", tail_bound)
    if tail_bound <= 0:
        raise ValueError(f"tail_bound must be positive, got {tail_bound}")
    mins = []
    for name, value in (("min_bin_width", min_bin_width), ("min_bin_height", min_bin_height)):
        value = _checks.finite_float(name, value)
        if value < 0 or value * K > 1.0:
            raise ValueError(f"{name} must be in [0, 1/K] = [0, {1.0 / K:g}] for K = {K} bins, got {value}")
        mins.append(value)
    min_derivative = _checks.finite_float("min_derivative", min_derivative)
    if not 0 <= min_derivative < 1:
        raise ValueError(f"min_derivative must be in [0, 1) (the tails have slope 1), got {min_derivative}")
    return inputs, uw, uh, ud, batch, K, tail_bound, mins[0], mins[1], min_derivative


def rq_spline(inputs: torch.Tensor, unnormalized_widths: torch.Tensor, unnormalized_heights: torch.Tensor,
              unnormalized_derivatives: torch.Tensor, inverse: bool = False, tails: str = "linear",
              tail_bound: float = 1.0, min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
              min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
              min_derivative: float = DEFAULT_MIN_DERIVATIVE) -> tuple[torch.Tensor, torch.Tensor]:
    """Rational-quadratic spline with linear tails, forward or inverse, and its log|det J|.

    Args:
        inputs: values [...], floating point.
        unnormalized_widths: [..., K] bin-width logits (softmax-normalised).
        unnormalized_heights: [..., K] bin-height logits.
        unnormalized_derivatives: [..., K-1] interior-knot derivative pre-activations (softplus).
        inverse: evaluate the inverse spline (y → x); its logabsdet is log|dx/dy|.
        tails: "linear" (identity outside [-tail_bound, tail_bound]).
        tail_bound: B > 0, the spline acts on [-B, B].
        min_bin_width, min_bin_height: in [0, 1/K]; min_derivative: in [0, 1).

    Returns:
        (outputs, logabsdet), both of the broadcast batch shape and the inputs' dtype.
    """
    inputs, uw, uh, ud, batch, K, bound, mw, mh, md = _check(
        inputs, unnormalized_widths, unnormalized_heights, unnormalized_derivatives, tails, tail_bound,
        min_bin_width, min_bin_height, min_derivative)
    n = math.prod(batch)
    # reshape may return a strided view (a column of a wider tensor): the kernels need unit stride.
    x = inputs.expand(batch).reshape(n).contiguous()
    if uw.shape[:-1] == uh.shape[:-1] == ud.shape[:-1] == batch:  # no broadcasting: no expand views
        uw, uh, ud = _as_rows(uw, n, K), _as_rows(uh, n, K), _as_rows(ud, n, K - 1)
    else:
        uw = _as_rows(uw.expand(*batch, K), n, K)
        uh = _as_rows(uh.expand(*batch, K), n, K)
        ud = _as_rows(ud.expand(*batch, K - 1), n, K - 1)
    args = (x, uw, uh, ud, bool(inverse), bound, mw, mh, md)
    if torch.compiler.is_compiling():
        out, logdet = _rq_spline_op(*args)
    elif torch.is_grad_enabled() and any(t.requires_grad for t in args[:4]):
        out, logdet = _RQSplineEager.apply(*args)
    else:
        backend = BACKENDS.choose(x.device, x.dtype)
        out, logdet = BACKENDS.get(backend, "forward")(*args)
    return out.view(batch), logdet.view(batch)
