"""Batched ODE/SDE integrators whose step arithmetic runs in fused, mask-aware kernels.

- :func:`odeint`: torchdiffeq's call for fixed grids (euler, midpoint, heun, rk4, rk4_38)
  and per-sample adaptive dopri5;
- :func:`integrate`: the final state only (sampling);
- :func:`dopri5`: adaptive Dormand–Prince with per-sample step control;
- :func:`euler_maruyama_step`, :func:`euler_maruyama`, :func:`ddim_step`: stochastic and
  diffusion updates;
- :class:`FixedGridSampler`: a sampling loop, optionally replayed as a CUDA graph (unverified).
"""

from hepgen.ode.adaptive import AdaptiveStats, dopri5
from hepgen.ode.fixed_grid import integrate, odeint, rk_step
from hepgen.ode.graph import FixedGridSampler
from hepgen.ode.stochastic import ddim_coefficients, ddim_step, euler_maruyama, euler_maruyama_step
from hepgen.ode.tableaus import DOPRI5, FIXED_GRID, Tableau

__all__ = ["odeint", "integrate", "rk_step", "dopri5", "AdaptiveStats", "euler_maruyama_step", "euler_maruyama",
           "ddim_step", "ddim_coefficients", "FixedGridSampler", "Tableau", "FIXED_GRID", "DOPRI5"]
