"""Z(->mu mu)+jets event generators of "Jet Diffusion versus JetGPT": DDPM, CFM, the spline
INN baseline, their Bayesian versions, and JetGPT (where built). See base.py for the
contract, docs/events.md for usage and results.

Names are imported on first use (lazy_loader), so that the CLI's --help does not import torch."""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submod_attrs={
        "config": ["MODELS", "EventModelConfig"],
        "base": ["MODEL_MODULES", "EventGenerator", "build_model"],
        "vectors": ["EventPreprocessing"],
    },
)
