"""Z/gamma*(-> mu+ mu-) + jets events with Pythia 8 and FastJet.

The hard process is Z/gamma* + parton (q qbar -> Z g, q g -> Z q) at 13 TeV with
p^_T > 20 GeV and the Z/gamma* mass in 66-116 GeV (full interference), Z -> mu mu only;
additional jets come from the parton shower. Per event: the hardest mu+ and mu- (bare,
after QED radiation), and anti-kT R = 0.4 jets with pT > 20 GeV and |eta| < 5 made from
all other final-state particles except neutrinos. Events with 1, 2 or 3 such jets are
kept (the exclusive multiplicities of "Jet Diffusion versus JetGPT").
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from hepgen.data.events import MAX_JETS
from hepgen.data.kinematics import pt_eta_phi_m
from hepgen.data.pythia_setup import (
    COMMON_SETTINGS,
    final_state,
    generator_versions,
    make_pythia,
    require_pythia,
    seed_settings,
)

_MAX_BATCH_EVENTS = 500


@dataclass(frozen=True)
class PythiaZJets:
    """Makes Z+jets events: ``task(seed, n)`` -> {muons, jets, n_jets}."""

    pthat_min: float = 20.0
    mass_min: float = 66.0
    mass_max: float = 116.0
    jet_radius: float = 0.4
    jet_pt_min: float = 20.0
    jet_abs_eta_max: float = 5.0
    min_jets: int = 1
    max_jets: int = MAX_JETS

    def __post_init__(self) -> None:
        if not 0 <= self.min_jets <= self.max_jets <= MAX_JETS:
            raise ValueError(f"min_jets, max_jets: expected 0 <= min <= max <= {MAX_JETS}")
        if not 0 < self.mass_min < self.mass_max:
            raise ValueError("mass_min, mass_max: expected 0 < mass_min < mass_max")

    @property
    def layout(self):
        return {
            "muons": ((2, 4), np.float32, "GeV"),
            "jets": ((MAX_JETS, 4), np.float32, "GeV"),
            "n_jets": ((), np.int64, None),
        }

    def settings(self, seed: int | None = None) -> list[str]:
        """Every Pythia setting of a run (without the seed when ``seed`` is None)."""
        lines = [
            *COMMON_SETTINGS,
            "WeakBosonAndParton:qqbar2gmZg = on",
            "WeakBosonAndParton:qg2gmZq = on",
            "WeakZ0:gmZmode = 0",
            f"23:mMin = {self.mass_min}",
            f"23:mMax = {self.mass_max}",
            "23:onMode = off",
            "23:onIfAny = 13",
            f"PhaseSpace:pTHatMin = {self.pthat_min}",
        ]
        return lines + (list(seed_settings(seed)) if seed is not None else [])

    def provenance(self) -> dict:
        """File attributes describing how the events were made."""
        return {
            "generator": "Pythia 8 + FastJet (hepgen.data.pythia_events)",
            "process": "Z/gamma*(->mu mu) + jets",
            "pythia_settings": self.settings(),
            "jet_algorithm": "anti-kt",
            "jet_radius": self.jet_radius,
            "jet_pt_min": self.jet_pt_min,
            "jet_abs_eta_max": self.jet_abs_eta_max,
            "jet_inputs": "final-state particles except neutrinos and the two muons",
            "min_jets": self.min_jets,
            "max_jets": self.max_jets,
            **generator_versions(),
        }

    def __call__(self, seed: int, n: int) -> dict[str, np.ndarray]:
        _, fastjet = require_pythia()
        pythia = make_pythia(self.settings(seed))
        definition = fastjet.JetDefinition(fastjet.antikt_algorithm, self.jet_radius)
        parts: list[dict[str, np.ndarray]] = []
        n_kept = n_events = 0
        while n_kept < n:
            kept_per_event = max(n_kept / n_events, 0.01) if n_events else 0.5
            size = min(_MAX_BATCH_EVENTS, math.ceil(1.1 * (n - n_kept) / kept_per_event) + 1)
            events = pythia.nextBatch(size)  # events that fail in Pythia are skipped
            n_events += max(len(events), 1)
            part = self._select(events, fastjet, definition)
            parts.append(part)
            n_kept += len(part["n_jets"])
            if n_events > 1000 and n_kept < 0.001 * n_events:
                raise RuntimeError(f"{n_kept} events kept of {n_events}: check the cuts")
        return {key: np.concatenate([p[key] for p in parts])[:n] for key in self.layout}

    def _select(self, events, fastjet, definition) -> dict[str, np.ndarray]:
        import awkward as ak

        particles = final_state(events)
        index = ak.local_index(particles.id)
        pt2 = particles.px**2 + particles.py**2
        # The hardest mu- (id 13) and mu+ (id -13) of each event.
        leading, muon_p4 = {}, {}
        for pid in (13, -13):
            candidates = ak.where(particles.id == pid, pt2, -1.0)
            best = ak.argmax(candidates, axis=1, keepdims=True)
            found = ak.to_numpy(ak.fill_none(ak.firsts(candidates[best]), -1.0)) > 0
            leading[pid] = np.where(found, ak.to_numpy(ak.fill_none(ak.firsts(best), -1)), -1)
            muon = ak.firsts(particles[best])
            muon_p4[pid] = [ak.to_numpy(ak.fill_none(muon[f], 0.0)) for f in ("px", "py", "pz", "E")]
        has_pair = (leading[13] >= 0) & (leading[-13] >= 0)
        is_muon = (index == leading[13][:, None]) | (index == leading[-13][:, None])
        jets = fastjet.ClusterSequence(particles[~is_muon][["px", "py", "pz", "E"]], definition).inclusive_jets(
            min_pt=self.jet_pt_min
        )
        jet_p4 = [ak.to_numpy(ak.flatten(jets[f])) for f in ("px", "py", "pz", "E")]
        pt, eta, phi, mass = pt_eta_phi_m(*jet_p4)
        counts = ak.to_numpy(ak.num(jets))
        event = np.repeat(np.arange(len(counts)), counts)
        accepted = np.abs(eta) < self.jet_abs_eta_max
        n_jets = np.bincount(event[accepted], minlength=len(counts))
        keep = has_pair & (n_jets >= self.min_jets) & (n_jets <= self.max_jets)

        jets_out = np.zeros((len(counts), MAX_JETS, 4), dtype=np.float32)
        order = np.lexsort((-pt, event))
        order = order[accepted[order]]
        rank = np.arange(len(order)) - np.searchsorted(event[order], event[order])
        inside = rank < MAX_JETS
        rows, cols, chosen = event[order][inside], rank[inside], order[inside]
        jets_out[rows, cols] = np.stack([pt[chosen], eta[chosen], phi[chosen], mass[chosen]], axis=1)

        muons_out = np.zeros((len(counts), 2, 4), dtype=np.float32)
        for slot, pid in enumerate((13, -13)):
            muons_out[:, slot] = np.stack(pt_eta_phi_m(*muon_p4[pid]), axis=1)
        # Order the two muons by pT.
        swap = muons_out[:, 1, 0] > muons_out[:, 0, 0]
        muons_out[swap] = muons_out[swap][:, ::-1]
        return {"muons": muons_out[keep], "jets": jets_out[keep], "n_jets": n_jets[keep].astype(np.int64)}
