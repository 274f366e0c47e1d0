"""The torchdiffeq drop-in, hepgen.ode.odeint: torchdiffeq's ``odeint`` call and semantics (torchdiffeq 0.2.5).

What a caller of ``torchdiffeq.odeint`` gets here unchanged: any state shape (0-d, 1-D, N-D)
or a tuple of tensors; t increasing or decreasing (1-D, floating); the output
[len(t), *y0.shape] (a tuple of those for a tuple state); method=None meaning dopri5;
rtol=1e-7, atol=1e-9; the same method names for the same methods ("rk4" is Kutta's 3/8 rule);
the options torchdiffeq's solvers take; func(t, y) with a scalar t; gradients by
backpropagation through the solver. The numerics are in hepgen.ode.whole_state.

Departures, each an error rather than a silent difference:
- torchdiffeq methods not implemented here (dopri8, the Adams methods, scipy_solver), and
  ``event_fn``, raise and name what is supported;
- an option a solver does not take raises ValueError (torchdiffeq warns and ignores it).
Extra method names, hepgen's: "heun" (= heun2), "rk4_38" (= rk4), "rk4_classic" (the classic
RK4, which hepgen's odeint called "rk4" before it followed torchdiffeq).

Per-sample step control and particle masks are hepgen.ode.odeint_batched (the previous
behaviour of this function); ``odeint(..., mask=...)`` still reaches it for one release, with
a DeprecationWarning.
"""

from __future__ import annotations

import warnings

import torch

from hepgen.ode.tableaus import ADAPTIVE, DROPIN_FIXED_GRID, MIDPOINT_WEIGHTS
from hepgen.ode.whole_state import AdaptiveRK, TimeCast, grid_from_step_size, rms_norm, solve_fixed_grid

FIXED_GRID_METHODS = {**DROPIN_FIXED_GRID, "heun": DROPIN_FIXED_GRID["heun2"]}
ADAPTIVE_METHODS = ADAPTIVE
NOT_IMPLEMENTED = ("dopri8", "explicit_adams", "implicit_adams", "fixed_adams", "scipy_solver")
FIXED_GRID_OPTIONS = ("step_size", "grid_constructor", "interp", "perturb")
ADAPTIVE_OPTIONS = (
    "first_step",
    "min_step",
    "max_step",
    "step_t",
    "jump_t",
    "safety",
    "ifactor",
    "dfactor",
    "max_num_steps",
    "dtype",
    "norm",
)
CALLBACKS = ("callback_step", "callback_accept_step", "callback_reject_step")
_UNSET = object()


class InvalidInput(ValueError, AssertionError):
    """A bad y0 or t. torchdiffeq raises AssertionError for these; this is both, so code written
    for either catches it."""


def supported_methods() -> list[str]:
    return sorted(FIXED_GRID_METHODS) + sorted(ADAPTIVE_METHODS)


