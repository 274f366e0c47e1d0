"""Which class reads which checkpoint format, and the pretrained models shipped with hepgen.

One table, ``FORMATS`` (format tag -> (module, class, what it generates)); a new model adds
one line here. Kept free of torch so that ``hepgen.models.list_pretrained()`` and the CLI's
``--help`` import nothing heavy.
"""

from __future__ import annotations

import importlib
from pathlib import Path

FORMATS = {
    "hepgen.caloman": ("hepgen.models.caloman.model", "CaloMan", "CaloMan showers"),
    "hepgen.epic": ("hepgen.models.epic.model", "EPiCGenerator", "EPiC-FM/EPiC-JeDi jets"),
    "hepgen.events": ("hepgen.models.events.base", "EventGenerator", "Z+jets event generators"),
}

_MODELS = Path(__file__).parent
# name -> (path, kind, description)
PRETRAINED = {
    "pretrained-calo": (
        _MODELS / "caloman" / "pretrained" / "caloman_gflash_photons.pt",
        "showers",
        "CaloMan on GFlash-style photon showers in the CaloChallenge dataset-1 geometry (not Geant4; docs/caloman.md)",
    ),
    "pretrained-jets": (
        _MODELS / "epic" / "pretrained" / "epic_fm_top30.pt",
        "jets",
        "EPiC-FM on Pythia top jets with 30 particles (docs/epic.md)",
    ),
    "pretrained-events": (
        _MODELS / "events" / "pretrained" / "cfm_zjets.pt",
        "events",
        "CFM on 180 000 Pythia Z(->mu mu)+1-3 jet events (docs/events.md)",
    ),
}
# What the plain name "pretrained" meant to each kind's old loader.
PRETRAINED_BY_KIND = {"showers": "pretrained-calo", "jets": "pretrained-jets", "events": "pretrained-events"}
KINDS = ("jets", "showers", "events")


def model_class(fmt: str):
    """The generator class of checkpoint format ``fmt`` (imports its module)."""
    module, name, _ = FORMATS[fmt]
    return getattr(importlib.import_module(module), name)


def supported_version(fmt: str) -> int:
    """The checkpoint version the class of ``fmt`` reads and writes."""
    return model_class(fmt).checkpoint_version


def pretrained_path(name: str, kind: str | None = None) -> Path | None:
    """The file of pretrained model ``name`` ("pretrained" needs ``kind``); None if ``name``
    is not a pretrained name. FileNotFoundError if the file is missing from the installation."""
    if name == "pretrained":
        if kind not in PRETRAINED_BY_KIND:
            raise ValueError(f"'pretrained' is ambiguous here: name one of {', '.join(PRETRAINED)}")
        name = PRETRAINED_BY_KIND[kind]
    if name not in PRETRAINED:
        if name.startswith("pretrained"):
            raise ValueError(f"unknown pretrained model {name!r}; choose from {', '.join(PRETRAINED)}")
        return None
    path = PRETRAINED[name][0]
    if not path.is_file():
        raise FileNotFoundError(f"the shipped checkpoint {name} is missing from this installation ({path})")
    return path
