"""JetGPT's hyper-parameters.

The paper ("Jet Diffusion versus JetGPT", PAPERS.md §3) gives the architecture (pre-LN GPT
blocks, GELU MLP x4, one token per phase-space component, Gaussian-mixture conditionals);
the sizes below are ours, small enough to train on a CPU in minutes.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from hepgen.data.events import MAX_JETS


@dataclass(frozen=True)
class JetGPTConfig:
    dim: int = 64  # token width
    heads: int = 4
    layers: int = 4  # transformer blocks
    components: int = 16  # Gaussians per conditional p(x_i | x_<i)
    min_log_sigma: float = -7.0  # softly bounded below: a collapsing width makes the likelihood diverge
    # Bayesian version: mean-field Gaussian weights in the head and the MLPs of the last
    # ``bayesian_blocks`` blocks (the paper makes "the last layers" Bayesian).
    bayesian: bool = False
    bayesian_blocks: int = 1
    prior_std: float = 1.0
    init_log_var: float = -9.0
    # Preprocessing (hepgen.data.event_transforms.event_preprocessing).
    jet_pt_min: float = 20.0
    pt_offset: float = 0.01
    mass_offset: float = 0.01

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "bayesian":
                if not isinstance(value, bool):
                    raise ValueError(f"bayesian must be a bool, got {value!r}")
            elif f.name in ("min_log_sigma", "init_log_var"):
                if isinstance(value, bool) or not isinstance(value, (int, float)):
                    raise ValueError(f"{f.name} must be a number, got {value!r}")
            elif f.name in ("prior_std", "jet_pt_min", "pt_offset", "mass_offset"):
                if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                    raise ValueError(f"{f.name} must be a positive number, got {value!r}")
            elif f.name == "bayesian_blocks":
                if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= self.layers:
                    raise ValueError(f"bayesian_blocks must be an int in 0..layers ({self.layers}), got {value!r}")
            elif not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{f.name} must be a positive int, got {value!r}")
        if self.dim % self.heads:
            raise ValueError(f"dim ({self.dim}) must be a multiple of heads ({self.heads})")

    @property
    def max_jets(self) -> int:
        return MAX_JETS

    @property
    def max_length(self) -> int:
        """Tokens of the longest event: 5 + 4 x 3 jets = 17 components."""
        return 5 + 4 * MAX_JETS

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> JetGPTConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"config: unknown keys {unknown}")
        return cls(**d)
