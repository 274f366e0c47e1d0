"""CaloMan (Cresswell, Ross et al. 2022): calorimeter showers from density estimation on a
learned manifold — a VAE, a conditional spline flow on its latent, an energy-per-layer flow.

    from hepgen.models.caloman import train_caloman, save_checkpoint, load_checkpoint
    result = train_caloman(sample.showers, sample.incident_energies, epochs=50)
    showers = result.model.sample(energies_mev)          # numpy [N, n_voxels], MeV
"""

from hepgen.models.caloman.checkpoint import FORMAT, VERSION, load_checkpoint, save_checkpoint
from hepgen.models.caloman.config import CaloManConfig
from hepgen.models.caloman.model import CaloMan
from hepgen.models.caloman.pretrained import PRETRAINED_PATH, load_pretrained
from hepgen.models.caloman.preprocessing import Preprocessing
from hepgen.models.caloman.train import TrainResult, train_caloman
from hepgen.models.caloman.vae import VAE

__all__ = ["CaloMan", "CaloManConfig", "Preprocessing", "VAE", "TrainResult", "train_caloman",
           "save_checkpoint", "load_checkpoint", "load_pretrained", "PRETRAINED_PATH", "FORMAT", "VERSION"]
