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
RK4 = Tableau("rk4", 4, (0.0, 0.5, 0.5, 1.0), ((), (0.5,), (0.0, 0.5), (0.0, 0.0, 1.0)), (1 / 6, 1 / 3, 1 / 3, 1 / 6))
# Kutta's 3/8 rule: what torchdiffeq calls "rk4".
RK4_38 = Tableau("rk4_38", 4, (0.0, 1 / 3, 2 / 3, 1.0), ((), (1 / 3,), (-1 / 3, 1.0), (1.0, -1.0, 1.0)),
                 (1 / 8, 3 / 8, 3 / 8, 1 / 8))
DOPRI5 = Tableau(
    "dopri5", 5,
    (0.0, 1 / 5, 3 / 10, 4 / 5, 8 / 9, 1.0, 1.0),
    ((),
     (1 / 5,),
     (3 / 40, 9 / 40),
     (44 / 45, -56 / 15, 32 / 9),
     (19372 / 6561, -25360 / 2187, 64448 / 6561, -212 / 729),
     (9017 / 3168, -355 / 33, 46732 / 5247, 49 / 176, -5103 / 18656),
     (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84)),
    (35 / 384, 0.0, 500 / 1113, 125 / 192, -2187 / 6784, 11 / 84, 0.0),
    (5179 / 57600, 0.0, 7571 / 16695, 393 / 640, -92097 / 339200, 187 / 2100, 1 / 40),
)

FIXED_GRID = {t.name: t for t in (EULER, MIDPOINT, HEUN, RK4, RK4_38)}
ALIASES = {"heun2": "heun"}  # torchdiffeq's name
