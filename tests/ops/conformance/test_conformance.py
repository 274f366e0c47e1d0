"""The op-conformance suite: every op, every backend, the same checks, fed by each op's samples.

Per op (``cases_<op>.py`` gives its samples, reference and bad inputs) and per backend that can
run here: agreement with the float64 reference (tests/oracle.py's bound), gradients against
autograd through the reference, float64 runs, strided inputs equal to contiguous copies,
gradcheck (and gradgradcheck where the op has double backward), torch.library.opcheck of every
declared op of the family, the custom-op path equal to the eager path, torch.compile through
the custom op, the backend a backward runs on, the default choice per dtype, half dtypes on the
GPU, and bad input refused with a TypeError/ValueError naming the argument.
Op-specific behaviour (known values, peers such as nflows and SDPA, decode) stays in
tests/ops/test_<op>.py.
"""

from __future__ import annotations

import contextlib
import importlib
import pathlib
import threading

import pytest
import torch
from oracle import assert_close_to_reference, backend_params, devices

from hepgen import ops
from hepgen.ops import _declare

# Every op's cases_<op>.py next to this file (a new op is picked up by adding its module).
ALL_CASES = {
    c.op: c
    for c in (importlib.import_module(p.stem).CASES for p in sorted(pathlib.Path(__file__).parent.glob("cases_*.py")))
}
CPU = torch.device("cpu")


def test_every_op_has_conformance_cases():
    assert set(ALL_CASES) == set(ops.registered_ops()), "an op without tests/ops/conformance/cases_<op>.py"


def _params(dtype=torch.float32, cpu_only=False):
    """(op, sample, device, backend) for every op, sample and backend, skipped where it cannot run."""
    out = []
    for op, cases in ALL_CASES.items():
        for name in cases.sample_names():
            for dev in ["cpu"] if cpu_only else devices():
                for p in backend_params(dev, dtype, op=op):
                    out.append(pytest.param(op, name, *p.values, marks=p.marks, id=f"{op}-{name}-{p.id}"))
    return out


def _op_backend_params(backends=("reference", "cpu", "triton"), dtype=torch.float64):
    out = []
    for op in ALL_CASES:
        for backend in backends:
            why = ops.why_unavailable(backend, CPU, dtype, op)
            out.append(
                pytest.param(op, backend, marks=[pytest.mark.skip(reason=why)] if why else [], id=f"{op}-{backend}")
            )
    return out


def _floor(cases, r64):
    if cases.floor_ulps is None or r64.numel() == 0:
        return None
    return cases.floor_ulps * torch.finfo(torch.float32).eps * max(r64.abs().max().item(), 1.0)


@contextlib.contextmanager
def _known_limits(cases, backend):
    try:
        yield
    except RuntimeError as err:
        if any(b == backend and text in str(err) for b, text in cases.known_limits):
            pytest.skip(str(err))
        raise


def _run(cases, backend, sample):
    with ops.use_backend(backend), _known_limits(cases, backend):
        return cases.call(sample)


def _cotangents(outputs, seed_name):
    g = torch.Generator().manual_seed(len(seed_name) * 7919 + sum(map(ord, seed_name)))
    return [torch.randn(o.shape, generator=g, dtype=torch.float64).to(o.device) for o in outputs]


def _grads(cases, sample, backend, cotangents):
    """Outputs and gradients of the `grad` tensors of `sample` (backend None: the reference)."""
    s, leaves = sample.with_leaves()
    if backend is None:
        outs = cases.call_reference(s)
    else:
        with ops.use_backend(backend), _known_limits(cases, backend):  # the backward runs there too
            outs = cases.call(s)
    if not leaves:
        return outs, []
    with ops.use_backend(backend or "reference"), _known_limits(cases, backend):
        grads = torch.autograd.grad(
            [o for o in outs],
            leaves,
            [w.to(o.dtype) for w, o in zip(cotangents, outs)],
            allow_unused=True,
            materialize_grads=True,
        )
    return outs, grads


# ---- reference agreement ---------------------------------------------------------------------


@pytest.mark.parametrize("op, sample, device, backend", _params())
def test_outputs_match_float64_reference(op, sample, device, backend):
    cases = ALL_CASES[op]
    s64, s32 = cases.sample(sample, device, torch.float64), cases.sample(sample, device, torch.float32)
    ref64, ref32 = cases.call_reference(s64), cases.call_reference(s32)
    out = _run(cases, backend, s32)
    assert len(out) == len(ref64)
    for i, (o, r32, r64) in enumerate(zip(out, ref32, ref64)):
        assert_close_to_reference(o, r32, r64, factor=cases.factor, floor=_floor(cases, r64), what=f"output {i}")


