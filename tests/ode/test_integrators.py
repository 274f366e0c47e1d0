"""hepgen.ode's batched integrators: convergence orders, torchdiffeq agreement, masks, per-sample
dopri5, SDE/DDIM steps, the deprecated spellings. (The drop-in odeint: tests/dropin/.)"""

import math

import pytest
import torch

import hepgen.ops as ops
from hepgen.ode import (
    FIXED_GRID,
    ddim_coefficients,
    ddim_step,
    dopri5,
    euler_maruyama_step,
    integrate,
    odeint,
    odeint_batched,
)

ORDERS = {"euler": 1, "midpoint": 2, "heun": 2, "heun3": 3, "rk4_classic": 4, "rk4_38": 4}


def decay(t, y):
    return -y


def rotation(t, y):  # y [S, 2]: exact solution rotates y0 by angle t
    return torch.stack([-y[:, 1], y[:, 0]], dim=1)


def time_dependent(t, y):  # dy/dt = cos(t) y  →  y = y0 exp(sin t)
    return torch.cos(t) * y


def _error(method, func, exact, steps):
    y0 = torch.tensor([[1.0, 0.5], [-0.3, 2.0]], dtype=torch.float64)
    t = torch.linspace(0.0, 1.0, steps + 1, dtype=torch.float64)
    return (integrate(func, y0, t, method) - exact(y0)).abs().max().item()


def _rotate(y0, a=1.0):
    c, s = math.cos(a), math.sin(a)
    return torch.stack([c * y0[:, 0] - s * y0[:, 1], s * y0[:, 0] + c * y0[:, 1]], dim=1)


@pytest.mark.parametrize("backend", ["reference", "cpu", "triton"])
@pytest.mark.parametrize("method", sorted(ORDERS))
@pytest.mark.parametrize("problem", ["decay", "rotation", "time_dependent"])
def test_convergence_order(backend, method, problem):
    if ops.why_unavailable(backend, torch.device("cpu"), torch.float64):
        pytest.skip(ops.why_unavailable(backend, torch.device("cpu"), torch.float64))
    func, exact = {
        "decay": (decay, lambda y0: y0 * math.exp(-1.0)),
        "rotation": (rotation, _rotate),
        "time_dependent": (time_dependent, lambda y0: y0 * math.exp(math.sin(1.0))),
    }[problem]
    with ops.use_backend({"ode_combine": backend}):
        e1, e2 = _error(method, func, exact, 16), _error(method, func, exact, 32)
    observed = math.log2(e1 / e2)
    assert abs(observed - ORDERS[method]) < 0.35, f"{method}: observed order {observed:.2f}"


@pytest.mark.parametrize(
    "ours, theirs",
    [("euler", "euler"), ("midpoint", "midpoint"), ("heun", "heun2"), ("heun3", "heun3"), ("rk4_38", "rk4")],
)
def test_batched_agrees_with_torchdiffeq_on_the_same_grid(ours, theirs):
    torchdiffeq = pytest.importorskip("torchdiffeq")
    y0 = torch.randn(4, 5, 3, dtype=torch.float64)
    t = torch.linspace(1.0, 0.0, 11, dtype=torch.float64)
    func = lambda t, y: torch.sin(3 * t) * y - 0.5 * y**2  # noqa: E731
    expected = torchdiffeq.odeint(func, y0, t, method=theirs)
    torch.testing.assert_close(odeint_batched(func, y0, t, method=ours), expected, rtol=1e-12, atol=1e-12)


def test_batched_dopri5_agrees_with_torchdiffeq():
    torchdiffeq = pytest.importorskip("torchdiffeq")
    y0 = torch.tensor([[1.0, 0.0], [0.2, -1.0]], dtype=torch.float64)
    t = torch.tensor([0.0, 2.0], dtype=torch.float64)
    ours = odeint_batched(lambda t, y: rotation(t, y), y0, t, method="dopri5", rtol=1e-9, atol=1e-11)
    theirs = torchdiffeq.odeint(rotation, y0, t, method="dopri5", rtol=1e-9, atol=1e-11)
    torch.testing.assert_close(ours, theirs, rtol=1e-7, atol=1e-8)
    torch.testing.assert_close(ours[-1], _rotate(y0, 2.0), rtol=1e-7, atol=1e-8)


def test_dopri5_steps_each_sample_on_its_own():
    # dy/dt = -λ_s y with very different λ per sample: stiff samples need many more steps.
    lam = torch.tensor([0.1, 1.0, 30.0], dtype=torch.float64)
    y0 = torch.ones(3, 4, dtype=torch.float64)
    func = lambda t, y: -lam.unsqueeze(1) * y  # noqa: E731
    y, stats = dopri5(func, y0, 0.0, 1.0, rtol=1e-8, atol=1e-10)
    torch.testing.assert_close(y, torch.exp(-lam).unsqueeze(1).expand(3, 4), rtol=1e-6, atol=1e-9)
    assert stats.accepted[0] < stats.accepted[2]
    assert stats.nfe > 0


