"""ODE/SDE integrators: a torchdiffeq drop-in, and batched integrators on fused, mask-aware kernels.

- :func:`odeint`: torchdiffeq's ``odeint`` (same call, semantics, methods and defaults; any
  state shape or a tuple; one step size for the whole state); see hepgen/ode/dropin.py;
- :func:`odeint_batched`: the batched solve (first dimension = independent samples), fixed grid
  on the fused kernels with an optional particle mask, or dopri5 with per-sample step control;
- :func:`integrate`: batched fixed grid, the final state only (sampling);
- :func:`dopri5`: adaptive Dormand–Prince with per-sample step control;
- :func:`euler_maruyama_step`, :func:`euler_maruyama`, :func:`ddim_step`: stochastic and
  diffusion updates;
- :class:`FixedGridSampler`: a sampling loop, optionally replayed as a CUDA graph.

Method names: torchdiffeq's mean torchdiffeq's methods in ``odeint`` ("rk4" is Kutta's 3/8
rule); "rk4_classic" is the classic RK4 everywhere. In the batched integrators "rk4" is still
the classic RK4 for this release, with a FutureWarning (see fixed_grid.method_tableau).
"""

from hepgen.ode.adaptive import AdaptiveStats, dopri5
from hepgen.ode.dropin import odeint
from hepgen.ode.fixed_grid import integrate, odeint_batched, rk_step
from hepgen.ode.graph import FixedGridSampler
from hepgen.ode.stochastic import ddim_coefficients, ddim_step, euler_maruyama, euler_maruyama_step
from hepgen.ode.tableaus import DOPRI5, FIXED_GRID, Tableau

__all__ = [
    "DOPRI5",
    "FIXED_GRID",
    "AdaptiveStats",
    "FixedGridSampler",
    "Tableau",
    "ddim_coefficients",
    "ddim_step",
    "dopri5",
    "euler_maruyama",
    "euler_maruyama_step",
    "integrate",
    "odeint",
    "odeint_batched",
    "rk_step",
]
