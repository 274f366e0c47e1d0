"""hepgen.ode.odeint as a torchdiffeq drop-in, on torchdiffeq's own test problems and tolerances.

The problems, methods and bounds re-state torchdiffeq 0.2.5's tests (tests/problems.py,
odeint_tests.py, gradient_tests.py, api_tests.py, norm_tests.py): each is solved by our odeint
and checked against the exact solution with torchdiffeq's bound, and, where torchdiffeq is
installed (the bench extra), against torchdiffeq.odeint on the same call. torchdiffeq's own
files run with ours swapped in through benchmarks/dropin/run_peer_tests.sh (docs/ode_dropin.md).
"""

import math
import warnings

import pytest
import torch

from hepgen.ode import odeint
from hepgen.ode.dropin import ADAPTIVE_METHODS, NOT_IMPLEMENTED

FIXED = ("euler", "midpoint", "heun2", "heun3", "rk4")
ADAPTIVE = ("adaptive_heun", "fehlberg2", "bosh3", "dopri5")
DTYPES = (torch.float32, torch.float64)


def _torchdiffeq():
    try:
        import torchdiffeq
    except ImportError:
        return None
    return torchdiffeq


# ---------------------------------------------------------------- torchdiffeq's problems, re-stated
class Constant(torch.nn.Module):
    """dy/dt = a + (y - (a t + b))^5: y = a t + b (every method is exact on it)."""

    def __init__(self):
        super().__init__()
        self.a = torch.nn.Parameter(torch.tensor(0.2))
        self.b = torch.nn.Parameter(torch.tensor(3.0))

    def forward(self, t, y):
        return self.a + (y - (self.a * t + self.b)) ** 5

    def exact(self, t):
        return self.a * t + self.b


class Sine(torch.nn.Module):
    def forward(self, t, y):
        return 2 * y / t + t**4 * torch.sin(2 * t) - t**2 + 4 * t**3

    def exact(self, t):
        return (
            -0.5 * t**4 * torch.cos(2 * t)
            + 0.5 * t**3 * torch.sin(2 * t)
            + 0.25 * t**2 * torch.cos(2 * t)
            - t**3
            + 2 * t**4
            + (math.pi - 0.25) * t**2
        )


class Linear(torch.nn.Module):
    """A 10-dimensional linear system dy/dt = A y with a 1-D state [10]: one problem, not ten."""

    def __init__(self, dim=10):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        u = torch.randn(dim, dim, generator=g) * 0.1
        self.A = torch.nn.Parameter(2 * u - (u + u.T))
        self.dim = dim
        self.nfe = 0

    def forward(self, t, y):
        self.nfe += 1
        return (self.A @ y.reshape(self.dim, 1)).reshape(-1)

    def exact(self, t):
        a = self.A.detach().double()
        return torch.stack(
            [torch.linalg.matrix_exp(a * float(ti)) @ torch.ones(self.dim, dtype=torch.float64) for ti in t.detach()]
        ).to(t.dtype)


class Exp(torch.nn.Module):
    def forward(self, t, y):
        return -0.1 * self.exact(t)

    def exact(self, t):
        return torch.exp(-0.1 * t)


PROBLEMS = {"constant": Constant, "sine": Sine, "linear": Linear, "exp": Exp}


def construct(ode="constant", dtype=torch.float64, reverse=False, npts=10):
    """As torchdiffeq's construct_problem: t = linspace(1, 8) in float64 with a gradient."""
    f = PROBLEMS[ode]().to(dtype)
    t = torch.linspace(1, 8, npts, dtype=torch.float64, requires_grad=True)
    sol = f.exact(t).to(dtype)
    if reverse:
        t, sol = t.flip(0).detach(), sol.flip(0).detach()
    return f, sol[0].detach().requires_grad_(True), t, sol


def rel_error(true, estimate):
    return ((true - estimate) / true).abs().max()


def odeint_bound(method, ode):
    """torchdiffeq's odeint_tests bounds on the relative error."""
    if method in ("adaptive_heun", "bosh3"):
        return 4e-3
    return 2e-3 if ode == "linear" else 3e-4


def agree(ours, theirs, dtype, float32_tol=1e-5):
    """float64: the same steps, so the same numbers up to rounding. float32: rtol = 1e-7 is below
    float32's resolution, so the error estimates are rounding noise and one rounding difference
    can change a step; there the two agree to ``float32_tol`` (the problem's bound)."""
    tol = 1e-10 if dtype == torch.float64 else float32_tol
    torch.testing.assert_close(ours, theirs, rtol=tol, atol=tol * float(theirs.abs().max()))


