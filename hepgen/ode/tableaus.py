"""Butcher tableaus of the explicit Runge–Kutta methods hepgen integrates with.

Each is (c, a, b): nodes, the strictly lower-triangular stage matrix (row i has i entries)
and weights. Stored as Python floats: the fused combination kernels take them by value.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Tableau:
    name: str
    order: int
    c: tuple[float, ...]
    a: tuple[tuple[float, ...], ...]
    b: tuple[float, ...]
    b_low: tuple[float, ...] | None = None  # embedded lower-order weights (adaptive methods)

    @property
    def stages(self) -> int:
        return len(self.c)


EULER = Tableau("euler", 1, (0.0,), ((),), (1.0,))
MIDPOINT = Tableau("midpoint", 2, (0.0, 0.5), ((), (0.5,)), (0.0, 1.0))
HEUN = Tableau("heun", 2, (0.0, 1.0), ((), (1.0,)), (0.5, 0.5))
# Heun's third-order method (torchdiffeq's "heun3").
HEUN3 = Tableau("heun3", 3, (0.0, 1 / 3, 2 / 3), ((), (1 / 3,), (0.0, 2 / 3)), (1 / 4, 0.0, 3 / 4))
# The classic RK4, hepgen's old "rk4"; torchdiffeq's "rk4" is the 3/8 rule below.
RK4_CLASSIC = Tableau(
    "rk4_classic", 4, (0.0, 0.5, 0.5, 1.0), ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6)
)
# Kutta's 3/8 rule: what torchdiffeq calls "rk4".
RK4_38 = Tableau(
    "rk4_38", 4, (0.0, 1 / 3, 2 / 3, 1.0), ((), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)), (1 / 8, 3 / 8, 3 / 8, 1 / 8)
)
DOPRI5 = Tableau(
    "dopri5",
    5,
    (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    (
        (),
        (1 / 5,),
        (3 / 40, 9 / 40),
        (44 / 45, -56 / 15, 32 / 9),
        (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
        (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
        (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84),
    ),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
)

# Embedded pairs of torchdiffeq's other adaptive methods (their `b_low` is b minus torchdiffeq's c_error).
BOSH3 = Tableau(
    "bosh3",
    3,
    (0.0, 1 / 2, 3 / 4, 1.0),
    ((), (1 / 2,), (0.0, 3 / 4), (2 / 9, 1 / 3, 4 / 9)),
    (2 / 9, 1 / 3, 4 / 9, 0.0),
    (7 / 24, 1 / 4, 1 / 3, 1 / 8),
)
FEHLBERG2 = Tableau(
    "fehlberg2",
    2,
    (0.0, 1 / 2, 1.0),
    ((), (1 / 2,), (1 / 256, 255 / 256)),
    (1 / 512, 255 / 256, 1 / 512),
    (1 / 256, 255 / 256, 0.0),
)
ADAPTIVE_HEUN = Tableau("adaptive_heun", 2, (0.0, 1.0), ((), (1.0,)), (0.5, 0.5), (0.0, 1.0))
# Dormand-Prince with the embedded weights torchdiffeq uses (error = b - b_low = its c_error); they
# differ from the standard ones in DOPRI5 (which hepgen.ode.dopri5, the per-sample solver, keeps so
# that its numbers do not change). The drop-in needs torchdiffeq's to take the same steps.
DOPRI5_TORCHDIFFEQ = Tableau(
    "dopri5",
    5,
    DOPRI5.c,
    DOPRI5.a,
    DOPRI5.b,
    (1951 / 21600, 0.0, 22642 / 50085, 451 / 720, -12231 / 42400, 649 / 6300, 1 / 60),
)

# Weights of y(t0 + h/2) ≈ y0 + h Σ mid_i k_i, the midpoint that the dense output's quartic
# interpolant passes through: Shampine's for Dormand-Prince; for the others torchdiffeq's cruder
# choice, half a step along one stage derivative, which we copy so that outputs between steps agree.
MIDPOINT_WEIGHTS = {
    "dopri5": (
        6025192743 / 30085553152 / 2,
        0.0,
        51252292925 / 65400821598 / 2,
        -2691868925 / 45128329728 / 2,
        187940372067 / 1594534317056 / 2,
        -1776094331 / 19743644256 / 2,
        11237099 / 235043384 / 2,
    ),
    "bosh3": (0.0, 0.5, 0.0, 0.0),
    "fehlberg2": (0.0, 0.5, 0.0),
    "adaptive_heun": (0.5, 0.0),
}
ADAPTIVE = {t.name: t for t in (DOPRI5_TORCHDIFFEQ, BOSH3, FEHLBERG2, ADAPTIVE_HEUN)}

# The batched fixed-grid integrators (integrate, FixedGridSampler, odeint_batched). "rk4" there
# is still the classic RK4 for one release (with a FutureWarning, see fixed_grid.method_tableau).
FIXED_GRID = {t.name: t for t in (EULER, MIDPOINT, HEUN, HEUN3, RK4_CLASSIC, RK4_38)}
ALIASES = {"heun2": "heun"}  # torchdiffeq's name

# hepgen.ode.odeint, the torchdiffeq drop-in: torchdiffeq's names mean torchdiffeq's methods.
DROPIN_FIXED_GRID = {
    "euler": EULER,
    "midpoint": MIDPOINT,
    "heun2": HEUN,
    "heun3": HEUN3,
    "rk4": RK4_38,
    "rk4_38": RK4_38,
    "rk4_classic": RK4_CLASSIC,
}
