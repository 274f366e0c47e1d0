"""Solvers with one step size for the whole state: torchdiffeq's semantics, for hepgen.ode.odeint.

The state y is one tensor of any shape (odeint flattens tuple states into one 1-D tensor first)
and ``func(t, y)`` gets a scalar t. Fixed-grid methods step on a grid (t itself, or a grid made
from ``step_size``) and interpolate onto t; adaptive methods control one step size with the
RMS norm of the scaled error over the whole state and evaluate a quartic dense output at each
time of t, stepping past it (they never stop on t). The details (initial step, step-size
update, which derivative starts the next step, the midpoint of the interpolant, time
perturbation around stage times that coincide with a step's ends) follow torchdiffeq 0.2.5
so that the two take the same steps; comments name the places where that is a choice.

Plain PyTorch arithmetic: gradients flow to y0, to t and to func's parameters by
backpropagation through the solver (torchdiffeq's ``odeint``; there is no adjoint here).
The fused kernels of the batched integrators (hepgen.ode.integrate) are not used: they take
step sizes as host floats and have no gradient in the step size.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable

import torch

from hepgen.ode.tableaus import Tableau

Norm = Callable[[torch.Tensor], torch.Tensor]


def rms_norm(v: torch.Tensor) -> torch.Tensor:
    return v.abs().pow(2).mean().sqrt()


def _stitch(t: torch.Tensor, moved: torch.Tensor) -> torch.Tensor:
    """``moved`` in value, ``t`` in gradient (a time nudged by one ulp keeps its gradient)."""
    return t + (moved - t).detach()


class TimeCast:
    """Calls func with t in the state's real dtype, optionally one ulp after/before t."""

    def __init__(self, func, real_dtype: torch.dtype):
        self.func, self.real_dtype = func, real_dtype

    def __call__(self, t: torch.Tensor, y, nudge: int = 0):
        t = t.to(self.real_dtype)
        if nudge:
            t = _stitch(t, torch.nextafter(t.detach(), t.detach() + nudge))
        return self.func(t, y)


def _combine(y: torch.Tensor, h: torch.Tensor, coeffs, ks) -> torch.Tensor:
    acc = None
    for c, k in zip(coeffs, ks):
        if c != 0.0:
            acc = k * c if acc is None else acc + k * c
    return y if acc is None else y + h * acc


def _stages(
    f: TimeCast,
    tableau: Tableau,
    t0: torch.Tensor,
    t1: torch.Tensor,
    h: torch.Tensor,
    y: torch.Tensor,
    k0: torch.Tensor,
    last_nudge: int,
) -> list[torch.Tensor]:
    """k_0 .. k_{s-1}; a stage at c = 1 is evaluated at t1 (exact end of the step), nudged
    back by ``last_nudge`` ulps as torchdiffeq does in case func jumps at t1."""
    ks = [k0]
    for i in range(1, tableau.stages):
        y_i = _combine(y, h, tableau.a[i], ks)
        if tableau.c[i] == 1.0:
            ks.append(f(t1, y_i, nudge=last_nudge))
        else:
            ks.append(f(t0 + tableau.c[i] * h, y_i))
    return ks


# ------------------------------------------------------------------------------------ fixed grid
def grid_from_step_size(t: torch.Tensor, step_size: float) -> torch.Tensor:
    """t[0], t[0] + step_size, ..., with the last point moved onto t[-1] (torchdiffeq's grid)."""
    n = int(torch.ceil((t[-1] - t[0]) / step_size + 1).item())
    grid = torch.arange(0, n, dtype=t.dtype, device=t.device) * step_size + t[0]
    grid[-1] = t[-1]
    return grid


def solve_fixed_grid(
    f: TimeCast,
    y0: torch.Tensor,
    t: torch.Tensor,
    tableau: Tableau,
    grid: torch.Tensor,
    interp: str = "linear",
    perturb: bool = False,
    callback_step=None,
) -> torch.Tensor:
    """y at every time of t (increasing) from steps on ``grid`` (increasing, grid[0] = t[0],
    grid[-1] = t[-1]), interpolated linearly or by cubic Hermite between grid points."""
    if not (bool(grid[0] == t[0]) and bool(grid[-1] == t[-1])):
        raise ValueError("the integration grid must start at t[0] and end at t[-1]")
    out = [y0]
    j, y = 1, y0
    for t0, t1 in zip(grid[:-1], grid[1:]):
        h = t1 - t0
        if callback_step is not None:
            callback_step(t0, y, h)
        k0 = f(t0, y, nudge=1 if perturb else 0)
        ks = _stages(f, tableau, t0, t1, h, y, k0, last_nudge=-1 if perturb else 0)
        y1 = _combine(y, h, tableau.b, ks)
        while j < len(t) and bool(t1 >= t[j]):
            # a 0-d float32 state times a float64 step is float64: outputs keep y0's dtype
            out.append(_interpolate(f, interp, t0, t1, y, y1, k0, t[j]).to(y0.dtype))
            j += 1
        y = y1
    return torch.stack(out)


