"""rq_spline's samples and bad inputs for the conformance suite."""

from __future__ import annotations

import torch
from cases import BadInput, OpCases, Sample, converter, seeded

from hepgen import ops
from hepgen.ops.rq_spline import NFLOWS_COUNT_REASON

# (batch shape, K): odd sizes, one bin, empty batches, many bins.
SHAPES = [
    ((1,), 1),
    ((7,), 1),
    ((0,), 8),
    ((2, 0, 3), 4),
    ((33, 5), 8),
    ((3, 4, 5), 3),
    ((257,), 16),
    ((19, 18), 8),
    ((41,), 2),
    ((6, 7), 13),
]
KW = dict(tail_bound=2.5, min_bin_width=1e-3, min_bin_height=2e-3, min_derivative=1e-2)
ALL = (0, 1, 2, 3)


def _params(g, batch, K, scale=1.0, bound=1.0, derivatives=None):
    """float64 inputs over [-1.5B, 1.5B] with both bounds hit exactly, and parameter logits
    (K - 1 derivatives unless `derivatives` says how many)."""
    x = (torch.rand(batch, generator=g, dtype=torch.float64) * 3 - 1.5) * bound
    flat = x.view(-1)
    if flat.numel() >= 4:
        flat[:4] = torch.tensor([-bound, bound, -bound * (1 - 1e-7), bound * 1.5], dtype=torch.float64)
    uw = torch.randn(*batch, K, generator=g, dtype=torch.float64) * scale
    uh = torch.randn(*batch, K, generator=g, dtype=torch.float64) * scale
    ud = torch.randn(*batch, K - 1 if derivatives is None else derivatives, generator=g, dtype=torch.float64) * scale
    return x, uw, uh, ud


def sample_inputs(device, dtype):
    to = converter(device, dtype)
    for batch, K in SHAPES:
        for inverse in (False, True):
            name = "x".join(map(str, batch)) + f"-K{K}-" + ("inverse" if inverse else "forward")
            args = _params(seeded(name), batch, K, bound=2.5)
            yield Sample(name, tuple(to(a) for a in args), dict(KW, inverse=inverse), grad=ALL)
    # nflows' other derivative counts (K + 1 as in nflows' own tests, K, K + 3): the reference's
    # compatibility path; the compiled backends refuse them (known_limits below). The
    # reference itself is checked against nflows in tests/ops/test_rq_spline.py.
    for (batch, K), extra in ((((33, 5), 8), 1), (((7,), 1), 1), (((41,), 2), 0), (((6, 7), 13), 3)):
        for inverse in (False, True):
            name = "x".join(map(str, batch)) + f"-K{K}-D{K - 1 + extra}-" + ("inverse" if inverse else "forward")
            args = _params(seeded(name), batch, K, bound=2.5, derivatives=K - 1 + extra)
            yield Sample(name, tuple(to(a) for a in args), dict(KW, inverse=inverse), grad=ALL)
    # Broadcasting: one spline per feature ([D, K]) for inputs [B, D]; one input per row for D splines.
    name = "broadcast-per-feature"
    g = seeded(name)
    x, _, _, _ = _params(g, (9, 5), 6)
    _, uw, uh, ud = _params(g, (5,), 6)
    yield Sample(name, tuple(to(a) for a in (x, uw, uh, ud)), grad=ALL)
    name = "broadcast-inputs"
    g = seeded(name)
    _, uw, uh, ud = _params(g, (9, 5), 6)
    x = torch.rand(9, 1, generator=g, dtype=torch.float64) * 2 - 1
    yield Sample(name, tuple(to(a) for a in (x, uw, uh, ud)), grad=ALL)
    # A conditioner emits [N, D, 3K - 1]: the three slices are strided views, read in place;
    # the inputs are transposed.
    name = "strided-conditioner"
    g = seeded(name)
    N, D, K = 13, 7, 8
    params = to(torch.randn(N, D, 3 * K - 1, generator=g, dtype=torch.float64))
    x = to(torch.rand(D, N, generator=g, dtype=torch.float64) * 2.4 - 1.2).t()
    yield Sample(name, (x, params[..., :K], params[..., K : 2 * K], params[..., 2 * K :]), grad=ALL)
    # Parameters with a non-unit stride along the bins, and with permuted leading dimensions.
    name = "strided-bins"
    g = seeded(name)
    x, _, uh, ud = _params(g, (N, D), K)
    uw = to(torch.randn(N, D, K, 2, generator=g, dtype=torch.float64))[..., 0]
    uh = to(uh).transpose(0, 1).contiguous().transpose(0, 1)
    yield Sample(name, (to(x), uw, uh, to(ud)), grad=ALL)
    # A column of a wider tensor (a reshape gives a stride-2 view), forward and inverse.
    for inverse in (False, True):
        name = "strided-column-" + ("inverse" if inverse else "forward")
        g = seeded(name)
        wide = to(torch.rand(7, 2, generator=g, dtype=torch.float64) * 2 - 1)
        _, uw, uh, ud = _params(g, (7, 1), 4)
        yield Sample(name, (wide[:, 1:], to(uw), to(uh), to(ud)), dict(inverse=inverse), grad=ALL)


