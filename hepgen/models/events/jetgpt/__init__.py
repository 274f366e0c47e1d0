"""JetGPT (Butter, Huetsch et al., "Jet Diffusion versus JetGPT"): an autoregressive
transformer over the components of Z(->mu mu)+jets events with Gaussian-mixture
conditionals, KV-cache sampling, and its Bayesian version. ``build(config)`` is the entry
point of hepgen.models.events (see base.py); settings: options.py; docs/jetgpt.md."""

from hepgen.models.events.jetgpt.model import JetGPT, build
from hepgen.models.events.jetgpt.options import DEFAULTS, JetGPTOptions
from hepgen.models.events.jetgpt.ordering import sort_by_pt

__all__ = ["DEFAULTS", "JetGPT", "JetGPTOptions", "build", "sort_by_pt"]
