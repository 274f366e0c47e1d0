"""The CaloMan checkpoint shipped with hepgen: what `hepgen generate calo` uses without --model.

Trained on this machine on GFlash-style photon showers (hepgen.data.GFlashSimulator, the
CaloChallenge dataset-1 geometry), *not* on Geant4 / CaloChallenge data; how, and its
measured quality, are in docs/caloman.md and the checkpoint's ``extra``.
"""

from __future__ import annotations

from pathlib import Path

import torch

# Next to this module, listed in the wheel (scikit-build-core ships every file of the package).
PRETRAINED_PATH = Path(__file__).with_name("pretrained") / "caloman_gflash_photons.pt"


def load_pretrained(device: str | torch.device = "cpu"):
    """(model in eval mode, its ``extra``) of the shipped checkpoint."""
    from hepgen.models.caloman.checkpoint import load_checkpoint

    if not PRETRAINED_PATH.is_file():
        raise FileNotFoundError(f"the shipped CaloMan checkpoint is missing from this installation "
                                f"({PRETRAINED_PATH}); pass --model CKPT")
    return load_checkpoint(PRETRAINED_PATH, device)
