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

nflows' other derivative counts (a compatibility path): nflows pads whatever derivatives it
gets with its end constant on both sides and reads the first K + 1, so it also accepts K or
more of them (its own spline tests pass K + 1). Then the knot derivatives are
[1, d_0, ..., d_{K-1}] and the rest is ignored: the right end knot has slope d_{K-1}, not the
tail's 1, so the derivative is discontinuous at x = B (the map and the tails are unchanged).
We reproduce that exactly, with the plain-PyTorch reference and autograd (the compiled
kernels assume K - 1 interior derivatives and unit end slopes; the standard path pays
nothing for this). A forced compiled backend (``use_backend``, ``HEPGEN_BACKEND``) on such
input raises a RuntimeError saying so rather than silently running something else; the
reference backend, or none forced, runs it. Fewer than K - 1 derivatives leave knots without
one (nflows fails with an index error as soon as an input falls in such a bin; we refuse the
shape up front with a ValueError).

Shapes (broadcasting): ``inputs`` [...], the three parameter tensors [..., K], [..., K], [..., K-1]
(or [..., D], D >= K, as above).
The batch shapes ``inputs.shape``, ``widths.shape[:-1]``, ... broadcast together as in
PyTorch; outputs have the broadcast shape. (nflows requires them to be equal; equal shapes are
the fast path. A broadcast parameter tensor, e.g. one spline per feature [D, K] for inputs
[B, D], is expanded before the kernel and its gradient is summed back by autograd.)

Non-finite inputs: NaN, +inf and -inf lie outside [-B, B], so they pass through the identity
tails (NaN → NaN, ±inf → ±inf) with log|det J| = 0 and gradient 1, as in nflows. Non-finite
parameters give NaN outputs for the elements that use them. No kernel ever reads outside a
row: the bin index is clamped to [0, K-1] whatever the comparisons say.