def _cases():
    """torchdiffeq's grid: fixed methods on the constant problem, adaptive ones on all four, both
    dtypes, both directions. adaptive_heun needs about 10^4 steps on sine and linear at the
    default tolerances (tens of seconds each in Python): there only float64 forward, marked
    slow; its other variants run in the peer run (benchmarks/dropin/run_peer_tests.sh)."""
    cases = []
    for method, ode in [(m, "constant") for m in FIXED] + [(m, o) for m in ADAPTIVE for o in PROBLEMS]:
        for dtype in DTYPES:
            for reverse in (False, True):
                case = (method, ode, dtype, reverse)
                name = f"{method}-{ode}-{str(dtype)[6:]}-{'reverse' if reverse else 'forward'}"
                if method == "adaptive_heun" and ode in ("sine", "linear"):
                    if dtype == torch.float64 and not reverse:
                        cases.append(pytest.param(*case, id=name, marks=pytest.mark.slow))
                else:
                    cases.append(pytest.param(*case, id=name))
    return cases


@pytest.mark.parametrize("method, ode, dtype, reverse", _cases())
def test_solver_error_within_torchdiffeqs_bound(method, ode, dtype, reverse):
    f, y0, t, sol = construct(ode, dtype, reverse)
    y = odeint(f, y0, t, method=method)
    assert y.shape == (len(t), *y0.shape) and y.dtype == dtype
    assert rel_error(sol, y) < odeint_bound(method, ode)
    torchdiffeq = _torchdiffeq()
    if torchdiffeq is not None:
        agree(y, torchdiffeq.odeint(f, y0, t, method=method), dtype, float32_tol=odeint_bound(method, ode))


@pytest.mark.parametrize("method", FIXED + ADAPTIVE)
@pytest.mark.parametrize("ode", sorted(PROBLEMS))
def test_no_integration_returns_y0(method, ode):
    f, y0, t, sol = construct(ode)
    assert (odeint(f, y0, t[:1], method=method) - sol[0]).abs().max() < 1e-12


def test_linear_system_is_one_problem_under_dopri5():
    # The old hepgen odeint split the first dimension into samples; torchdiffeq's has one step
    # size for the whole state, so the number of evaluations is torchdiffeq's.
    f, y0, t, sol = construct("linear")
    seen = []

    def func(tt, y):
        seen.append(tt.shape)
        return f(tt, y)

    y = odeint(func, y0, t)
    assert rel_error(sol, y) < 2e-3 and all(s == () for s in seen)
    torchdiffeq = _torchdiffeq()
    if torchdiffeq is not None:
        ours_nfe = f.nfe
        f.nfe = 0
        torchdiffeq.odeint(f, y0, t)
        assert ours_nfe == f.nfe


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("method", ADAPTIVE)
def test_tuple_state(method, dtype):
    # api_tests.TestCollectionState: a tuple (y0, y0) solved together, each part exact.
    f, y0, t, sol = construct("constant", dtype)
    out = odeint(lambda tt, y: (f(tt, y[0]), f(tt, y[1])), (y0, y0), t, method=method)
    eps = 1e-4 if dtype == torch.float32 else 1e-12
    assert isinstance(out, tuple) and len(out) == 2
    for part in out:
        assert part.shape == sol.shape and (sol - part).abs().max() < eps


def test_tuple_of_different_shapes_matches_torchdiffeq():
    y0 = (torch.randn(2, 3, dtype=torch.float64), torch.tensor(0.5, dtype=torch.float64))
    t = torch.linspace(0, 2, 7, dtype=torch.float64)

    def func(tt, y):
        return (-y[0] * y[1], torch.cos(tt) * y[0].sum())

    out = odeint(func, y0, t, rtol=(1e-7, 1e-6), atol=1e-9)
    assert out[0].shape == (7, 2, 3) and out[1].shape == (7,)
    torchdiffeq = _torchdiffeq()
    if torchdiffeq is not None:
        for ours, theirs in zip(out, torchdiffeq.odeint(func, y0, t, rtol=(1e-7, 1e-6), atol=1e-9)):
            agree(ours, theirs, torch.float64)


# ---------------------------------------------------------------- gradients through the solver
@pytest.mark.parametrize("method", FIXED + ADAPTIVE)
def test_gradcheck_wrt_y0_and_t(method):
    # gradient_tests.TestGradient.test_odeint
    f, y0, t, _ = construct("constant")
    assert torch.autograd.gradcheck(lambda y, tt: odeint(f, y, tt, method=method), (y0, t))


@pytest.mark.parametrize("method", ADAPTIVE)
def test_gradcheck_tuple_state(method):
    # api_tests.TestCollectionState.test_gradient
    f, y0, t, _ = construct("constant")
    for i in range(2):
        assert torch.autograd.gradcheck(
            lambda y, tt: odeint(lambda s, v: (f(s, v[0]), f(s, v[1])), (y, y), tt, method=method)[i], (y0, t)
        )


