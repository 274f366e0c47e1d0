"""Z(->mu mu)+jets event generators of "Jet Diffusion versus JetGPT": DDPM, CFM, the spline
INN baseline, their Bayesian versions, and JetGPT (where built). See base.py for the
interface, docs/events.md for usage and results.

Names are imported on first use, so that the CLI's --help does not import torch."""

import importlib

_EXPORTS = {
    "MODELS": "hepgen.models.events.config",
    "EventModelConfig": "hepgen.models.events.config",
    "MODEL_MODULES": "hepgen.models.events.base",
    "EventGenerator": "hepgen.models.events.base",
    "build_model": "hepgen.models.events.base",
    "EventPreprocessing": "hepgen.models.events.vectors",
}


def __getattr__(name):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'hepgen.models.events' has no attribute {name!r}")


__all__ = list(_EXPORTS)
