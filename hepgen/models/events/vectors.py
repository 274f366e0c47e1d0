"""Events <-> the networks' inputs: preprocessed flat vectors padded to 17 components.

Events with n = 1, 2, 3 jets have 5 + 4 n components (:func:`hepgen.data.event_vectors`);
each multiplicity gets its own fitted preprocessing chain (log pT, log(pT - 20 GeV + 0.01),
log m, artanh(phi/pi), standardisation: :func:`hepgen.data.event_transforms.event_preprocessing`),
and its vectors are zero-padded to 17 components. ``component_mask`` marks the real ones.
The multiplicity fractions of the training set are kept: generation draws n from them.
"""

from __future__ import annotations

import numpy as np
import torch

from hepgen.data.event_transforms import event_preprocessing
from hepgen.data.events import MAX_JETS, EventSample, event_vectors, events_from_vectors

MAX_COMPONENTS = 5 + 4 * MAX_JETS  # 17
# Generated standardised values beyond this are numerical failures, not physics: clamped
# before the inverse preprocessing so that exp() cannot overflow.
CLAMP = 10.0
# No object can carry more pT than a beam's energy (LHC at 13 TeV): larger generated values
# (from a poorly trained model's tails) are set to it and counted in attrs["clipped_pt"].
BEAM_ENERGY_GEV = 6500.0


def dimension(n_jets: int) -> int:
    return 5 + 4 * n_jets


def component_mask(n_jets: torch.Tensor) -> torch.Tensor:
    """[B, 17] float mask: 1 on the 5 + 4 n real components of each event."""
    positions = torch.arange(MAX_COMPONENTS, device=n_jets.device)
    return (positions[None, :] < (5 + 4 * n_jets)[:, None]).float()


def condition(n_jets: torch.Tensor) -> torch.Tensor:
    """[B, 3] one-hot jet multiplicity (1, 2, 3 jets)."""
    return torch.nn.functional.one_hot(n_jets.long() - 1, MAX_JETS).float()