@pytest.mark.parametrize("ode", ["constant", "linear", "sine"])
def test_gradients_match_torchdiffeq(ode):
    # gradient_tests' tight solve (rtol 1e-9, atol 1e-12), compared with torchdiffeq's backprop.
    torchdiffeq = pytest.importorskip("torchdiffeq")
    grads = []
    for solve in (odeint, torchdiffeq.odeint):
        f, y0, t, _ = construct(ode)
        ys = solve(f, y0, t, rtol=1e-9, atol=1e-12)
        ys.backward(torch.rand(ys.shape, generator=torch.Generator().manual_seed(0), dtype=ys.dtype))
        grads.append([y0.grad, t.grad] + [p.grad for p in f.parameters()])
    for ours, theirs in zip(*grads):
        torch.testing.assert_close(ours, theirs, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- options and semantics
@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("interp", ["linear", "cubic"])
def test_step_size_grid_and_interpolation_onto_t(method, interp):
    # A grid of step 0.3 that does not contain the output times: torchdiffeq interpolates.
    t = torch.tensor([0.0, 0.25, 0.5, 1.0, 1.7], dtype=torch.float64)
    y0 = torch.tensor([1.0, -0.5], dtype=torch.float64)
    func = lambda tt, y: torch.sin(tt) * y - 0.3 * y**2  # noqa: E731
    options = {"step_size": 0.3, "interp": interp}
    y = odeint(func, y0, t, method=method, options=options)
    assert y.shape == (5, 2)
    torchdiffeq = _torchdiffeq()
    if torchdiffeq is not None:
        agree(y, torchdiffeq.odeint(func, y0, t, method=method, options=options), torch.float64)
        agree(
            odeint(func, y0, -t, method=method, options=options),
            torchdiffeq.odeint(func, y0, -t, method=method, options=options),
            torch.float64,
        )


def test_step_callback_once_per_step():
    # odeint_tests.TestCallbacks.test_steps (forward part): step_size 0.1 on [0, 1] is 10 steps.
    for method in FIXED:
        calls = []

        class F(torch.nn.Module):
            def forward(self, t, y):
                return -y

            def callback_step(self, t0, y0, dt):
                calls.append(float(dt))

        odeint(F(), torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0]), method=method, options={"step_size": 0.1})
        assert len(calls) == 10


def test_grid_constructor():
    # odeint_tests.TestGridConstructor (forward part): Euler on 10 steps of x' = x.
    x0 = torch.tensor(1.0, requires_grad=True)
    xs = odeint(
        lambda t, x: x,
        x0,
        torch.tensor([0.0, 1.0]),
        method="euler",
        options={"grid_constructor": lambda f, y0, t: torch.linspace(0, 1, 11)},
    )
    assert abs(float(xs[1]) - 1.1**10) < 1e-6


@pytest.mark.parametrize("method", FIXED)
@pytest.mark.parametrize("perturb", [True, False])
def test_perturb(method, perturb):
    # odeint_tests.TestDiscontinuities.test_odeint_perturb (forward part)
    ts = []

    def f(t, x):
        ts.append(t.item())
        return -x

    odeint(
        f,
        torch.tensor([1.0, 2.0]),
        torch.tensor([0.0, 1.0]),
        method=method,
        options={"step_size": 0.5, "perturb": perturb},
    )
    assert (0.0 in ts and 0.5 in ts) != perturb


@pytest.mark.parametrize("method", ADAPTIVE)
def test_jump_t_saves_evaluations(method):
    # odeint_tests.TestDiscontinuities.test_odeint_jump_t (forward part)
    def counted():
        n = [0]

        def f(t, x):
            n[0] += 1
            return -0.5 * x if t < 0.5 else x**2

        return f, n

    x0, t = torch.tensor([1.0, 2.0]), torch.tensor([0.0, 1.0])
    simple, n_simple = counted()
    odeint(simple, x0, t, atol=1e-6, method=method)
    better, n_better = counted()
    odeint(better, x0, t, rtol=1e-6, atol=1e-6, method=method, options={"jump_t": torch.tensor([0.5])})
    assert n_better[0] < n_simple[0]


def test_min_step_cuts_evaluations():
    # odeint_tests.TestMinMaxStep (the dopri5 part)
    for min_step, few in ((0, False), (2, True)):
        f, y0, t, _ = construct("linear")
        odeint(f, y0, t, method="dopri5", options={"min_step": min_step, "max_step": 5})
        assert (f.nfe < 50) if few else (f.nfe > 100)