@pytest.mark.parametrize("op, sample, device, backend", _params())
def test_gradients_match_float64_reference(op, sample, device, backend):
    cases = ALL_CASES[op]
    s64, s32 = cases.sample(sample, device, torch.float64), cases.sample(sample, device, torch.float32)
    if not s64.grad:
        pytest.skip("no differentiable input in this sample")
    w = _cotangents(cases.call_reference(s64), sample)
    _, g64 = _grads(cases, s64, None, w)
    _, g32 = _grads(cases, s32, None, w)
    _, grads = _grads(cases, s32, backend, w)
    for path, g, r32, r64 in zip(s32.grad, grads, g32, g64):
        assert_close_to_reference(
            g, r32, r64, factor=cases.grad_factor, floor=_floor(cases, r64), what=f"gradient of input {path}"
        )


@pytest.mark.parametrize("op, sample, device, backend", _params(torch.float64))
def test_float64_matches_float64_reference(op, sample, device, backend):
    # A float64 run must be float64 all the way (no scalar or accumulator rounded to float32).
    cases = ALL_CASES[op]
    s64 = cases.sample(sample, device, torch.float64)
    w = _cotangents(cases.call_reference(s64), sample)
    ref, gref = _grads(cases, s64, None, w)
    out, grads = _grads(cases, s64, backend, w)
    for what, o, r in [
        *(("output", o, r) for o, r in zip(out, ref)),
        *(("gradient", g, r) for g, r in zip(grads, gref)),
    ]:
        assert o.dtype == torch.float64 and o.shape == r.shape, what
        tol = cases.float64_rtol * max(r.abs().max().item() if r.numel() else 0.0, 1.0)
        torch.testing.assert_close(o, r, rtol=0, atol=tol, msg=lambda m: f"{what}: {m}")


STRIDED = {op: {s.name for s in c.sample_inputs("cpu", torch.float32) if s.strided()} for op, c in ALL_CASES.items()}


def test_every_op_has_strided_samples():
    assert all(STRIDED.values()), STRIDED


@pytest.mark.parametrize("op, sample, device, backend", [p for p in _params() if p.values[1] in STRIDED[p.values[0]]])
def test_strided_inputs_equal_contiguous_copies(op, sample, device, backend):
    cases = ALL_CASES[op]
    s = cases.sample(sample, device, torch.float32)
    w = _cotangents(cases.call_reference(s), sample)
    out, grads = _grads(cases, s, backend, w)
    dense_out, dense_grads = _grads(cases, s.contiguous(), backend, w)
    for i, (a, b) in enumerate(zip([*out, *grads], [*dense_out, *dense_grads])):
        if cases.layout_exact and i < len(out):  # outputs bit for bit (gradients may sum in another order)
            torch.testing.assert_close(a, b, rtol=0, atol=0, equal_nan=True)
        else:  # up to the rounding of a different summation order
            atol = 64 * torch.finfo(b.dtype).eps * max(b.nan_to_num().abs().max().item() if b.numel() else 0.0, 1.0)
            torch.testing.assert_close(a, b, rtol=0, atol=atol, equal_nan=True)


# ---- autograd, custom op, compile ------------------------------------------------------------


@pytest.mark.parametrize("op, backend", _op_backend_params())
def test_gradcheck_float64_cpu(op, backend):
    cases = ALL_CASES[op]
    for sample in cases.gradcheck_samples():
        s, leaves = sample.with_leaves()

        def fn(*ls):
            args = [list(a) if isinstance(a, list) else a for a in s.args]
            for path, leaf in zip(s.grad, ls):
                if isinstance(path, int):
                    args[path] = leaf
                else:
                    args[path[0]][path[1]] = leaf
            return cases.call(_with_args(s, args))

        with ops.use_backend(backend):
            assert torch.autograd.gradcheck(fn, leaves, **cases.gradcheck_tolerance), sample.name
            if cases.double_backward:
                assert torch.autograd.gradgradcheck(fn, leaves, **cases.gradcheck_tolerance), sample.name


def _with_args(s, args):
    return type(s)(s.name, tuple(args), s.kwargs, s.grad, s.fn)


def _recorded_calls(cases, sample):
    """(op, args) of every declared op a call of `sample` (forward and backward) runs, first call each."""
    s, leaves = sample.with_leaves()
    with _declare.recording() as calls:
        outs = cases.call(s)
        if leaves:
            torch.autograd.grad(list(outs), leaves, [torch.randn_like(o) for o in outs], allow_unused=True)
    first = {}
    for op, args in calls:
        if op.backward is None:  # no autograd formula: opcheck must not try to differentiate it
            args = tuple(_detached(a) for a in args)
        first.setdefault(op.name, (op, args))
    return first


