"""Bad calls straight into torch.ops.hepgen.rq_spline and rq_spline_backward (as torch.compile
graphs and exported programs make them, without the public function): each raises a
TypeError/ValueError naming the argument on every backend, before any kernel; the same calls
into the compiled core's glue end in a Python exception, never a crash."""

from __future__ import annotations

import pytest
import torch
from registered_calls import BadCall, cpu_backends, probe_glue

import hepgen.ops as ops
from hepgen.ops import _declare
from hepgen.ops.rq_spline import RQ_SPLINE, RQ_SPLINE_BACKWARD

N, K = 5, 4
SCALARS = (False, 1.0, 1e-3, 1e-3, 1e-3)  # inverse, tail_bound, min_bin_width, min_bin_height, min_derivative


def _forward(x=None, w=None, h=None, d=None, scalars=None, **changed):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(N, generator=g) if x is None else x
    w = torch.randn(N, K, generator=g) if w is None else w
    h = torch.randn(N, K, generator=g) if h is None else h
    d = torch.randn(N, K - 1, generator=g) if d is None else d
    s = dict(zip(("inverse", "tail_bound", "min_bin_width", "min_bin_height", "min_derivative"), SCALARS))
    s.update(changed)
    return (x, w, h, d, *s.values())


def _backward(gy=None, gl=None, **forward):
    gy = torch.ones(N) if gy is None else gy
    gl = torch.ones(N) if gl is None else gl
    return (gy, gl, *_forward(**forward))


def _bad(name, error, match, **kw):
    return BadCall(
        name, "rq_spline", lambda: _forward(**kw), error, match, glue="hepgen.ops.compiled.rq_spline._core_forward"
    )


def _bad_backward(name, error, match, **kw):
    return BadCall(
        name,
        "rq_spline_backward",
        lambda: _backward(**kw),
        error,
        match,
        glue="hepgen.ops.compiled.rq_spline._core_backward",
    )


BAD_CALLS = [
    _bad("inputs-int", TypeError, "inputs must have a floating dtype", x=torch.arange(N)),
    _bad("inputs-complex", TypeError, "inputs must have a floating dtype", x=torch.randn(N, dtype=torch.complex64)),
    _bad("inputs-bool", TypeError, "inputs must have a floating dtype", x=torch.ones(N, dtype=torch.bool)),
    _bad("inputs-rank", ValueError, r"inputs must have 1 dimensions", x=torch.randn(N, 1)),
    _bad("inputs-scalar", ValueError, r"inputs must have 1 dimensions", x=torch.tensor(0.5)),
    _bad("widths-dtype", TypeError, r"widths must have the dtype of inputs", w=torch.randn(N, K, dtype=torch.float64)),
    _bad("heights-int", TypeError, r"heights must have the dtype of inputs", h=torch.ones(N, K, dtype=torch.int32)),
    _bad("widths-rank", ValueError, r"widths must have 2 dimensions", w=torch.randn(N * K)),
    _bad("widths-rows", ValueError, r"widths must have N = 5 rows", w=torch.randn(N + 1, K)),
    _bad("heights-rows", ValueError, r"heights must have N = 5 rows", h=torch.randn(1, K)),
    _bad("heights-bins", ValueError, r"heights must have K = 4 bins", h=torch.randn(N, K + 1)),
    _bad("no-bins", ValueError, r"widths must have at least 1 bin", w=torch.randn(N, 0), h=torch.randn(N, 0)),
    # nflows' counts (K or more) are the public function's compatibility path, not the op's.
    _bad("derivatives-k", ValueError, r"derivatives must have K - 1 = 3", d=torch.randn(N, K)),
    _bad("derivatives-few", ValueError, r"derivatives must have K - 1 = 3", d=torch.randn(N, K - 2)),
    _bad("derivatives-rows", ValueError, r"derivatives must have N = 5 rows", d=torch.randn(2 * N, K - 1)),
    _bad("tail-bound-nan", ValueError, "tail_bound must be finite", tail_bound=float("nan")),
    _bad("tail-bound-inf", ValueError, "tail_bound must be finite", tail_bound=float("inf")),
    _bad("tail-bound-zero", ValueError, "tail_bound must be positive", tail_bound=0.0),
    _bad("tail-bound-negative", ValueError, "tail_bound must be positive", tail_bound=-2.0),
    _bad("min-bin-width-big", ValueError, r"min_bin_width must be in \[0, 1/K\]", min_bin_width=0.3),
    _bad("min-bin-width-nan", ValueError, "min_bin_width must be finite", min_bin_width=float("nan")),
    _bad("min-bin-height-negative", ValueError, r"min_bin_height must be in \[0, 1/K\]", min_bin_height=-1e-3),
    _bad("min-derivative-one", ValueError, r"min_derivative must be in \[0, 1\)", min_derivative=1.0),
    _bad("min-derivative-inf", ValueError, "min_derivative must be finite", min_derivative=-float("inf")),
    _bad_backward(
        "backward-grad-outputs-shape", ValueError, "grad_outputs must have the shape of inputs", gy=torch.ones(N + 1)
    ),
    _bad_backward(
        "backward-grad-logabsdet-dtype",
        TypeError,
        "grad_logabsdet must have the dtype of inputs",
        gl=torch.ones(N, dtype=torch.float64),
    ),
    _bad_backward("backward-grad-outputs-rank", ValueError, "grad_outputs must have the shape", gy=torch.ones(N, 1)),
    _bad_backward("backward-inputs-int", TypeError, "inputs must have a floating dtype", x=torch.arange(N)),
    _bad_backward("backward-derivatives-k", ValueError, r"derivatives must have K - 1 = 3", d=torch.randn(N, K)),
    _bad_backward("backward-widths-rows", ValueError, r"widths must have N = 5 rows", w=torch.randn(N + 2, K)),
    _bad_backward("backward-tail-bound-nan", ValueError, "tail_bound must be finite", tail_bound=float("nan")),
    _bad_backward("backward-min-bin-height", ValueError, r"min_bin_height must be in \[0, 1/K\]", min_bin_height=0.5),
]


