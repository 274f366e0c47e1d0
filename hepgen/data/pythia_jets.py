"""Top-quark and light-quark/gluon jets with Pythia 8 and FastJet, in the JetNet layout.

top: pp -> t tbar at 13 TeV with both W bosons decaying to quarks; qcd: QCD 2 -> 2
(gg, qg, qq, q qbar) with newly produced quark pairs limited to u, d, s -- c and b enter
only from the proton's parton densities. The hard process has p^_T in 900-1100 GeV,
so most events give two jets near 1 TeV; jets are anti-kT R = 0.8 on all final-state
particles except neutrinos, kept if 800 < pT < 1200 GeV and |eta| < 2.5. Every such jet
of an event is kept (a t tbar event usually gives two top jets).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hepgen.data.jetnet_features import jetnet_arrays
from hepgen.data.jets import JET_KEY, PARTICLE_KEY
from hepgen.data.pythia_setup import (
    COMMON_SETTINGS,
    final_state,
    generator_versions,
    make_pythia,
    require_pythia,
    seed_settings,
)

PROCESS_SETTINGS = {
    "top": (
        "Top:gg2ttbar = on",
        "Top:qqbar2ttbar = on",
        # Hadronic W decays only: W -> d, u, s, c, b quark pairs.
        "24:onMode = off",
        "24:onIfAny = 1 2 3 4 5",
    ),
    "qcd": (
        "HardQCD:gg2gg = on",
        "HardQCD:gg2qqbar = on",
        "HardQCD:qg2qg = on",
        "HardQCD:qq2qq = on",
        "HardQCD:qqbar2gg = on",
        "HardQCD:qqbar2qqbarNew = on",
        # New quark flavours in gg -> q qbar and q qbar -> q' qbar': u, d, s only.
        "HardQCD:nQuarkNew = 3",
    ),
}

# Events per nextBatch call at most: bounds the memory of the full event record.
_MAX_BATCH_EVENTS = 200


@dataclass(frozen=True)
class PythiaJets:
    """Makes JetNet-layout jets: ``task(seed, n)`` -> {particle_features, jet_features}."""

    process: str = "top"
    max_particles: int = 30
    jet_radius: float = 0.8
    pt_min: float = 800.0
    pt_max: float = 1200.0
    abs_eta_max: float = 2.5
    pthat_min: float = 900.0
    pthat_max: float = 1100.0

    def __post_init__(self) -> None:
        if self.process not in PROCESS_SETTINGS:
            raise ValueError(f"process: expected one of {sorted(PROCESS_SETTINGS)}, got {self.process!r}")
        if not isinstance(self.max_particles, int) or self.max_particles < 1:
            raise ValueError(f"max_particles: expected a positive integer, got {self.max_particles!r}")
        if not 0 <= self.pt_min < self.pt_max:
            raise ValueError(f"pt_min, pt_max: expected 0 <= pt_min < pt_max, got {self.pt_min}, {self.pt_max}")

    @property
    def layout(self):
        return {
            PARTICLE_KEY: ((self.max_particles, 4), np.float32, None),
            JET_KEY: ((4,), np.float32, "GeV"),
        }

    def settings(self, seed: int | None = None) -> list[str]:
        """Every Pythia setting of a run (without the seed when ``seed`` is None)."""
        lines = [
            *COMMON_SETTINGS,
            *PROCESS_SETTINGS[self.process],
            f"PhaseSpace:pTHatMin = {self.pthat_min}",
            f"PhaseSpace:pTHatMax = {self.pthat_max}",
        ]
        return lines + (list(seed_settings(seed)) if seed is not None else [])

    def provenance(self) -> dict:
        """File attributes describing how the jets were made."""
        return {
            "generator": "Pythia 8 + FastJet (hepgen.data.pythia_jets)",
            "process": self.process,
            "pythia_settings": self.settings(),
            "jet_algorithm": "anti-kt",
            "jet_radius": self.jet_radius,
            "jet_pt_min": self.pt_min,
            "jet_pt_max": self.pt_max,
            "jet_abs_eta_max": self.abs_eta_max,
            "jet_inputs": "final-state particles except neutrinos",
            "max_particles": self.max_particles,
            **generator_versions(),
        }

    def __call__(self, seed: int, n: int) -> dict[str, np.ndarray]:
        _, fastjet = require_pythia()
        pythia = make_pythia(self.settings(seed))
        definition = fastjet.JetDefinition(fastjet.antikt_algorithm, self.jet_radius)
        particles, jets = [], []
        n_jets = n_events = 0
        while n_jets < n:
            # Ask for about as many events as the jets still missing need, at the yield so far.
            jets_per_event = max(n_jets / n_events, 0.05) if n_events else 1.5
            size = min(_MAX_BATCH_EVENTS, math.ceil(1.1 * (n - n_jets) / jets_per_event) + 1)
            events = pythia.nextBatch(size)  # events that fail in Pythia are skipped
            n_events += max(len(events), 1)
            batch_particles, batch_jets = self._jets(events, fastjet, definition)
            particles.append(batch_particles)
            jets.append(batch_jets)
            n_jets += len(batch_jets)
            if n_events > 1000 and n_jets < 0.001 * n_events:
                raise RuntimeError(f"{n_jets} jets from {n_events} events: check the jet and p^_T windows")
        return {
            PARTICLE_KEY: np.concatenate(particles)[:n],
            JET_KEY: np.concatenate(jets)[:n],
        }

    def _jets(self, events, fastjet, definition) -> tuple[np.ndarray, np.ndarray]:
        import awkward as ak

        inputs = final_state(events)
        sequence = fastjet.ClusterSequence(inputs[["px", "py", "pz", "E"]], definition)
        jets = sequence.inclusive_jets(min_pt=self.pt_min)
        constituents = sequence.constituents(min_pt=self.pt_min)
        jet_p4 = np.stack([ak.to_numpy(ak.flatten(jets[f])) for f in ("px", "py", "pz", "E")], axis=1)
        pt = np.hypot(jet_p4[:, 0], jet_p4[:, 1])
        eta = np.arcsinh(jet_p4[:, 2] / pt)
        # Jets in the window and acceptance, in event order, the harder jet first.
        event = np.repeat(np.arange(len(jets)), ak.to_numpy(ak.num(jets)))
        order = np.lexsort((-pt, event))
        chosen = order[(pt[order] < self.pt_max) & (np.abs(eta[order]) < self.abs_eta_max)]
        per_jet = ak.flatten(constituents, axis=1)[chosen]
        counts = ak.to_numpy(ak.num(per_jet))
        flat = ak.flatten(per_jet)
        constituent_p4 = np.stack([ak.to_numpy(flat[f]) for f in ("px", "py", "pz", "E")], axis=1)
        return jetnet_arrays(jet_p4[chosen], constituent_p4, counts, self.max_particles)