def _detached(a):
    if isinstance(a, torch.Tensor):
        return a.detach()
    if isinstance(a, list):
        return [_detached(t) for t in a]
    return a


@pytest.mark.parametrize("op, backend", _op_backend_params(("reference", "cpu"), torch.float32))
def test_opcheck_every_declared_op(op, backend):
    cases = ALL_CASES[op]
    checked = set()
    with ops.use_backend(backend):
        for dtype in (torch.float32, torch.float64):
            for sample in cases.opcheck_samples(dtype):
                for name, (declared, args) in _recorded_calls(cases, sample).items():
                    torch.library.opcheck(declared.custom_op, args)
                    checked.add(name)
    family = {name for name, d in _declare.declared_ops().items() if d.family == op}
    assert checked == family, f"declared ops without an opcheck sample: {sorted(family - checked)}"


@pytest.mark.parametrize("op, backend", _op_backend_params(("reference", "cpu"), torch.float64))
def test_custom_op_path_equals_eager_path(op, backend, monkeypatch):
    """Eager calls skip the dispatcher; torch.compile and export take the custom op. Same numbers."""
    cases = ALL_CASES[op]
    for sample in cases.opcheck_samples(torch.float64):

        def fresh(name=sample.name):  # new tensors for each run (a decode sample writes its cache)
            return next(x for x in cases.opcheck_samples(torch.float64) if x.name == name)

        w = _cotangents(cases.call(fresh()), sample.name)
        results = []
        for custom in (False, True):
            monkeypatch.setattr(_declare, "_use_custom_op", lambda custom=custom: custom)
            s = fresh()
            outs, grads = _grads(cases, s, backend, w)
            results.append([*outs, *grads, *s.tensors()])  # the inputs too: in-place writes must agree
        for a, b in zip(*results):
            torch.testing.assert_close(a, b, rtol=0, atol=0, msg=lambda m: f"{sample.name}: {m}")
        monkeypatch.setattr(_declare, "_use_custom_op", lambda: False)
        with torch.no_grad():  # and the path without autograd
            for a, b in zip(_run(cases, backend, fresh()), results[0]):
                torch.testing.assert_close(a, b, rtol=0, atol=0)


@pytest.mark.parametrize("op", list(ALL_CASES))
def test_compiled_graph_goes_through_the_custom_op(op):
    cases = ALL_CASES[op]
    sample = next(s for s in cases.opcheck_samples(torch.float32) if s.grad and s.fn is None)
    s, leaves = sample.with_leaves()
    torch._dynamo.reset()  # f's code is shared by the ops: start each from a fresh cache

    def f(*ls):
        args = [list(a) if isinstance(a, list) else a for a in s.args]
        for path, leaf in zip(s.grad, ls):
            if isinstance(path, int):
                args[path] = leaf
            else:
                args[path[0]][path[1]] = leaf
        return sum((o.float() ** 2).sum() for o in cases.call(_with_args(s, args)))

    targets = []

    def backend(gm, example_inputs):  # what dynamo put in the graph, then run it as is
        targets.extend(str(n.target) for n in gm.graph.nodes if n.op == "call_function")
        return gm.forward

    compiled = torch.compile(f, backend=backend, fullgraph=True)
    g_compiled = torch.autograd.grad(compiled(*leaves), leaves)
    assert f"hepgen.{op}.default" in targets, targets
    g_eager = torch.autograd.grad(f(*leaves), leaves)
    for a, b in zip(g_compiled, g_eager):
        torch.testing.assert_close(a, b)
    torch.testing.assert_close(compiled(*leaves), f(*leaves))


# ---- backend choice --------------------------------------------------------------------------


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


@pytest.mark.parametrize("path", ["eager", "custom_op"])
@pytest.mark.parametrize("op", list(ALL_CASES))
def test_backward_in_another_thread_keeps_the_forced_backend(op, path, monkeypatch):
    """Autograd runs CUDA backwards on its own thread, where the caller's use_backend block is not
    in force (seen on an H100: a forced reference forward had its backward run by Triton). The
    override travels in the autograd context; a fresh thread reproduces that on the CPU."""
    cases = ALL_CASES[op]
    table = ops.registered_ops()[op]
    calls = []
    original = table.impls["reference"]["backward"]

    def spy(*args):
        calls.append(threading.current_thread().name)
        return original(*args)

    monkeypatch.setitem(table.impls, "reference", {**table.impls["reference"], "backward": spy})
    monkeypatch.setattr(_declare, "_use_custom_op", lambda: path == "custom_op")
    sample = next(s for s in cases.opcheck_samples(torch.float32) if s.grad and s.fn is None)
    s, leaves = sample.with_leaves()
    with ops.use_backend("reference"):
        outs = cases.call(s)
    _in_thread(lambda: torch.autograd.grad(sum(o.sum() for o in outs), leaves))
    assert len(calls) == 1 and calls[0] != threading.current_thread().name