def test_dopri5_receives_per_sample_time():
    seen = []

    def func(t, y):
        seen.append(t.shape)
        return torch.cos(t).unsqueeze(1) * y  # exact: y0 · exp(sin t)

    y, _ = dopri5(func, torch.ones(2, 3, dtype=torch.float64), 0.0, 1.5, rtol=1e-9, atol=1e-12)
    assert all(s == (2,) for s in seen)
    torch.testing.assert_close(y, torch.full((2, 3), math.exp(math.sin(1.5)), dtype=torch.float64))


@pytest.mark.parametrize("method", sorted(FIXED_GRID) + ["dopri5"])
def test_mask_keeps_padding_zero_and_unread(method):
    mask = torch.tensor([[True, True, False], [True, False, False]])
    y0 = torch.randn(2, 3, 2, dtype=torch.float64).masked_fill(~mask.unsqueeze(-1), float("nan"))

    def func(t, y):
        return torch.where(mask.unsqueeze(-1), -y, torch.full_like(y, float("nan")))

    out = odeint_batched(func, y0, torch.linspace(0, 1, 41, dtype=torch.float64), method=method, mask=mask)
    assert (out[1:][:, ~mask] == 0).all()
    torch.testing.assert_close(out[-1][mask], y0[mask] * math.exp(-1), rtol=2e-2, atol=1e-3)


def test_euler_maruyama_and_ddim_steps_match_formulas():
    g = torch.Generator().manual_seed(0)
    y, drift, noise = (torch.randn(3, 4, 2, generator=g, dtype=torch.float64) for _ in range(3))
    out = euler_maruyama_step(y, drift, 0.7, -0.04, noise=noise)
    torch.testing.assert_close(out, y + drift * -0.04 + 0.7 * math.sqrt(0.04) * noise)
    a_bar, a_next = 0.3, 0.6
    x0_pred = (y - math.sqrt(1 - a_bar) * noise) / math.sqrt(a_bar)
    expected = math.sqrt(a_next) * x0_pred + math.sqrt(1 - a_next) * noise
    torch.testing.assert_close(ddim_step(y, noise, a_bar, a_next), expected)
    mask = torch.rand(3, 4, generator=g) < 0.5
    assert (ddim_step(y, noise, a_bar, a_next, mask)[~mask] == 0).all()
    with pytest.raises(ValueError, match="alpha_bar must be in"):
        ddim_coefficients(0.0, 0.5)


def test_euler_maruyama_has_the_right_variance():
    y = torch.zeros(200_000, 1, dtype=torch.float64)
    out = euler_maruyama_step(y, torch.zeros_like(y), 2.0, 0.25, generator=torch.Generator().manual_seed(1))
    assert abs(out.var().item() - 4.0 * 0.25) < 0.02


def test_bad_arguments():
    y0 = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="method must be one of"):
        odeint_batched(decay, y0, torch.linspace(0, 1, 3), method="rk45")
    with pytest.raises(ValueError, match="strictly increasing or strictly decreasing"):
        odeint_batched(decay, y0, torch.tensor([0.0, 1.0, 0.5]))
    with pytest.raises(ValueError, match="step_size"):
        odeint_batched(decay, y0, torch.linspace(0, 1, 3), method="euler", options={"step_size": 0.1})
    with pytest.raises(TypeError, match="y0 must be a torch.Tensor"):
        odeint_batched(decay, [0.0], torch.linspace(0, 1, 3))


def test_old_spellings_still_work_with_a_warning():
    # odeint(..., mask=...) was the batched solve: it still is, for one release.
    mask = torch.tensor([[True, False], [True, True]])
    y0 = torch.randn(2, 2, 3, dtype=torch.float64) * mask.unsqueeze(-1)
    t = torch.linspace(0, 1, 5, dtype=torch.float64)
    with pytest.warns(DeprecationWarning, match="odeint_batched"):
        old = odeint(decay, y0, t, mask=mask)
    torch.testing.assert_close(old, odeint_batched(decay, y0, t, mask=mask), rtol=0, atol=0)
    # "rk4" in the batched integrators is still the classic RK4 (the documented numbers), warned.
    with pytest.warns(FutureWarning, match="rk4_classic"):
        old = integrate(time_dependent, y0, t, "rk4")
    torch.testing.assert_close(old, integrate(time_dependent, y0, t, "rk4_classic"), rtol=0, atol=0)
    assert (old - integrate(time_dependent, y0, t, "rk4_38")).abs().max() > 0  # a different method