class EventPreprocessing:
    """Fitted per-multiplicity preprocessing; ``state()``/``from_state`` store it as tensors."""

    def __init__(self, mean: np.ndarray, std: np.ndarray, fractions: np.ndarray, jet_pt_min: float):
        self.mean = np.asarray(mean, dtype=np.float64).reshape(MAX_JETS, MAX_COMPONENTS)
        self.std = np.asarray(std, dtype=np.float64).reshape(MAX_JETS, MAX_COMPONENTS)
        self.fractions = np.asarray(fractions, dtype=np.float64).reshape(MAX_JETS)
        self.jet_pt_min = float(jet_pt_min)
        if not (np.all(np.isfinite(self.mean)) and np.all(self.std > 0)):
            raise ValueError("preprocessing: mean must be finite and std positive")
        if not (np.all(self.fractions >= 0) and abs(self.fractions.sum() - 1) < 1e-6):
            raise ValueError(f"preprocessing: multiplicity fractions must sum to 1, got {self.fractions}")
        self._chains = {}
        for n in range(1, MAX_JETS + 1):
            chain = event_preprocessing(n, jet_pt_min=self.jet_pt_min)
            standardize = chain.transforms[-1]
            standardize.mean = self.mean[n - 1, : dimension(n)]
            standardize.std = self.std[n - 1, : dimension(n)]
            self._chains[n] = chain

    @classmethod
    def fit(cls, sample: EventSample, jet_pt_min: float | None = None) -> EventPreprocessing:
        """Fit on ``sample``'s events with 1-3 jets (0-jet events are not modelled)."""
        if jet_pt_min is None:
            jet_pt_min = float(sample.attrs.get("jet_pt_min", 20.0))
        counts = np.array([(sample.n_jets == n).sum() for n in range(1, MAX_JETS + 1)])
        if counts.sum() < 2:
            raise ValueError(f"data: need events with 1-{MAX_JETS} jets, found {int(counts.sum())}")
        mean = np.zeros((MAX_JETS, MAX_COMPONENTS))
        std = np.ones((MAX_JETS, MAX_COMPONENTS))
        for n in range(1, MAX_JETS + 1):
            if counts[n - 1] >= 2:
                chain = event_preprocessing(n, jet_pt_min=jet_pt_min).fit(event_vectors(sample, n).astype(np.float64))
                mean[n - 1, : dimension(n)] = chain.transforms[-1].mean
                std[n - 1, : dimension(n)] = chain.transforms[-1].std
            else:  # one event cannot be standardised; it is dropped with its multiplicity
                counts[n - 1] = 0
        return cls(mean, std, counts / counts.sum(), jet_pt_min)

    def encode(self, sample: EventSample) -> tuple[torch.Tensor, torch.Tensor]:
        """(x [M, 17] float32, n_jets [M] int64) for the events of modelled multiplicities."""
        xs, ns = [], []
        for n in range(1, MAX_JETS + 1):
            if self.fractions[n - 1] == 0 or not (sample.n_jets == n).any():
                continue
            y = self._chains[n].forward(event_vectors(sample, n).astype(np.float64))
            padded = np.zeros((len(y), MAX_COMPONENTS))
            padded[:, : dimension(n)] = y
            xs.append(padded)
            ns.append(np.full(len(y), n))
        if not xs:
            raise ValueError("sample: no events with a jet multiplicity this model was trained on")
        return torch.as_tensor(np.concatenate(xs), dtype=torch.float32), torch.as_tensor(np.concatenate(ns))

    def decode(self, x: torch.Tensor, n_jets: torch.Tensor, rng: np.random.Generator) -> EventSample:
        """Events from padded preprocessed vectors; the leading muon's azimuth is drawn
        uniformly (the events are symmetric under rotations about the beam)."""
        x = x.detach().cpu().double().numpy()
        n_jets = n_jets.detach().cpu().numpy()
        if not np.all(np.isfinite(x)):
            raise RuntimeError(f"the model generated {int((~np.isfinite(x)).any(1).sum())} non-finite events")
        x = np.clip(x, -CLAMP, CLAMP)
        parts, order = [], []
        for n in range(1, MAX_JETS + 1):
            rows = np.flatnonzero(n_jets == n)
            if len(rows) == 0:
                continue
            vectors = self._chains[n].inverse(x[rows, : dimension(n)])
            parts.append(events_from_vectors(vectors, n, rng.uniform(-np.pi, np.pi, len(rows))))
            order.append(rows)
        inverse = np.argsort(np.concatenate(order))
        cat = lambda key: np.concatenate([getattr(p, key) for p in parts])[inverse]  # noqa: E731
        muons, jets = cat("muons"), cat("jets")
        clipped = int((muons[..., 0] > BEAM_ENERGY_GEV).sum() + (jets[..., 0] > BEAM_ENERGY_GEV).sum())
        for objects in (muons, jets):
            np.minimum(objects[..., 0], BEAM_ENERGY_GEV, out=objects[..., 0])
        return EventSample(muons, jets, cat("n_jets"), {"clipped_pt": clipped})

    def draw_multiplicities(self, n: int, rng: np.random.Generator) -> torch.Tensor:
        return torch.as_tensor(rng.choice(np.arange(1, MAX_JETS + 1), size=n, p=self.fractions))

    def state(self) -> dict:
        return {
            "mean": torch.as_tensor(self.mean),
            "std": torch.as_tensor(self.std),
            "fractions": torch.as_tensor(self.fractions),
            "jet_pt_min": self.jet_pt_min,
        }

    @classmethod
    def from_state(cls, state: dict) -> EventPreprocessing:
        return cls(
            np.asarray(state["mean"]),
            np.asarray(state["std"]),
            np.asarray(state["fractions"]),
            float(state["jet_pt_min"]),
        )
