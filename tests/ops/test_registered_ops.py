"""The entry points that skip the public functions refuse bad input: set_pool, epic_local, ode_combine.

torch.compile graphs, exported programs and users call ``torch.ops.hepgen.<op>`` (and its
backward op) directly, and the op glue and C++ runtime call the compiled core: each refuses a
bad call with an exception naming the argument, on every backend, instead of reading out of
bounds (issue 19: ``torch.ops.hepgen.set_pool`` with x [4, 512, 8] and mask [1, 1] ended the
process). Calls into the compiled core run in a subprocess, where a crash fails the test
instead of ending pytest.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch

import hepgen.ops as ops
from hepgen import _core

CPU = torch.device("cpu")
BACKENDS = [
    pytest.param(b, marks=[pytest.mark.skip(reason=why)] if (why := ops.why_unavailable(b, CPU, torch.float32)) else [])
    for b in ("reference", "cpu", "triton")
]


def _f(*shape, dtype=torch.float32):
    return torch.randn(*shape).to(dtype)


# (id, registered op, arguments, error type, the argument the message names)
BAD_CALLS = [
    ("set_pool-issue-mask-1x1", "set_pool", lambda: (_f(4, 512, 8), torch.ones(1, 1), 0.01), ValueError, "mask"),
    ("set_pool-mask-batch", "set_pool", lambda: (_f(4, 6, 3), torch.ones(5, 6), 0.01), ValueError, "mask"),
    ("set_pool-mask-bool", "set_pool", lambda: (_f(4, 6, 3), torch.ones(4, 6).bool(), 0.01), TypeError, "mask"),
    ("set_pool-x-rank", "set_pool", lambda: (_f(4, 6), torch.ones(4, 6), 0.01), ValueError, "x"),
    ("set_pool-x-int", "set_pool", lambda: (torch.ones(4, 6, 3).long(), torch.ones(4, 6), 0.01), TypeError, "x"),
    ("set_pool-scale-nan", "set_pool", lambda: (_f(4, 6, 3), torch.ones(4, 6), float("nan")), ValueError, "sum_scale"),
    ("set_pool_backward-odd", "set_pool_backward", lambda: (_f(4, 7), torch.ones(4, 6), 0.01), ValueError, "grad_out"),
    ("set_pool_backward-mask", "set_pool_backward", lambda: (_f(4, 6), torch.ones(1, 1), 0.01), ValueError, "mask"),
    (
        "set_pool_backward-dtype",
        "set_pool_backward",
        lambda: (_f(4, 6), torch.ones(4, 6).double(), 0.01),
        TypeError,
        "mask",
    ),
    (
        "epic_local-mask-1x1",
        "epic_local",
        lambda: (_f(2, 3, 4), torch.ones(1, 1), _f(5, 4), _f(2, 5), _f(4, 5), _f(2, 4), 0.01, 0.01),
        ValueError,
        "mask",
    ),
    (
        "epic_local-bias1-shared",
        "epic_local",
        lambda: (_f(2, 3, 4), torch.ones(2, 3), _f(5, 4), _f(5), _f(4, 5), _f(2, 4), 0.01, 0.01),
        ValueError,
        "bias1",
    ),
    (
        "epic_local-w2",
        "epic_local",
        lambda: (_f(2, 3, 4), torch.ones(2, 3), _f(5, 4), _f(2, 5), _f(5, 4), _f(2, 4), 0.01, 0.01),
        ValueError,
        "w2",
    ),
    (
        "epic_local-slope",
        "epic_local",
        lambda: (_f(2, 3, 4), torch.ones(2, 3), _f(5, 4), _f(2, 5), _f(4, 5), _f(2, 4), 0.01, 0.0),
        ValueError,
        "negative_slope",
    ),
    (
        "epic_local_backward-grad_y",
        "epic_local_backward",
        lambda: (
            _f(2, 3, 5),
            _f(2, 8),
            _f(2, 3, 4),
            torch.ones(2, 3),
            _f(5, 4),
            _f(2, 5),
            _f(4, 5),
            _f(2, 3, 4),
            0.01,
            0.01,
        ),
        ValueError,
        "grad_y",
    ),
    (
        "epic_local_backward-y",
        "epic_local_backward",
        lambda: (
            _f(2, 3, 4),
            _f(2, 8),
            _f(2, 3, 4),
            torch.ones(2, 3),
            _f(5, 4),
            _f(2, 5),
            _f(4, 5),
            _f(1, 3, 4),
            0.01,
            0.01,
        ),
        ValueError,
        "y",
    ),
    (
        "epic_local_backward-mask",
        "epic_local_backward",
        lambda: (
            _f(2, 3, 4),
            _f(2, 8),
            _f(2, 3, 4),
            torch.ones(2, 9),
            _f(5, 4),
            _f(2, 5),
            _f(4, 5),
            _f(2, 3, 4),
            0.01,
            0.01,
        ),
        ValueError,
        "mask",
    ),
    (
        "ode_combine-ks-shape",
        "ode_combine",
        lambda: (_f(2, 3, 4), [_f(2, 3, 5)], [1.0], _f(2), None, 1.0),
        ValueError,
        "ks[0]",
    ),
    (
        "ode_combine-coeffs-count",
        "ode_combine",
        lambda: (_f(2, 3, 4), [_f(2, 3, 4)], [1.0, 2.0], _f(2), None, 1.0),
        ValueError,
        "coeffs",
    ),
    ("ode_combine-h", "ode_combine", lambda: (_f(2, 3, 4), [], [], _f(3), None, 1.0), ValueError, "h"),
    (
        "ode_combine-mask-1x1",
        "ode_combine",
        lambda: (_f(2, 3, 4), [], [], _f(2), torch.ones(1, 1), 1.0),
        ValueError,
        "mask",
    ),
    (
        "ode_combine-too-many",
        "ode_combine",
        lambda: (_f(2, 3), [_f(2, 3)] * 17, [1.0] * 17, _f(2), None, 1.0),
        ValueError,
        "ks",
    ),
    (
        "ode_combine-y_coeff",
        "ode_combine",
        lambda: (_f(2, 3), [], [], _f(2), None, float("inf")),
        ValueError,
        "y_coeff",
    ),
    (
        "ode_combine_backward-ks",
        "ode_combine_backward",
        lambda: (_f(2, 3, 4), [_f(2, 3)], [1.0], _f(2), None, 1.0),
        ValueError,
        "ks[0]",
    ),
    (
        "ode_combine_backward-mask",
        "ode_combine_backward",
        lambda: (_f(2, 3, 4), [], [], _f(2), torch.ones(2, 3).double(), 1.0),
        TypeError,
        "mask",
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_registered_op_refuses_bad_calls_naming_the_argument(case, backend):
    _, op, make, error, name = case
    with ops.use_backend(backend), pytest.raises(error) as info:
        getattr(torch.ops.hepgen, op)(*make())
    assert name in str(info.value), str(info.value)


@pytest.mark.parametrize("case", BAD_CALLS, ids=[c[0] for c in BAD_CALLS])
def test_registered_op_refuses_bad_calls_on_meta_tensors(case):
    """Meta tensors (and torch.compile's fake ones) reach the op's fake, which validates too."""
    _, op, make, error, name = case
    args = [a.to("meta") if isinstance(a, torch.Tensor) else a for a in make()]
    args = [
        [t.to("meta") for t in a] if isinstance(a, list) and a and isinstance(a[0], torch.Tensor) else a for a in args
    ]
    with pytest.raises(error, match=name.replace("[", r"\[").replace("]", r"\]")):
        getattr(torch.ops.hepgen, op)(*args)


# ---- straight into the compiled core --------------------------------------------------------

# Each probe is a call that must raise a Python exception; a crash ends the subprocess.
CORE_PROBES = textwrap.dedent(
    """
    import json, sys, torch
    from hepgen import _core
    from hepgen.ops.compiled import epic_local as el, ode_combine as oc, set_pool as sp
    C = _core.compiled()
    f = lambda *s: torch.randn(*s)
    off = lambda *v: torch.tensor(v, dtype=torch.int64)
    x, big = f(4, 512, 8), f(4, 16)
    probes = {
        "set_pool_forward: issue mask [1, 1]": lambda: C.set_pool_forward(x, torch.ones(1, 1), 0.01, big),
        "set_pool_forward: out too small": lambda: C.set_pool_forward(x, torch.ones(4, 512), 0.01, f(4, 2)),
        "set_pool_forward: out is x's memory": lambda: (
            lambda t: C.set_pool_forward(t, torch.ones(2, 2), 0.01, t.view(2, 16)))(f(2, 2, 8)),
        "set_pool_forward: mask int": lambda: C.set_pool_forward(x, torch.ones(4, 512, dtype=torch.int32), 0.01, big),
        "set_pool_forward: a list": lambda: C.set_pool_forward([1.0], torch.ones(1, 1), 0.01, big),
        "set_pool_forward: out strided": lambda: C.set_pool_forward(x, torch.ones(4, 512), 0.01, f(4, 32)[:, ::2]),
        "set_pool_backward: grad_x too small": lambda: C.set_pool_backward(big, torch.ones(4, 512), 0.01, f(4, 1, 8)),
        "set_pool_backward: odd grad_out": lambda: C.set_pool_backward(
            f(4, 15), torch.ones(4, 512), 0.01, f(4, 512, 7)),
        "glue set_pool forward: mask [1, 1]": lambda: sp._core_forward(x, torch.ones(1, 1), 0.01, "cpu"),
        "glue set_pool backward: mask [1, 1]": lambda: sp._core_backward(big, torch.ones(1, 1), 0.01, "cpu"),
        "ode_combine: ks shape": lambda: C.ode_combine(f(2, 3, 4), 1.0, [f(2, 3)], [1.0], f(2), None, f(2, 3, 4)),
        "ode_combine: coeffs count": lambda: C.ode_combine(
            f(2, 3, 4), 1.0, [f(2, 3, 4)], [1.0, 2.0], f(2), None, f(2, 3, 4)),
        "ode_combine: 17 terms": lambda: C.ode_combine(
            f(2, 3, 4), 1.0, [f(2, 3, 4)] * 17, [1.0] * 17, f(2), None, f(2, 3, 4)),
        "ode_combine: h short": lambda: C.ode_combine(f(2, 3, 4), 1.0, [], [], f(1), None, f(2, 3, 4)),
        "ode_combine: mask [1, 1]": lambda: C.ode_combine(f(2, 3, 4), 1.0, [], [], f(2), torch.ones(1, 1), f(2, 3, 4)),
        "ode_combine: out is a k": lambda: (
            lambda k: C.ode_combine(f(2, 3, 4), 1.0, [k], [1.0], f(2), None, k))(f(2, 3, 4)),
        "glue ode_combine: mask [1, 1]": lambda: oc._core_forward(
            f(2, 3, 4), [], [], f(2), torch.ones(1, 1), 1.0, "cpu"),
        "glue ode_combine: h short": lambda: oc._core_forward(f(2, 3, 4), [], [], f(1), None, 1.0, "cpu"),
        "epic_bias_act: bias features": lambda: C.epic_bias_act(f(5, 3), f(2, 4), off(0, 2, 5), 0.01),
        "epic_bias_act: offsets past the rows": lambda: C.epic_bias_act(f(5, 3), f(2, 3), off(0, 2, 9), 0.01),
        "epic_bias_act: offsets decreasing": lambda: C.epic_bias_act(f(5, 3), f(2, 3), off(0, 4, 2), 0.01),
        "epic_bias_act: offsets negative": lambda: C.epic_bias_act(f(5, 3), f(2, 3), off(-3, 0, 2), 0.01),
        "epic_bias_act: offsets int32": lambda: C.epic_bias_act(f(5, 3), f(2, 3), off(0, 2, 5).int(), 0.01),
        "epic_residual_pool: mask disagrees with offsets": lambda: C.epic_residual_pool(
            f(5, 3), f(5, 3), f(2, 3), torch.ones(2, 4), off(0, 2, 5), 0.01, 0.01, f(2, 4, 3), f(2, 6)),
        "epic_output_grad: y shape": lambda: C.epic_output_grad(
            f(2, 4, 3), f(2, 6), f(2, 3, 3), torch.ones(2, 4), off(0, 4, 8), 0.01, 0.01, f(8, 3), f(2, 3)),
        "epic_act_grad: grad_bias1 batch": lambda: C.epic_act_grad(f(5, 3), f(5, 3), off(0, 2, 5), 0.01, f(3, 3)),
        "epic_unpack: padded too small": lambda: C.epic_unpack(f(5, 3), torch.ones(2, 3), off(0, 2, 5), f(2, 2, 3)),
        "glue epic forward: mask [1, 1]": lambda: el._cpu_forward(
            f(2, 3, 4), torch.ones(1, 1), f(5, 4), f(2, 5), f(4, 5), f(2, 4), 0.01, 0.01),
        "glue epic forward: bias1 shape": lambda: el._cpu_forward(
            f(2, 3, 4), torch.ones(2, 3), f(5, 4), f(2, 7), f(4, 5), f(2, 4), 0.01, 0.01),
        "glue epic backward: y shape": lambda: el._cpu_backward(
            f(2, 3, 4), f(2, 8), f(2, 3, 4), torch.ones(2, 3), f(5, 4), f(2, 5), f(4, 5), f(1, 3, 4), 0.01, 0.01),
    }
    outcomes = {}
    for name, call in probes.items():
        print("PROBE", name, file=sys.stderr, flush=True)
        try:
            call()
            outcomes[name] = "accepted"
        except Exception as err:
            outcomes[name] = f"{type(err).__name__}: {err}"
    print(json.dumps(outcomes))
    """
)


@pytest.mark.skipif(_core.compiled_or_none() is None, reason="the compiled core is not built")
def test_compiled_core_raises_on_bad_calls_and_never_crashes(tmp_path):
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    proc = subprocess.run(
        [sys.executable, "-c", CORE_PROBES], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    last = [line for line in proc.stderr.splitlines() if line.startswith("PROBE ")][-1:]
    assert proc.returncode == 0, f"the subprocess ended with {proc.returncode} at {last}: {proc.stderr[-2000:]}"
    outcomes = json.loads(proc.stdout.strip().splitlines()[-1])
    accepted = [name for name, outcome in outcomes.items() if outcome == "accepted"]
    assert not accepted, f"bad calls accepted by the compiled core: {accepted}"
    core_calls = {n: o for n, o in outcomes.items() if not n.startswith("glue")}
    unclear = {n: o for n, o in core_calls.items() if not o.startswith(("ValueError", "TypeError"))}
    assert not unclear, f"the core's refusals must be ValueError/TypeError: {unclear}"


@pytest.mark.slow
def test_compiled_graph_with_symbolic_scalars_validates_where_the_op_runs():
    """torch.compile(dynamic=True) traces float arguments symbolically: the public checks cannot
    test their values at trace time (math.isfinite of a symbolic float broke the trace), the
    registered op's validate tests them when the graph runs."""

    def f(x, m, s, h):
        return ops.set_pool(x, m, s), ops.ode_combine(x, [x], [s], h, m, 1.0 + s)

    compiled = torch.compile(f, dynamic=True, fullgraph=True)
    x, m = torch.randn(3, 5, 4), torch.rand(3, 5) < 0.5
    for s in (0.3, 0.7):
        for ours, eager in zip(compiled(x, m, s, 0.1), f(x, m, s, 0.1)):
            torch.testing.assert_close(ours, eager)
    with pytest.raises(ValueError, match="sum_scale must be finite"):
        compiled(x, m, float("nan"), 0.1)
