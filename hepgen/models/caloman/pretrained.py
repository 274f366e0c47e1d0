"""The CaloMan checkpoint shipped with hepgen: ``hepgen.models.load("pretrained-calo")``.

Trained on this machine on GFlash-style photon showers (hepgen.data.GFlashSimulator, the
CaloChallenge dataset-1 geometry), *not* on Geant4 / CaloChallenge data; how, and its
measured quality, are in docs/caloman.md and the checkpoint's provenance.
"""

from __future__ import annotations

import torch

from hepgen.models.registry import PRETRAINED

PRETRAINED_PATH = PRETRAINED["pretrained-calo"][0]


def load_pretrained(device: str | torch.device = "cpu"):
    """Deprecated: (model in eval mode, its provenance); use hepgen.models.load("pretrained-calo")."""
    from hepgen.models import load
    from hepgen.models.base import deprecated
    from hepgen.models.caloman.checkpoint import _extra

    deprecated("hepgen.models.caloman.load_pretrained", 'hepgen.models.load("pretrained-calo")')
    model = load("pretrained-calo", device)
    return model, _extra(model)
