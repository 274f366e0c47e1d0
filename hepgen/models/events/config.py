"""Hyper-parameters of the event generators (one dataclass for every architecture).

Defaults are small CPU sizes, not the paper's (6 layers x 256-1024 units, thousands of
epochs on a GPU): see docs/events.md for what was trained here.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields

MODELS = ("jetgpt", "ddpm", "cfm", "inn")


@dataclass(frozen=True)
class EventModelConfig:
    model: str = "cfm"
    bayesian: bool = False
    # Residual MLP (DDPM, CFM) / coupling conditioner (INN) / transformer width (JetGPT).
    hidden: int = 256
    layers: int = 6  # residual blocks (DDPM, CFM), coupling layers (INN), transformer blocks (JetGPT)
    time_dim: int = 32  # sinusoidal time embedding (DDPM, CFM)
    # DDPM: the paper's schedule.
    timesteps: int = 1000
    beta_min: float = 1e-4
    beta_max: float = 0.02
    # CFM: fixed-grid ODE solver of hepgen.ode for sampling.
    ode_method: str = "midpoint"
    ode_steps: int = 50
    # INN: rational-quadratic spline couplings (hepgen.flows).
    flow_blocks: int = 2
    flow_bins: int = 10
    flow_tail_bound: float = 4.0  # inputs are standardised: +-4 sigma inside the splines
    # Bayesian layers: the paper's prior N(0, 1) and initial log sigma^2 = -9.
    prior_std: float = 1.0
    init_log_var: float = -9.0
    # Architecture-specific settings (e.g. JetGPT's heads and mixture components).
    options: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        if not isinstance(self.bayesian, bool):
            raise ValueError(f"bayesian must be a bool, got {self.bayesian!r}")
        for name in ("hidden", "layers", "time_dim", "timesteps", "ode_steps", "flow_blocks", "flow_bins"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        if self.time_dim % 2:
            raise ValueError(f"time_dim must be even (sin and cos pairs), got {self.time_dim}")
        if not 0 < self.beta_min < self.beta_max < 1:
            raise ValueError(f"need 0 < beta_min < beta_max < 1, got {self.beta_min}, {self.beta_max}")
        for name in ("flow_tail_bound", "prior_std"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)!r}")
        if not isinstance(self.options, dict):
            raise ValueError(f"options must be a dict, got {type(self.options).__name__}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EventModelConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"config: unknown keys {unknown}")
        return cls(**d)