def _interpolate(f, interp, t0, t1, y0, y1, f0, t):
    if interp == "linear":
        if bool(t == t0):
            return y0
        if bool(t == t1):
            return y1
        return y0 + (t - t0) / (t1 - t0) * (y1 - y0)
    # cubic Hermite: costs one more evaluation, f(t1, y1), per output time (as in torchdiffeq)
    f1 = f(t1, y1)
    s = (t - t0) / (t1 - t0)
    h = t1 - t0
    return (
        (1 + 2 * s) * (1 - s) ** 2 * y0
        + s * (1 - s) ** 2 * h * f0
        + s * s * (3 - 2 * s) * y1
        + s * s * (s - 1) * h * f1
    )


# ------------------------------------------------------------------------------------ adaptive
def initial_step(f: TimeCast, t0, y0, f0, order: int, rtol, atol, norm: Norm) -> torch.Tensor:
    """Hairer, Nørsett & Wanner, Solving ODEs I, sec. II.4: a first step from two evaluations.
    Not under no_grad (as in torchdiffeq): the first step depends on y0 and func's parameters."""
    scale = atol + y0.abs() * rtol
    d0, d1 = norm(y0 / scale).abs(), norm(f0 / scale).abs()
    if d0 < 1e-5 or d1 < 1e-5:
        h0 = torch.tensor(1e-6, dtype=y0.dtype, device=y0.device)
    else:
        h0 = (0.01 * d0 / d1).abs()
    f1 = f(t0 + h0, y0 + h0 * f0)
    d2 = (norm((f1 - f0) / scale) / h0).abs()
    if d1 <= 1e-15 and d2 <= 1e-15:
        h1 = torch.max(torch.tensor(1e-6, dtype=y0.dtype, device=y0.device), h0 * 1e-3)
    else:
        h1 = (0.01 / max(d1, d2)) ** (1.0 / order)
    return torch.min(100 * h0, h1.abs()).to(t0.dtype)


@torch.no_grad()
def next_step(h: torch.Tensor, error_ratio: torch.Tensor, safety, ifactor, dfactor, order: int) -> torch.Tensor:
    """h · clamp(safety · ratio^(-1/order)); never shrinks after an accepted step."""
    if error_ratio == 0:
        return h * ifactor
    if error_ratio < 1:
        dfactor = torch.ones((), dtype=h.dtype, device=h.device)
    factor = torch.min(ifactor, torch.max(safety / error_ratio.type_as(h) ** (1.0 / order), dfactor))
    return h * factor


def _quartic(y0, y1, y_mid, f0, f1, h):
    """Coefficients (in x = (t - t0)/h, lowest first) of the quartic through y0, y_mid, y1 with
    slopes f0, f1 at the ends."""
    a = 2 * h * (f1 - f0) - 8 * (y1 + y0) + 16 * y_mid
    b = h * (5 * f0 - 3 * f1) + 18 * y0 + 14 * y1 - 32 * y_mid
    c = h * (f1 - 4 * f0) - 11 * y0 - 5 * y1 + 16 * y_mid
    return [y0, h * f0, c, b, a]


def _evaluate(coeffs, t0, t1, t):
    if not (bool(t0 <= t) and bool(t <= t1)):
        raise RuntimeError(f"dense output asked outside its step: {float(t)} not in [{float(t0)}, {float(t1)}]")
    x = ((t - t0) / (t1 - t0)).to(coeffs[0].dtype)
    total, power = coeffs[0] + x * coeffs[1], x
    for c in coeffs[2:]:
        power = power * x
        total = total + power * c
    return total