@pytest.mark.parametrize("backend", cpu_backends("rq_spline"))
@pytest.mark.parametrize("call", BAD_CALLS, ids=str)
def test_registered_op_refuses_bad_calls_before_any_kernel(call, backend):
    with (
        ops.use_backend({"rq_spline": backend}),
        _declare.recording() as ran,
        pytest.raises(call.error, match=call.match),
    ):
        getattr(torch.ops.hepgen, call.op)(*call.args())
    assert not ran, "a backend ran before the refusal"


@pytest.mark.parametrize("validate, args", [(RQ_SPLINE.validate, _forward), (RQ_SPLINE_BACKWARD.validate, _backward)])
def test_validate_names_a_parameter_on_another_device(validate, args):
    # Mixed cpu/meta calls of the registered op are dispatched to the fake (meta) kernel by
    # PyTorch, so the op's body never sees them; the check itself still refuses them.
    with pytest.raises(ValueError, match="derivatives is on meta but inputs is on cpu"):
        validate(*args(d=torch.randn(N, K - 1, device="meta")))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a GPU for a second device")
def test_registered_op_refuses_a_parameter_on_another_device():
    with pytest.raises(ValueError, match="widths is on cpu but inputs is on cuda"):
        torch.ops.hepgen.rq_spline(*_forward(x=torch.randn(N, device="cuda")))


def test_registered_op_accepts_any_strides():
    # The public function hands the kernels dense rows; a direct call may pass any views.
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2 * N, generator=g, dtype=torch.float64)[::2]
    w, h = (torch.randn(K, N, generator=g, dtype=torch.float64).t() for _ in range(2))
    d = torch.randn(N, 2 * (K - 1), generator=g, dtype=torch.float64)[:, ::2]
    args = (x, w, h, d, True, 1.5, 1e-3, 1e-3, 1e-3)
    expected = ops.rq_spline_reference(*(a.contiguous() if isinstance(a, torch.Tensor) else a for a in args))
    for backend in cpu_backends("rq_spline"):
        with ops.use_backend({"rq_spline": backend}):
            got = torch.ops.hepgen.rq_spline(*args)
        for a, b in zip(got, expected):
            torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9, msg=lambda m: f"{backend}: {m}")


def test_compiled_glue_survives_every_bad_call(tmp_path):
    outcomes = probe_glue("test_registered_ops_rq_spline", tmp_path)
    assert len(outcomes) == sum(c.glue is not None for c in BAD_CALLS)
    returned = [o["name"] for o in outcomes if o.get("returned")]
    allowed = {c.name for c in BAD_CALLS if c.glue_may_return}
    assert set(returned) <= allowed, f"the glue ran bad calls without a word: {sorted(set(returned) - allowed)}"
