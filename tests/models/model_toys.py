"""Small untrained models of every kind with their preprocessing fitted on toy data: what the
contract tests sample from (fast, deterministic; the numbers mean nothing)."""

import numpy as np
import torch
from events_toys import z_sample
from jet_toys import P, toy_jets

CALO_SMALL = dict(
    latent=4,
    hidden=(16,),
    flow_layers=2,
    flow_hidden=8,
    flow_blocks=1,
    flow_bins=4,
    layer_flow_layers=2,
    layer_flow_hidden=8,
    layer_flow_blocks=1,
)
EVENTS_TINY = dict(hidden=16, layers=1, timesteps=20, ode_steps=3, flow_bins=4, flow_blocks=1)
# Every kind and every event architecture (and a Bayesian one for ensemble members).
KINDS = (
    "showers",
    "jets",
    "jets-unconditional",
    "events-cfm",
    "events-ddpm",
    "events-inn",
    "events-jetgpt",
    "events-cfm-bayesian",
)


def calo_toy(seed: int = 0):
    from hepgen.data import GFlashSimulator
    from hepgen.models.caloman import CaloMan, CaloManConfig

    sample = GFlashSimulator().sample(64, np.random.default_rng(seed), (1024.0, 4096.0, 16384.0))
    model = CaloMan(CaloManConfig(**CALO_SMALL), seed=seed)
    model.preprocessing.fit(
        torch.as_tensor(sample.showers),
        torch.as_tensor(sample.incident_energies),
        generator=torch.Generator().manual_seed(seed),
    )
    return model.eval()


def jets_toy(conditional: bool = True, seed: int = 0):
    from hepgen.models.epic import EPiCConfig, EPiCGenerator

    torch.manual_seed(seed)
    particles, jets = (torch.as_tensor(a) for a in toy_jets(seed=seed))
    model = EPiCGenerator(EPiCConfig(particles=P, conditional=conditional, hidden=8, latent=2, layers=1, time_dim=4))
    model.particle_scaler.fit(particles[..., :3], particles[..., 3] > 0.5)
    model.cond_scaler.fit(jets[:, [0, 2]])
    model.jet_density.fit(jets, torch.Generator().manual_seed(seed))
    return model.eval()


def events_toy(architecture: str = "cfm", bayesian: bool = False, seed: int = 0):
    from hepgen.models.events import EventModelConfig, EventPreprocessing, build_model

    torch.manual_seed(seed)
    options = {"heads": 2, "components": 2} if architecture == "jetgpt" else {}
    if architecture == "ddpm":
        options = {"sampler": "ddim", "sample_steps": 3}
    model = build_model(EventModelConfig(model=architecture, bayesian=bayesian, options=options, **EVENTS_TINY))
    model.preprocessing = EventPreprocessing.fit(z_sample(300, seed))
    return model.eval()


def toy(kind: str):
    if kind == "showers":
        return calo_toy()
    if kind.startswith("jets"):
        return jets_toy(conditional=kind == "jets")
    _, architecture, *bayesian = kind.split("-")
    return events_toy(architecture, bool(bayesian))


def condition_for(kind: str, n: int):
    """A valid condition of ``n`` samples for the model kind (None where it takes none)."""
    if kind == "showers":
        return np.resize([1024.0, 4096.0, 16384.0], n)
    if kind == "jets":
        return np.stack([np.linspace(520, 680, n), np.linspace(130, 190, n)], 1)
    if kind.startswith("events"):
        return np.resize([1, 2, 3], n)
    return None