def odeint(
    func,
    y0,
    t,
    *,
    rtol=1e-7,
    atol=1e-9,
    method: str | None = None,
    options: dict | None = None,
    event_fn=None,
    mask=_UNSET,
):
    """Solve dy/dt = func(t, y), y(t[0]) = y0 at every time of t, as torchdiffeq.odeint does.

    func(t, y): t a scalar tensor, y like y0 (a tensor of any shape, or a tuple of tensors);
    returns dy/dt shaped like y. t: 1-D floating tensor, strictly increasing or decreasing.
    Returns [len(t), *y0.shape] (a tuple of such for a tuple y0).

    Methods: fixed grid euler, midpoint, heun2 (alias heun), heun3, rk4 (Kutta's 3/8 rule, as
    in torchdiffeq; alias rk4_38), rk4_classic (the classic RK4, hepgen's former "rk4");
    adaptive dopri5 (default), bosh3, fehlberg2, adaptive_heun. Fixed-grid methods step on t,
    or on a grid of ``options["step_size"]`` (or ``options["grid_constructor"](func, y0, t)``)
    and interpolate onto t (``interp``: "linear" or "cubic"). Adaptive options as torchdiffeq:
    first_step, min_step, max_step, step_t, jump_t, safety, ifactor, dfactor, max_num_steps,
    dtype (of times), norm.

    ``mask`` is deprecated here: it selects hepgen.ode.odeint_batched, use that instead.
    """
    if mask is not _UNSET:
        from hepgen.ode.fixed_grid import odeint_batched

        warnings.warn(
            "hepgen.ode.odeint(..., mask=...) is deprecated: odeint now has torchdiffeq's semantics "
            "(one step size for the whole state); call hepgen.ode.odeint_batched(func, y0, t, mask=..., "
            "method=...) for per-sample step control and particle masks",
            DeprecationWarning,
            stacklevel=2,
        )
        return odeint_batched(
            func,
            y0,
            t,
            method="midpoint" if method is None else method,
            mask=mask,
            rtol=rtol,
            atol=atol,
            options=options,
        )
    if event_fn is not None:
        raise NotImplementedError(
            "event_fn: hepgen.ode.odeint does not implement torchdiffeq's event handling; "
            "use torchdiffeq.odeint or torchdiffeq.odeint_event for it"
        )
    method = "dopri5" if method is None else method
    _check_method(method)
    options = {} if options is None else dict(options)
    allowed = FIXED_GRID_OPTIONS if method in FIXED_GRID_METHODS else ADAPTIVE_OPTIONS
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"options {unknown} are not options of method {method!r}; it takes {', '.join(allowed)}")

    shapes, y0, func, rtol, atol = _flatten_tuple(func, y0, rtol, atol, options)
    t = _check_times(t)
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if isinstance(tol, torch.Tensor) and tol.requires_grad:
            raise InvalidInput(f"{name} cannot require gradient")
    if t.device != y0.device:
        warnings.warn("t is not on the same device as y0. Coercing to y0.device.", stacklevel=2)
        t = t.to(y0.device)
    reversed_time = len(t) > 1 and bool(t[0] > t[1])
    if reversed_time:
        t, func = -t, _reverse(func)
        if "grid_constructor" in options:
            make = options["grid_constructor"]
            options["grid_constructor"] = lambda f, y, tt: -make(f, y, -tt)
        for name in ("step_t", "jump_t"):
            if isinstance(options.get(name), torch.Tensor):
                options[name] = -options[name]
    if not bool((t[1:] > t[:-1]).all()):
        raise InvalidInput("t must be strictly increasing or decreasing")

    callbacks = _callbacks(func, method)
    f = TimeCast(func, y0.abs().dtype)
    if method in FIXED_GRID_METHODS:
        step_size = options.pop("step_size", None)
        make_grid = options.pop("grid_constructor", None)
        if step_size is not None and make_grid is not None:
            raise ValueError("step_size and grid_constructor are mutually exclusive arguments.")
        interp = options.get("interp", "linear")
        if interp not in ("linear", "cubic"):
            raise ValueError(f"options['interp'] must be 'linear' or 'cubic', got {interp!r}")
        if step_size is not None:
            grid = grid_from_step_size(t, step_size)
        elif make_grid is not None:
            grid = make_grid(func, y0, t)
        else:
            grid = t
        solution = solve_fixed_grid(
            f, y0, t, FIXED_GRID_METHODS[method], grid, interp, bool(options.get("perturb", False)), callbacks[0]
        )
    else:
        if "norm" not in options:
            options["norm"] = rms_norm
        solver = AdaptiveRK(
            f,
            y0,
            ADAPTIVE_METHODS[method],
            MIDPOINT_WEIGHTS[method],
            rtol=rtol,
            atol=atol,
            callbacks=callbacks,
            **options,
        )
        solution = solver.integrate(t)
    if shapes is None:
        return solution
    return _unflatten(solution, (len(t),), shapes)


