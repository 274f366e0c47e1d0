"""EPiC-FM / EPiC-JeDi hyper-parameters (defaults: the paper's code for JetNet30 top jets)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

MODELS = ("epic-fm", "epic-jedi")


@dataclass(frozen=True)
class EPiCConfig:
    model: str = "epic-fm"  # epic-fm: OT flow matching; epic-jedi: VP cosine score diffusion
    particles: int = 30  # particle slots P (JetNet30 / JetNet150)
    conditional: bool = True  # condition the network on jet (pT, mass)
    hidden: int = 128
    latent: int = 10
    layers: int = 6
    time_dim: int = 32
    weight_norm: bool = True
    # Particle features are standardised over real particles, then scaled to this std (code: 5).
    feature_std: float = 5.0
    # EPiC-FM (code, "FM-OT"): y_t = (1-t) x + (sigma + (1-sigma) t) z.
    sigma: float = 1e-4
    # EPiC-JeDi (PC-JeDi code): signal rate cos(theta), theta linear in t from arccos(max) to arccos(min).
    max_signal_rate: float = 0.999
    min_signal_rate: float = 0.02

    def __post_init__(self):
        if self.model not in MODELS:
            raise ValueError(f"model must be one of {', '.join(MODELS)}, got {self.model!r}")
        for name in ("particles", "hidden", "latent", "layers", "time_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        for name in ("conditional", "weight_norm"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name} must be a bool, got {getattr(self, name)!r}")
        if not self.feature_std > 0:
            raise ValueError(f"feature_std must be positive, got {self.feature_std!r}")
        if not 0 <= self.sigma < 1:
            raise ValueError(f"sigma must be in [0, 1), got {self.sigma!r}")
        if not 0 < self.min_signal_rate < self.max_signal_rate < 1:
            raise ValueError(
                "signal rates must satisfy 0 < min_signal_rate < max_signal_rate < 1, got "
                f"{self.min_signal_rate!r}, {self.max_signal_rate!r}"
            )

    @property
    def cond_dim(self) -> int:
        return 2 if self.conditional else 0

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> EPiCConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"config: unknown keys {unknown}")
        return cls(**d)
