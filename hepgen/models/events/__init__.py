"""Z(->mu mu)+jets event generators of "Jet Diffusion versus JetGPT": DDPM, CFM, the spline
INN baseline, their Bayesian versions, and JetGPT (where built). See base.py for the
interface, docs/events.md for usage and results."""

from hepgen.models.events.base import MODEL_MODULES, EventGenerator, build_model
from hepgen.models.events.config import MODELS, EventModelConfig
from hepgen.models.events.vectors import EventPreprocessing

__all__ = ["MODELS", "MODEL_MODULES", "EventGenerator", "EventModelConfig", "EventPreprocessing", "build_model"]
