"""CaloMan (Cresswell, Ross et al. 2022): calorimeter showers from density estimation on a
learned manifold — a VAE, a conditional spline flow on its latent, an energy-per-layer flow.

    import hepgen.models
    from hepgen.models.caloman import train_caloman
    result = train_caloman(sample.showers, sample.incident_energies, epochs=50)
    result.model.save("calo.pt")
    model = hepgen.models.load("calo.pt")                # or "pretrained-calo"
    showers = model.sample(condition=energies_mev, seed=0)   # a ShowerSample (MeV)

``save_checkpoint``, ``load_checkpoint`` and ``load_pretrained`` are the older spellings.
"""

from hepgen.models.caloman.checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint
from hepgen.models.caloman.config import CaloManConfig
from hepgen.models.caloman.model import CaloMan
from hepgen.models.caloman.preprocessing import Preprocessing
from hepgen.models.caloman.pretrained import PRETRAINED_PATH, load_pretrained
from hepgen.models.caloman.train import TrainResult, train_caloman
from hepgen.models.caloman.vae import VAE

__all__ = [
    "FORMAT",
    "PRETRAINED_PATH",
    "VAE",
    "VERSION",
    "CaloMan",
    "CaloManConfig",
    "Preprocessing",
    "TrainResult",
    "load_checkpoint",
    "load_pretrained",
    "save_checkpoint",
    "train_caloman",
]