def test_norm_option_sees_the_state_as_given():
    # norm_tests.TestNorms.test_norm: a tensor norm for a tensor state, a tuple one for a tuple.
    shapes = []

    def norm(state):
        shapes.append(tuple(s.shape for s in state) if isinstance(state, tuple) else state.shape)
        return (state[0] if isinstance(state, tuple) else state).pow(2).mean().sqrt()

    odeint(lambda t, x: x, torch.tensor(1.0), torch.tensor([0.0, 1.0]), options={"norm": norm})
    assert shapes and all(s == () for s in shapes)
    shapes.clear()
    x0 = (torch.tensor(1.0), torch.tensor([[0.5, 0.5], [0.1, 0.1]]))
    odeint(lambda t, x: x, x0, torch.tensor([0.0, 1.0]), options={"norm": norm})
    assert shapes and all(s == ((), (2, 2)) for s in shapes)


def test_defaults_are_torchdiffeqs():
    import inspect

    params = inspect.signature(odeint).parameters
    assert params["rtol"].default == 1e-7 and params["atol"].default == 1e-9 and params["method"].default is None
    torchdiffeq = _torchdiffeq()
    if torchdiffeq is not None:  # method=None is dopri5 with those tolerances: the same numbers
        f, y0, t, _ = construct("sine")
        agree(odeint(f, y0, t), torchdiffeq.odeint(f, y0, t), torch.float64)


def test_rk4_is_the_three_eighths_rule_and_classic_is_kept():
    y0, t = torch.tensor(1.0, dtype=torch.float64), torch.tensor([0.0, 0.5], dtype=torch.float64)
    func = lambda tt, y: torch.cos(tt) * y**2  # noqa: E731
    h = 0.5
    k1 = func(torch.tensor(0.0, dtype=torch.float64), y0)
    k2 = func(torch.tensor(h / 3, dtype=torch.float64), y0 + h * k1 / 3)
    k3 = func(torch.tensor(2 * h / 3, dtype=torch.float64), y0 + h * (k2 - k1 / 3))
    k4 = func(torch.tensor(h, dtype=torch.float64), y0 + h * (k1 - k2 + k3))
    three_eighths = y0 + h * (k1 + 3 * k2 + 3 * k3 + k4) / 8
    torch.testing.assert_close(odeint(func, y0, t, method="rk4")[1], three_eighths, rtol=1e-15, atol=1e-15)
    classic = odeint(func, y0, t, method="rk4_classic")[1]
    assert abs(float(classic - three_eighths)) > 1e-8


# ---------------------------------------------------------------- errors
def test_bad_times_raise_torchdiffeqs_errors():
    f = lambda t, y: -y  # noqa: E731
    y0 = torch.ones(3)
    for bad, message in [
        (torch.tensor([0.0, 1.0, 0.5]), "strictly increasing or decreasing"),
        (torch.tensor([0.0, 1.0, 1.0]), "strictly increasing or decreasing"),
        (torch.zeros(2, 2), "one dimensional"),
        ([0.0, 1.0], "must be a torch.Tensor"),
    ]:
        for kind in (AssertionError, ValueError):  # torchdiffeq asserts; ours is both
            with pytest.raises(kind, match=message):
                odeint(f, y0, bad)
    with pytest.raises(TypeError, match="floating point"):
        odeint(f, y0, torch.tensor([0, 1]))


def test_methods_we_do_not_implement_raise_naming_the_supported_ones():
    for method in NOT_IMPLEMENTED:
        with pytest.raises(ValueError, match="not implemented by hepgen.ode.odeint; supported: .*dopri5"):
            odeint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]), method=method)
    with pytest.raises(ValueError, match='Invalid method "rk45"'):
        odeint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]), method="rk45")
    with pytest.raises(NotImplementedError, match="event_fn"):
        odeint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]), event_fn=lambda t, y: y[0])
    with pytest.raises(ValueError, match="not options of method 'dopri5'.*first_step"):
        odeint(lambda t, y: -y, torch.ones(2), torch.tensor([0.0, 1.0]), options={"step_size": 0.1})


def test_every_torchdiffeq_method_is_supported_or_refused():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    from torchdiffeq._impl.odeint import SOLVERS

    from hepgen.ode.dropin import FIXED_GRID_METHODS

    for method in SOLVERS:
        assert (method in FIXED_GRID_METHODS) or (method in ADAPTIVE_METHODS) or (method in NOT_IMPLEMENTED)
    assert torchdiffeq.__version__ == "0.2.5", "re-check the method list against this torchdiffeq"


def test_deprecated_mask_keyword_warns():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        odeint(lambda t, y: -y, torch.ones(2, 3), torch.tensor([0.0, 1.0]), mask=None)
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
