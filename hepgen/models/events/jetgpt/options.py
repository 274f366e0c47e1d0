"""JetGPT's settings within the shared EventModelConfig.

``config.hidden`` is the token width, ``config.layers`` the number of transformer blocks;
the rest lives in ``config.options`` (``hepgen train events --option KEY=VALUE``):

- ``heads`` (4): attention heads (hidden must be a multiple);
- ``components`` (16): Gaussians per conditional p(x_i | x_<i);
- ``bayesian_blocks`` (1): with ``--bayesian``, the head and the MLPs of this many last
  blocks are Bayesian (the paper makes "the last layers" Bayesian); 0 = head only;
- ``min_log_sigma`` (-7): soft lower bound on each Gaussian's log width (standardised
  units), so that no component can collapse onto a point and make the likelihood diverge.

The paper gives the architecture but no sizes we could reproduce on a CPU; docs/jetgpt.md
says what was trained here.
"""

from __future__ import annotations

from dataclasses import dataclass

from hepgen.models.events.config import EventModelConfig

DEFAULTS = {"heads": 4, "components": 16, "bayesian_blocks": 1, "min_log_sigma": -7.0}


@dataclass(frozen=True)
class JetGPTOptions:
    dim: int
    layers: int
    heads: int
    components: int
    bayesian_blocks: int
    min_log_sigma: float

    @classmethod
    def from_config(cls, config: EventModelConfig) -> JetGPTOptions:
        unknown = sorted(set(config.options) - set(DEFAULTS))
        if unknown:
            raise ValueError(f"options: JetGPT does not know {unknown}; it takes {sorted(DEFAULTS)}")
        o = {**DEFAULTS, **config.options}
        for name in ("heads", "components"):
            if not isinstance(o[name], int) or isinstance(o[name], bool) or o[name] < 1:
                raise ValueError(f"options: {name} must be a positive int, got {o[name]!r}")
        b = o["bayesian_blocks"]
        if not isinstance(b, int) or isinstance(b, bool) or not 0 <= b <= config.layers:
            raise ValueError(f"options: bayesian_blocks must be an int in 0..layers ({config.layers}), got {b!r}")
        if isinstance(o["min_log_sigma"], bool) or not isinstance(o["min_log_sigma"], (int, float)):
            raise ValueError(f"options: min_log_sigma must be a number, got {o['min_log_sigma']!r}")
        if config.hidden % o["heads"]:
            raise ValueError(f"hidden ({config.hidden}) must be a multiple of options heads ({o['heads']})")
        return cls(config.hidden, config.layers, o["heads"], o["components"], b, float(o["min_log_sigma"]))