def opcheck_samples(dtype):
    for inverse in (False, True):
        name = "11-K8-" + ("inverse" if inverse else "forward")
        args = tuple(a.to(dtype) for a in _params(seeded(name), (11,), 8))
        yield Sample(name, args, dict(inverse=inverse), grad=ALL)


def gradcheck_samples():
    for inverse in (False, True):
        x, uw, uh, ud = _params(seeded("gradcheck"), (3, 4), 5)
        x[0, 0] = 3.0  # one element in the tails
        yield Sample(
            f"gradcheck-{inverse}",
            (x, uw, uh, ud),
            dict(inverse=inverse, tail_bound=1.2, min_derivative=1e-2),
            grad=ALL,
        )


_X, _W, _H, _D = (t.float() for t in _params(seeded("bad"), (2, 3), 4))


def _bad(name, args, kwargs, error, match):
    return BadInput(name, ops.rq_spline, args, kwargs, error, match)


BAD_INPUTS = [
    _bad("inputs-list", ([1.0], _W, _H, _D), {}, TypeError, "inputs must be a torch.Tensor"),
    _bad("inputs-dtype", (_X.long(), _W, _H, _D), {}, TypeError, "inputs must have a floating dtype"),
    _bad("widths-dtype", (_X, _W.double(), _H, _D), {}, TypeError, "unnormalized_widths must have the dtype of inputs"),
    _bad("heights-bins", (_X, _W, _H[..., :3], _D), {}, ValueError, "unnormalized_heights must have K = 4 bins"),
    _bad(
        "derivatives-knots", (_X, _W, _H, _D[..., :2]), {}, ValueError, "unnormalized_derivatives must have K - 1 = 3"
    ),
    _bad("no-bins", (_X, _W[..., :0], _H[..., :0], _D), {}, ValueError, "unnormalized_widths must have at least 1 bin"),
    _bad(
        "derivatives-scalar",
        (_X, _W, _H, torch.tensor(1.0)),
        {},
        ValueError,
        "unnormalized_derivatives must have at least 1 dimension",
    ),
    _bad("no-broadcast", (_X[:, :2], _W, _H, _D), {}, ValueError, "must broadcast together"),
    _bad(
        "device",
        (_X, _W, _H, _D.to("meta")),
        {},
        ValueError,
        "unnormalized_derivatives is on meta but inputs is on cpu",
    ),
    _bad("tails", (_X, _W, _H, _D), {"tails": None}, ValueError, "tails must be 'linear'"),
    _bad("tail-bound-zero", (_X, _W, _H, _D), {"tail_bound": 0.0}, ValueError, "tail_bound must be positive"),
    _bad("tail-bound-inf", (_X, _W, _H, _D), {"tail_bound": float("inf")}, ValueError, "tail_bound must be finite"),
    _bad("min-bin-width", (_X, _W, _H, _D), {"min_bin_width": 0.3}, ValueError, r"min_bin_width must be in \[0, 1/K\]"),
    _bad(
        "min-bin-height",
        (_X, _W, _H, _D),
        {"min_bin_height": -1e-3},
        ValueError,
        r"min_bin_height must be in \[0, 1/K\]",
    ),
    _bad(
        "min-derivative", (_X, _W, _H, _D), {"min_derivative": 1.0}, ValueError, r"min_derivative must be in \[0, 1\)"
    ),
    _bad(
        "min-derivative-str", (_X, _W, _H, _D), {"min_derivative": "0.1"}, TypeError, "min_derivative must be a float"
    ),
]

# The spline is ill-conditioned in its knots: one rounding (an ulp of B) in a knot moves the
# position in the bin by ulp(B) / width, so two float32 evaluations whose knots round
# differently (a kernel's, and the float32 reference's) carry independent errors of that size.
# Hence a larger multiple and a floor of 100 float32 ulps of the largest value; in float64 the
# same effect allows ~1e-9.
CASES = OpCases(
    op="rq_spline",
    public=ops.rq_spline,
    reference=ops.rq_spline_reference,
    sample_inputs=sample_inputs,
    opcheck_samples=opcheck_samples,
    gradcheck_samples=gradcheck_samples,
    bad_inputs=BAD_INPUTS,
    factor=8.0,
    grad_factor=8.0,
    floor_ulps=100,
    float64_rtol=1e-9,
    layout_exact=True,
    known_limits=tuple((b, NFLOWS_COUNT_REASON) for b in ("cpu", "triton", "cuda")),
)