def _check_method(method):
    if method in FIXED_GRID_METHODS or method in ADAPTIVE_METHODS:
        return
    supported = ", ".join(supported_methods())
    if method in NOT_IMPLEMENTED:
        raise ValueError(
            f"method {method!r} of torchdiffeq is not implemented by hepgen.ode.odeint; supported: {supported}"
        )
    raise ValueError(f'Invalid method "{method}". Must be one of {supported}')


def _check_times(t):
    if not isinstance(t, torch.Tensor):
        raise InvalidInput("t must be a torch.Tensor")
    if not torch.is_floating_point(t):
        raise TypeError(f"`t` must be a floating point Tensor but is a {t.type()}")
    if t.dim() != 1:
        raise InvalidInput("t must be one dimensional")
    if t.numel() == 0:
        raise InvalidInput("t must hold at least one time (the initial time t[0])")
    up = t[1:] > t[:-1]
    if not (bool(up.all()) or bool((~up).all())):
        raise InvalidInput("t must be strictly increasing or decreasing")
    return t


def _flatten_tuple(func, y0, rtol, atol, options):
    """A tuple state becomes one 1-D tensor (and func, tolerances and norm follow), as torchdiffeq
    does, so the solvers see one tensor."""
    if isinstance(y0, torch.Tensor):
        return None, y0, func, rtol, atol
    if not isinstance(y0, tuple) or not all(isinstance(v, torch.Tensor) for v in y0):
        raise InvalidInput(f"y0 must be either a torch.Tensor or a tuple of tensors, got {type(y0).__name__}")
    shapes = [v.shape for v in y0]
    flat_y0 = torch.cat([v.reshape(-1) for v in y0])

    def flat_func(t, y):
        return torch.cat([d.reshape(-1) for d in func(t, _unflatten(y, (), shapes))])

    for callback in CALLBACKS:  # keep the user's callbacks visible on the wrapped func
        if hasattr(func, callback):
            original = getattr(func, callback)
            setattr(flat_func, callback, lambda t0, y, dt, _cb=original: _cb(t0, _unflatten(y, (), shapes), dt))
    user_norm = options.get("norm")
    if user_norm is None:  # torchdiffeq's default for tuples: the largest RMS norm of the parts

        def user_norm(parts):
            return max(rms_norm(p) for p in parts) if parts else 0.0

    options["norm"] = lambda flat: user_norm(_unflatten(flat, (), shapes))
    return shapes, flat_y0, flat_func, _tuple_tol("rtol", rtol, shapes), _tuple_tol("atol", atol, shapes)


def _tuple_tol(name, tol, shapes):
    if isinstance(tol, (int, float)) or (isinstance(tol, torch.Tensor) and tol.dim() == 0):
        return tol
    tol = tuple(tol)
    if len(tol) != len(shapes):
        raise InvalidInput(f"If using tupled {name} it must have the same length as the tuple y0")
    return torch.cat([torch.as_tensor(v).expand(s.numel()) for v, s in zip(tol, shapes)])


def _unflatten(flat, lead, shapes):
    parts, start = [], 0
    for s in shapes:
        parts.append(flat[..., start : start + s.numel()].view((*lead, *s)))
        start += s.numel()
    return tuple(parts)


def _reverse(func):
    """Decreasing t is solved as increasing -t: d y/d(-t) = -func(t, y)."""

    def reversed_func(t, y):
        return -func(-t, y)

    for callback in CALLBACKS:
        if hasattr(func, callback):
            original = getattr(func, callback)
            setattr(reversed_func, callback, lambda t0, y, dt, _cb=original: _cb(-t0, y, dt))
    return reversed_func


def _callbacks(func, method):
    """The step callbacks torchdiffeq calls (func.callback_step, ...); one a method does not call
    gets torchdiffeq's warning."""
    found = [getattr(func, name, None) for name in CALLBACKS]
    if method in FIXED_GRID_METHODS:
        unused = [name for name, cb in zip(CALLBACKS[1:], found[1:]) if cb is not None]
        if unused:
            warnings.warn(f"Solver '{method}' does not support callbacks {set(unused)}", stacklevel=3)
        return found[0], None, None
    return tuple(found)
