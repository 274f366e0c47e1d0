"""The generators: CaloMan (showers), EPiC-FM/EPiC-JeDi (jets), the Z+jets event models.

    import hepgen.models
    model = hepgen.models.load("pretrained-jets")      # or a checkpoint path
    jets = model.sample(1000, seed=0)                    # hepgen.data.JetSample
    jets.write("jets.h5")

Every model has the contract of :mod:`hepgen.models.base`; checkpoints are
:class:`hepgen.models.checkpoint.Checkpoint`. Names load on first use (lazy_loader), so
importing this package imports no torch.
"""

import lazy_loader

__getattr__, __dir__, __all__ = lazy_loader.attach(
    __name__,
    submodules=["base", "caloman", "checkpoint", "epic", "events", "registry"],
    submod_attrs={
        "base": ["Generator", "chunk_seed"],
        "checkpoint": ["Checkpoint", "provenance"],
        "loading": ["load", "list_pretrained"],
    },
)
