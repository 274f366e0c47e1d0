"""The spec of rq_spline in plain PyTorch (the oracle of every backend; see hepgen.ops.rq_spline),
and the constants its kernels share (nflows' defaults, the end-knot derivative logit).

rq_spline_reference is also the only implementation of nflows' other derivative counts
(K or more unnormalised derivatives for K bins, see :func:`knot_derivatives`): the compiled
kernels take K - 1 interior derivatives with unit slopes at both ends.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

__all__ = [
    "DEFAULT_MIN_BIN_HEIGHT",
    "DEFAULT_MIN_BIN_WIDTH",
    "DEFAULT_MIN_DERIVATIVE",
    "boundary_derivative_logit",
    "knot_derivatives",
    "rq_spline_backward_reference",
    "rq_spline_reference",
]

# nflows' defaults.
DEFAULT_MIN_BIN_WIDTH = 1e-3
DEFAULT_MIN_BIN_HEIGHT = 1e-3
DEFAULT_MIN_DERIVATIVE = 1e-3
_HALF = (torch.float16, torch.bfloat16)


def boundary_derivative_logit(min_derivative: float) -> float:
    """nflows' constant: the unnormalised derivative at the end knots, log(e^(1 - min_d) - 1).

    With it the end-knot derivative is min_d + softplus(constant) = 1, the tails' slope.
    """
    return math.log(math.expm1(1.0 - min_derivative))


def knot_derivatives(unnormalized_derivatives: torch.Tensor, num_bins: int, min_derivative: float) -> torch.Tensor:
    """The K+1 knot derivatives [..., K+1] from D >= K-1 unnormalised derivatives [..., D], as nflows.

    nflows pads whatever it is given with its end constant on both sides (D + 2 values) and
    reads the first K + 1. With D = K - 1 (linear tails as nflows' transforms call it) that is
    [1, d_0, ..., d_{K-2}, 1]: unit slopes at both ends, the tails' slope. With D >= K it is
    [1, d_0, ..., d_{K-1}]: the right end knot takes the softplus-based d_{K-1}, so the
    derivative jumps at x = B (to the tail's 1), and d_K, ... and the right pad are ignored
    (gradient 0). We reproduce that for drop-in use (nflows' own tests pass K + 1); fewer than
    K - 1 derivatives leave knots without one (nflows fails on them), which the public
    function refuses.
    """
    padded = F.pad(unnormalized_derivatives, (1, 1), value=boundary_derivative_logit(min_derivative))
    return min_derivative + F.softplus(padded[..., : num_bins + 1])


def _knots(unnormalized: torch.Tensor, min_size: float, bound: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Knot positions [..., K+1] on [-bound, bound] and bin sizes [..., K], computed as nflows does."""
    K = unnormalized.shape[-1]
    sizes = min_size + (1 - min_size * K) * torch.softmax(unnormalized, dim=-1)
    knots = F.pad(torch.cumsum(sizes, dim=-1), (1, 0), value=0.0)
    knots = 2 * bound * knots - bound
    # Pin the ends exactly (the cumulative sum only reaches 1 up to rounding).
    knots = torch.cat(
        [torch.full_like(knots[..., :1], -bound), knots[..., 1:-1], torch.full_like(knots[..., :1], bound)], dim=-1
    )
    return knots, knots[..., 1:] - knots[..., :-1]


def rq_spline_reference(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tail_bound: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Plain-PyTorch spline: (outputs, logabsdet), both of the broadcast batch shape.

    ``unnormalized_derivatives`` has K - 1 values per element, or K or more (nflows' treatment,
    see :func:`knot_derivatives`).

    Differentiable by autograd everywhere (elements outside the bounds are evaluated at 0
    and then replaced, so they contribute no NaN to any gradient). Half types are computed
    in float32 and rounded at the end, like the kernels (computed in half, the inverse's
    quadratic loses every digit and gives NaN for inputs near a knot).
    """
    if inputs.dtype in _HALF:
        args = (inputs, unnormalized_widths, unnormalized_heights, unnormalized_derivatives)
        outputs, logabsdet = rq_spline_reference(
            *(t.float() for t in args), inverse, tail_bound, min_bin_width, min_bin_height, min_derivative
        )
        return outputs.to(inputs.dtype), logabsdet.to(inputs.dtype)
    K = unnormalized_widths.shape[-1]
    batch = torch.broadcast_shapes(
        inputs.shape,
        unnormalized_widths.shape[:-1],
        unnormalized_heights.shape[:-1],
        unnormalized_derivatives.shape[:-1],
    )
    inputs = inputs.expand(batch)
    uw = unnormalized_widths.expand(*batch, K)
    uh = unnormalized_heights.expand(*batch, K)
    ud = unnormalized_derivatives.expand(*batch, unnormalized_derivatives.shape[-1])
    bound = tail_bound

    inside = (inputs >= -bound) & (inputs <= bound)  # False for NaN and ±inf
    z = torch.where(inside, inputs, torch.zeros_like(inputs))  # a safe point for the outside ones

    xk, widths = _knots(uw, min_bin_width, bound)
    yk, heights = _knots(uh, min_bin_height, bound)
    derivs = knot_derivatives(ud, K, min_derivative)  # [..., K+1], 1 at both ends for K - 1 given

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


def rq_spline_backward_reference(
    grad_outputs: torch.Tensor,
    grad_logabsdet: torch.Tensor,
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tail_bound: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
) -> tuple[torch.Tensor, ...]:
    """The hand-derived gradients of rq_spline_reference, in plain PyTorch, for equal batch shapes
    and K - 1 unnormalised derivatives (the kernels' case; other counts get autograd's).

    Returns the gradients for (inputs, widths, heights, derivatives). The derivation is in
    csrc/cpu/rq_spline_bin.h; the kernels implement exactly these formulas, and the tests
    check them against autograd through rq_spline_reference. Half types are computed in float32.
    """
    if inputs.dtype in _HALF:
        args = (
            grad_outputs,
            grad_logabsdet,
            inputs,
            unnormalized_widths,
            unnormalized_heights,
            unnormalized_derivatives,
        )
        grads = rq_spline_backward_reference(
            *(t.float() for t in args), inverse, tail_bound, min_bin_width, min_bin_height, min_derivative
        )
        return tuple(g.to(inputs.dtype) for g in grads)
    x, uw, uh, ud, gy, gl = (
        inputs,
        unnormalized_widths,
        unnormalized_heights,
        unnormalized_derivatives,
        grad_outputs,
        grad_logabsdet,
    )
    K, bound = uw.shape[-1], tail_bound
    inside = (x >= -bound) & (x <= bound)
    z = torch.where(inside, x, torch.zeros_like(x))
    xk, widths = _knots(uw, min_bin_width, bound)
    yk, heights = _knots(uh, min_bin_height, bound)
    if ud.shape[-1] != K - 1:
        raise ValueError(
            f"rq_spline_backward_reference takes K - 1 = {K - 1} unnormalized_derivatives, got {ud.shape[-1]}"
        )
    derivs = knot_derivatives(ud, K, min_derivative)
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
    grad_d = torch.where(knots == k - 1, (g_d0.unsqueeze(-1) * sig), zero) + torch.where(
        knots == k, (g_d1.unsqueeze(-1) * sig), zero
    )
    grad_d = torch.where(keep, grad_d, zero)
    grad_in = torch.where(inside, g_in, gy)
    return grad_in, grad_w, grad_h, grad_d