class AdaptiveRK:
    """An embedded Runge-Kutta pair with one step size for the whole state (torchdiffeq's
    RKAdaptiveStepsizeODESolver semantics). ``integrate(t)`` returns y at every time of t."""

    def __init__(
        self,
        f: TimeCast,
        y0: torch.Tensor,
        tableau: Tableau,
        mid: tuple[float, ...],
        *,
        rtol,
        atol,
        norm: Norm = rms_norm,
        min_step=0.0,
        max_step=math.inf,
        first_step=None,
        step_t=None,
        jump_t=None,
        safety=0.9,
        ifactor=10.0,
        dfactor=0.2,
        max_num_steps=2**31 - 1,
        dtype=torch.float64,
        callbacks=(None, None, None),
    ):
        self.f, self.y0, self.tableau, self.mid, self.norm = f, y0, tableau, mid, norm
        # Mixed precision as in torchdiffeq: times and tolerances in float64 (or wider), y in its dtype.
        self.dtype = dtype = torch.promote_types(dtype, y0.abs().dtype)
        dev = y0.device

        def as_t(v):
            return None if v is None else torch.as_tensor(v, dtype=dtype, device=dev)

        self.rtol, self.atol = as_t(rtol), as_t(atol)
        self.min_step, self.max_step, self.first_step = as_t(min_step), as_t(max_step), as_t(first_step)
        self.safety, self.ifactor, self.dfactor = as_t(safety), as_t(ifactor), as_t(dfactor)
        self.max_num_steps = int(max_num_steps)
        self.step_t, self.jump_t = as_t(step_t), as_t(jump_t)
        self.callback_step, self.callback_accept, self.callback_reject = callbacks
        b, a_last = tableau.b, tableau.a[-1]
        # FSAL (Dormand-Prince, Bogacki-Shampine): the last stage is evaluated at the solution.
        self.fsal = b[-1] == 0.0 and tuple(b[:-1]) == tuple(a_last)
        self.err = tuple(bi - bl for bi, bl in zip(b, tableau.b_low))

    def integrate(self, t: torch.Tensor) -> torch.Tensor:
        t = t.to(self.dtype)
        self._start(t)
        out = [self.y0]
        for next_t in t[1:]:
            out.append(self._advance(next_t))
        return torch.stack(out)

    def _start(self, t):
        f0 = self.f(t[0], self.y0)
        if self.first_step is None:
            h = initial_step(self.f, t[0], self.y0, f0, self.tableau.order, self.rtol, self.atol, self.norm)
        else:
            h = self.first_step
        # (y, f, start and end of the last step, next step size, dense output of the last step)
        self.y, self.fy, self.t_start, self.t_end, self.h, self.coeffs = self.y0, f0, t[0], t[0], h, [self.y0] * 5
        marks = []
        for name in ("step_t", "jump_t"):
            v = getattr(self, name)
            if v is None:
                v = torch.tensor([], dtype=self.dtype, device=self.y0.device)
            else:
                v = torch.sort(v[v >= t[0]]).values
            setattr(self, name, v)
            marks.append(v)
        if (torch.cat(marks).unique(return_counts=True)[1] > 1).any():
            raise ValueError("`step_t` and `jump_t` must not have any repeated elements between them.")
        self.next_step_i = min(bisect.bisect(self.step_t.tolist(), float(t[0].detach())), len(self.step_t) - 1)
        self.next_jump_i = min(bisect.bisect(self.jump_t.tolist(), float(t[0].detach())), len(self.jump_t) - 1)

    def _advance(self, next_t):
        n = 0
        while next_t > self.t_end:
            if n >= self.max_num_steps:
                raise RuntimeError(f"max_num_steps exceeded ({n}>={self.max_num_steps})")
            self._step()
            n += 1
        return _evaluate(self.coeffs, self.t_start, self.t_end, next_t)

    def _step(self):
        y0, f0, t0, h = self.y, self.fy, self.t_end, self.h
        if not torch.isfinite(h):
            h = self.min_step
        h = h.clamp(self.min_step, self.max_step)
        if self.callback_step is not None:
            self.callback_step(t0, y0, h)
        t1 = t0 + h
        if not t0 + h > t0:
            raise RuntimeError(f"underflow in dt {h.item()}")
        if not torch.isfinite(y0).all():
            raise RuntimeError(f"non-finite values in state `y`: {y0}")
        on_step_t = on_jump_t = False
        if len(self.step_t):
            mark = self.step_t[self.next_step_i]
            on_step_t = bool(t0 < mark < t0 + h)
            if on_step_t:
                t1, h = mark, mark - t0
        if len(self.jump_t):
            mark = self.jump_t[self.next_jump_i]
            on_jump_t = bool(t0 < mark < t0 + h)
            if on_jump_t:
                on_step_t = False
                t1, h = mark, mark - t0
        # Stage arithmetic in the state's dtype (torchdiffeq casts times there for the step).
        real = y0.abs().dtype
        t0s, hs, t1s = t0.to(real), h.to(real), t1.to(real)
        ks = _stages(self.f, self.tableau, t0s, t1s, hs, y0, f0, last_nudge=-1)
        y1 = _combine(y0, hs, self.tableau.a[-1], ks[:-1]) if self.fsal else _combine(y0, hs, self.tableau.b, ks)
        # The next step starts from the last stage's derivative, as torchdiffeq does; for the
        # non-FSAL pairs (fehlberg2, adaptive_heun) that stage is not at y1 (torchdiffeq's choice).
        f1 = ks[-1]
        err = _combine(torch.zeros_like(y0), hs, self.err, ks)
        ratio = self.norm(err / (self.atol + self.rtol * torch.max(y0.abs(), y1.abs()))).abs()
        accept = bool(ratio <= 1)
        if h > self.max_step:
            accept = False
        if h <= self.min_step:
            accept = True
        if accept:
            if self.callback_accept is not None:
                self.callback_accept(t0, y0, h)
            y_mid = _combine(y0, h.type_as(y0), self.mid, ks)
            self.coeffs = _quartic(y0, y1, y_mid, ks[0], ks[-1], h.type_as(y0))
            if on_step_t and self.next_step_i != len(self.step_t) - 1:
                self.next_step_i += 1
            if on_jump_t:
                if self.next_jump_i != len(self.jump_t) - 1:
                    self.next_jump_i += 1
                f1 = self.f(t1, y1, nudge=1)  # f on the far side of the discontinuity
            self.y, self.fy, self.t_start, self.t_end = y1, f1, t0, t1
        else:
            if self.callback_reject is not None:
                self.callback_reject(t0, y0, h)
            self.t_start = t0
        self.h = next_step(h, ratio, self.safety, self.ifactor, self.dfactor, self.tableau.order).clamp(
            self.min_step, self.max_step
        )