Huge parameters: where the log-derivative's quotient s^2 m / den^2 over- or underflows
(derivative logits beyond about 1e150 in float64, 1e19 in float32) every backend takes the
log by parts, as the spec does, instead of returning -inf. The gradients of an element whose
parameters hold such huge finite values (beyond about 1e100) overflow in their intermediate
terms and are unspecified (the backends' formulas overflow differently); its outputs and
logabsdet are not. Half types are computed in float32
on every backend, the reference included, and rounded at the end.

Validation, one rule per argument for every entry point (TypeError for a wrong kind or dtype,
ValueError for a wrong shape or value; the message names the argument):

- tensors: inputs floating (float16, bfloat16, float32, float64; integer, bool and complex
  refused), the three parameter tensors of its dtype and device, each with a bins dimension;
- bins: K >= 1 widths and heights, K - 1 derivatives (the public function also takes nflows'
  D >= K, above);
- scalars: tail_bound finite and > 0, min_bin_width and min_bin_height finite in [0, 1/K],
  min_derivative finite in [0, 1).

The public function converts (broadcasting, flattening) and applies the rules with its
argument names; the registered ops ``torch.ops.hepgen.rq_spline`` and ``rq_spline_backward``
(what torch.compile graphs and exported programs call) apply the same rules to their schema
arguments in the op's body (``validate=``), which have exact shapes: inputs [N], widths and
heights [N, K], derivatives [N, K - 1], and for the backward grad_outputs and grad_logabsdet
[N] of the inputs' dtype. They take any strides: the kernels' glue copies only what is not
dense. The C++ entry points check the same and return an error status (a ValueError through
hepgen._C), never reading out of bounds.

Gradients: first order, for the inputs and all three parameter tensors, from a fused
backward op (``hepgen::rq_spline_backward``) that recomputes the spline from the inputs; its
derivation is written out in csrc/cpu/rq_spline.cpp. Second-order gradients are not
supported (the backward op has no autograd formula).

Spec: hepgen/ops/reference/rq_spline.py. Kernels: hepgen/ops/compiled/rq_spline.py (cpu, cuda),
hepgen/triton/rq_spline.py. Tests: tests/ops/conformance (fed by tests/ops/samples/rq_spline.py)
and tests/ops/test_rq_spline.py (round trips, nflows, broadcasting, non-finite inputs),
tests/ops/test_registered_ops_rq_spline.py (bad calls of the registered ops and the compiled
glue), tests/ops/fuzz/test_fuzz_rq_spline.py (Hypothesis: layouts, dtypes, special values).
"""

from __future__ import annotations

import math

import torch

from hepgen.ops import _checks
from hepgen.ops._backends import forced_backend
from hepgen.ops._declare import Backward, Op
from hepgen.ops.compiled import rq_spline as compiled
from hepgen.ops.reference.rq_spline import (
    DEFAULT_MIN_BIN_HEIGHT,
    DEFAULT_MIN_BIN_WIDTH,
    DEFAULT_MIN_DERIVATIVE,
    boundary_derivative_logit,
    rq_spline_backward_reference,
    rq_spline_reference,
)

__all__ = [
    "BACKENDS",
    "DEFAULT_MIN_BIN_HEIGHT",
    "DEFAULT_MIN_BIN_WIDTH",
    "DEFAULT_MIN_DERIVATIVE",
    "NFLOWS_COUNT_REASON",
    "RQ_SPLINE",
    "RQ_SPLINE_BACKWARD",
    "boundary_derivative_logit",
    "rq_spline",
    "rq_spline_backward_reference",
    "rq_spline_reference",
]


def _triton(name, layout):
    def call(*args):
        from hepgen.triton import rq_spline as kernels

        return getattr(kernels, name)(*layout(*args))

    return call


# ---- argument checks (run once, before any kernel) ---------------------------------------


def _as_rows(t: torch.Tensor, n: int, width: int) -> torch.Tensor:
    """[..., width] → [n, width] with unit last stride, without a copy where the strides allow."""
    if t.shape[-1] > 0 and t.stride(-1) != 1:
        t = t.contiguous()
    try:
        return t.view(n, width)
    except RuntimeError:  # broadcast (stride 0) or non-collapsible leading dims
        return t.reshape(n, width)


def _tensors(inputs_name, inputs, parameters):
    """The rule on the tensors' kinds: inputs floating, every parameter a tensor of at least one
    dimension with its dtype and device."""
    _checks.tensor(inputs_name, inputs)
    for name, t in parameters:
        _checks.tensor(name, t)
    _checks.floating(inputs_name, inputs)
    for name, t in parameters:
        if t.dtype != inputs.dtype:
            raise TypeError(f"{name} must have the dtype of {inputs_name} ({inputs.dtype}), got {t.dtype}")
        _checks.same_device(name, t, inputs_name, inputs)
        if t.dim() < 1:
            raise ValueError(f"{name} must have at least 1 dimension [..., bins], got a scalar")


def _bins(names, uw, uh, ud, nflows_counts: bool) -> int:
    """The rule on the bin counts: K >= 1 widths and heights, K - 1 derivatives (or, on the public
    function only, nflows' D >= K, see the module docstring). Returns K."""
    w_name, h_name, d_name = names
    K = uw.shape[-1]
    if K < 1:
        raise ValueError(f"{w_name} must have at least 1 bin in its last dimension, got shape {tuple(uw.shape)}")
    if uh.shape[-1] != K:
        raise ValueError(
            f"{h_name} must have K = {K} bins in its last dimension (as {w_name}), got shape {tuple(uh.shape)}"
        )
    D = ud.shape[-1]
    if D < K - 1 or (D != K - 1 and not nflows_counts):
        also = f" (or at least K = {K}, which nflows also accepts)" if nflows_counts else ""
        raise ValueError(
            f"{d_name} must have K - 1 = {K - 1} interior knots in its last dimension{also}, "
            f"got shape {tuple(ud.shape)}"
        )
    return K


def _scalars(tail_bound, min_bin_width, min_bin_height, min_derivative, K: int):
    """The rule on the scalars: all finite; tail_bound > 0, minimum sizes in [0, 1/K],
    min_derivative in [0, 1). Returns them as floats."""
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
    return tail_bound, mins[0], mins[1], min_derivative


def _check(inputs, uw, uh, ud, tails, tail_bound, min_bin_width, min_bin_height, min_derivative):
    """The public function's check: the rules above on its names, plus broadcasting and tails."""
    names = ("unnormalized_widths", "unnormalized_heights", "unnormalized_derivatives")
    _tensors("inputs", inputs, tuple(zip(names, (uw, uh, ud))))
    K = _bins(names, uw, uh, ud, nflows_counts=True)
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
            f"must broadcast together"
        ) from None
    if tails != "linear":
        raise ValueError(f"tails must be 'linear' (the only tails of nflows' unconstrained spline), got {tails!r}")
    scalars = _scalars(tail_bound, min_bin_width, min_bin_height, min_derivative, K)
    return (inputs, uw, uh, ud, batch, K, *scalars)


def _validate(inputs, widths, heights, derivatives, inverse, tail_bound, min_bin_width, min_bin_height, min_derivative):
    """The registered op's check (``torch.ops.hepgen.rq_spline``): the same rules on the schema's
    arguments, which have exact shapes inputs [N], widths and heights [N, K], derivatives
    [N, K - 1] (no broadcasting, no nflows counts: the public function makes these)."""
    _tensors("inputs", inputs, (("widths", widths), ("heights", heights), ("derivatives", derivatives)))
    _checks.rank("inputs", inputs, 1, "[N] (the public rq_spline flattens)")
    N = inputs.shape[0]
    for name, t in (("widths", widths), ("heights", heights), ("derivatives", derivatives)):
        _checks.rank(name, t, 2, "[N, bins]")
        if t.shape[0] != N:
            raise ValueError(f"{name} must have N = {N} rows (the elements of inputs), got shape {tuple(t.shape)}")
    K = _bins(("widths", "heights", "derivatives"), widths, heights, derivatives, nflows_counts=False)
    if not isinstance(inverse, bool):
        raise TypeError(f"inverse must be a bool, got {type(inverse).__name__}")
    _scalars(tail_bound, min_bin_width, min_bin_height, min_derivative, K)


def _validate_backward(grad_outputs, grad_logabsdet, inputs, *rest):
    """The registered backward op's check: the forward's, and both incoming gradients [N] like inputs."""
    _validate(inputs, *rest)
    for name, g in (("grad_outputs", grad_outputs), ("grad_logabsdet", grad_logabsdet)):
        _checks.tensor(name, g)
        if g.dtype != inputs.dtype:
            raise TypeError(f"{name} must have the dtype of inputs ({inputs.dtype}), got {g.dtype}")
        _checks.same_device(name, g, "inputs", inputs)
        if tuple(g.shape) != tuple(inputs.shape):
            raise ValueError(f"{name} must have the shape of inputs {tuple(inputs.shape)}, got {tuple(g.shape)}")


def _kernel_layout(inputs, widths, heights, derivatives, *scalars):
    """What the compiled and Triton kernels index: dense inputs and unit-stride parameter rows
    (any row stride). The public function passes these already; a direct call of the registered
    op may pass any strides, so the kernels' glue copies only what is not in that layout."""
    rows = tuple(t if t.shape[-1] <= 1 or t.stride(-1) == 1 else t.contiguous() for t in (widths, heights, derivatives))
    return (inputs.contiguous(), *rows, *scalars)


def _backward_layout(grad_outputs, grad_logabsdet, *forward_args):
    return (grad_outputs.contiguous(), grad_logabsdet.contiguous(), *_kernel_layout(*forward_args))


# ---- the declarations ---------------------------------------------------------------------
# Both ops take flat inputs [N] and parameter rows [N, K] / [N, K-1] whose last stride is 1
# (any row stride: the slices of one conditioner output are read in place).

_SCALARS = "bool inverse, float tail_bound, float min_bin_width, float min_bin_height, float min_derivative"

RQ_SPLINE_BACKWARD = Op(
    "rq_spline_backward",
    f"(Tensor grad_outputs, Tensor grad_logabsdet, Tensor inputs, Tensor widths, Tensor heights, "
    f"Tensor derivatives, {_SCALARS}) -> (Tensor, Tensor, Tensor, Tensor)",
    family="rq_spline",
    reference=rq_spline_backward_reference,
    fake=lambda gy, gl, x, uw, uh, ud, *scalars: (
        x.new_empty(x.shape),
        uw.new_empty(uw.shape),
        uh.new_empty(uh.shape),
        ud.new_empty(ud.shape),
    ),
    backends={
        "cpu": lambda *a: compiled._core_backward(*_backward_layout(*a), "cpu"),
        "cuda": lambda *a: compiled._core_backward(*_backward_layout(*a), "cuda"),
        "triton": _triton("backward", _backward_layout),
    },
    validate=_validate_backward,
)

_SAVED = (
    "inputs",
    "widths",
    "heights",
    "derivatives",
    "inverse",
    "tail_bound",
    "min_bin_width",
    "min_bin_height",
    "min_derivative",
)


def _grads(spline_backward, s, grad_outputs, grad_logabsdet):
    grads = spline_backward(
        grad_outputs,
        grad_logabsdet,
        s.inputs,
        s.widths,
        s.heights,
        s.derivatives,
        s.inverse,
        s.tail_bound,
        s.min_bin_width,
        s.min_bin_height,
        s.min_derivative,
    )
    return (*grads, None, None, None, None, None)


RQ_SPLINE = Op(
    "rq_spline",
    f"(Tensor inputs, Tensor widths, Tensor heights, Tensor derivatives, {_SCALARS}) -> (Tensor, Tensor)",
    outputs=("outputs", "logabsdet"),
    reference=rq_spline_reference,
    fake=lambda x, *rest: (torch.empty_like(x), torch.empty_like(x)),
    backends={
        "cpu": lambda *a: compiled._core_forward(*_kernel_layout(*a), "cpu"),
        "cuda": lambda *a: compiled._core_forward(*_kernel_layout(*a), "cuda"),
        "triton": _triton("forward", _kernel_layout),
    },
    preference={"cpu": ("cpu", "reference"), "cuda": ("cuda", "triton", "reference")},
    backward=Backward(save=_SAVED, op="rq_spline_backward", grads=_grads),
    check=_check,  # also returns the batch shape and K: the public function flattens around the op
    validate=_validate,
)

BACKENDS = RQ_SPLINE.table


# ---- public entry point -----------------------------------------------------------------


def rq_spline(
    inputs: torch.Tensor,
    unnormalized_widths: torch.Tensor,
    unnormalized_heights: torch.Tensor,
    unnormalized_derivatives: torch.Tensor,
    inverse: bool = False,
    tails: str = "linear",
    tail_bound: float = 1.0,
    min_bin_width: float = DEFAULT_MIN_BIN_WIDTH,
    min_bin_height: float = DEFAULT_MIN_BIN_HEIGHT,
    min_derivative: float = DEFAULT_MIN_DERIVATIVE,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Rational-quadratic spline with linear tails, forward or inverse, and its log|det J|.

    Args:
        inputs: values [...], floating point.
        unnormalized_widths: [..., K] bin-width logits (softmax-normalised).
        unnormalized_heights: [..., K] bin-height logits.
        unnormalized_derivatives: [..., K-1] interior-knot derivative pre-activations (softplus);
            [..., D] with D >= K runs nflows' treatment of those counts (module docstring).
        inverse: evaluate the inverse spline (y → x); its logabsdet is log|dx/dy|.
        tails: "linear" (identity outside [-tail_bound, tail_bound]).
        tail_bound: B > 0, the spline acts on [-B, B].
        min_bin_width, min_bin_height: in [0, 1/K]; min_derivative: in [0, 1).

    Returns:
        (outputs, logabsdet), both of the broadcast batch shape and the inputs' dtype.

    Raises:
        TypeError: a non-tensor, non-floating inputs (integer, bool, complex), parameters of
            another dtype, non-numeric scalars. ValueError: parameters on another device,
            fewer than 1 bin or K - 1 derivatives, batch shapes that do not broadcast,
            non-finite or out-of-range scalars. The registered op refuses the same.
    """
    inputs, uw, uh, ud, batch, K, bound, mw, mh, md = _check(
        inputs,
        unnormalized_widths,
        unnormalized_heights,
        unnormalized_derivatives,
        tails,
        tail_bound,
        min_bin_width,
        min_bin_height,
        min_derivative,
    )
    if ud.shape[-1] != K - 1:
        return _nflows_derivative_count(inputs, uw, uh, ud, bool(inverse), bound, mw, mh, md)
    n = math.prod(batch)
    # reshape may return a strided view (a column of a wider tensor): the kernels need unit stride.
    x = inputs.expand(batch).reshape(n).contiguous()
    if uw.shape[:-1] == uh.shape[:-1] == ud.shape[:-1] == batch:  # no broadcasting: no expand views
        uw, uh, ud = _as_rows(uw, n, K), _as_rows(uh, n, K), _as_rows(ud, n, K - 1)
    else:
        uw = _as_rows(uw.expand(*batch, K), n, K)
        uh = _as_rows(uh.expand(*batch, K), n, K)
        ud = _as_rows(ud.expand(*batch, K - 1), n, K - 1)
    out, logdet = RQ_SPLINE(x, uw, uh, ud, bool(inverse), bound, mw, mh, md)
    return out.view(batch), logdet.view(batch)


NFLOWS_COUNT_REASON = (
    "the compiled kernels take K - 1 unnormalized_derivatives (unit slopes at both end knots); "
    "K or more (nflows' padding) run only on the reference backend"
)


def _nflows_derivative_count(inputs, uw, uh, ud, inverse, bound, mw, mh, md):
    """D >= K unnormalised derivatives: nflows' treatment, by the reference (module docstring).

    This path exists for drop-in use only (nflows' own tests call the function that way); it
    reproduces nflows, whose right end knot then has a non-unit slope. Gradients come from
    autograd through the reference.
    """
    forced = forced_backend(RQ_SPLINE.family)
    if forced not in (None, "reference"):
        raise RuntimeError(
            f"rq_spline: backend {forced!r} was requested but cannot run {ud.shape[-1]} "
            f"unnormalized_derivatives for K = {uw.shape[-1]} bins: {NFLOWS_COUNT_REASON}"
        )
    return rq_spline_reference(inputs, uw, uh, ud, inverse, bound, mw, mh, md)