@pytest.mark.parametrize("op", list(ALL_CASES))
def test_without_an_override_the_backward_uses_the_default_choice(op, monkeypatch):
    cases = ALL_CASES[op]
    table = ops.registered_ops()[op]
    chosen = []
    for backend in table.impls:
        original = table.impls[backend]["backward"]
        monkeypatch.setitem(
            table.impls,
            backend,
            {**table.impls[backend], "backward": lambda *a, _b=backend, _f=original: (chosen.append(_b), _f(*a))[1]},
        )
    sample = next(s for s in cases.opcheck_samples(torch.float32) if s.grad and s.fn is None)
    s, leaves = sample.with_leaves()
    outs = cases.call(s)
    _in_thread(lambda: torch.autograd.grad(sum(o.sum() for o in outs), leaves))
    assert chosen == [table.choose(CPU, torch.float32)]


@pytest.mark.parametrize("op", list(ALL_CASES))
def test_default_choice_per_dtype_and_half_types_on_the_cpu(op):
    cases = ALL_CASES[op]
    table = ops.registered_ops()[op]
    expected = "cpu" if not ops.why_unavailable("cpu", CPU, torch.float32, op) else "reference"
    assert table.choose(CPU, torch.float32) == expected
    for dtype in (torch.float16, torch.bfloat16):
        assert table.choose(CPU, dtype) == "reference"  # no compiled half kernels on the CPU
        sample = next(iter(cases.opcheck_samples(dtype)))
        for out in cases.call(sample):
            if out.is_floating_point() and out.dim() and out.shape != ():
                assert out.dtype in (dtype, torch.float32)  # a saved statistic may be float32
        assert cases.call(sample)[0].dtype == dtype


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "op, sample, device, backend", [p for p in _params() if p.values[2] == "cuda" and p.values[3] in ("cuda", "triton")]
)
def test_half_types_on_the_gpu(op, sample, device, backend, dtype):
    # The kernels compute half types in float32: the baseline is the reference in float32 on
    # the rounded inputs, rounded to the output type.
    cases = ALL_CASES[op]
    why = ops.why_unavailable(backend, torch.device(device), dtype, op)
    if why:
        pytest.skip(why)
    s64, low = cases.sample(sample, device, torch.float64), cases.sample(sample, device, dtype)
    baseline = [r.to(dtype) for r in cases.call_reference(_upcast(low))]
    out = _run(cases, backend, low)
    for o, r_lo, r64 in zip(out, baseline, cases.call_reference(s64)):
        assert_close_to_reference(o, r_lo, r64, factor=2 * cases.factor)


def _upcast(sample):
    def up(a):
        if isinstance(a, torch.Tensor) and a.is_floating_point():
            return a.float()
        if isinstance(a, list):
            return [up(t) for t in a]
        return a

    return type(sample)(
        sample.name,
        tuple(up(a) for a in sample.args),
        {k: up(v) for k, v in sample.kwargs.items()},
        sample.grad,
        sample.fn,
    )


# ---- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "op, bad", [pytest.param(op, b, id=f"{op}-{b.name}") for op, c in ALL_CASES.items() for b in c.bad_inputs]
)
def test_bad_input_is_rejected_before_any_kernel(op, bad):
    with _declare.recording() as calls, pytest.raises(bad.error, match=bad.match):
        bad.fn(*bad.args, **bad.kwargs)
    assert not calls, "a kernel ran before the arguments were checked"


# ---- the layers ------------------------------------------------------------------------------


def test_kernel_layer_does_not_import_the_op_layer():
    """hepgen/triton and hepgen/ops/compiled import only the specs (hepgen.ops.reference) and the
    core helpers from hepgen.ops, never the modules that define the public ops."""
    import ast

    import hepgen

    root = pathlib.Path(hepgen.__file__).parent
    allowed = ("hepgen.ops.reference", "hepgen.ops._compiled")
    offenders = []
    for path in [*root.glob("triton/*.py"), *root.glob("ops/compiled/*.py"), *root.glob("ops/reference/*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                if name.startswith("hepgen.ops") and not name.startswith(allowed):
                    offenders.append(f"{path.relative_to(root)}: {name}")
    assert not offenders, offenders
