"""Sampler study: quality of an EPiC-FM/JeDi model against held-out jets per ODE sampler and NFE.

Every sampler integrates the *same* noise with the *same* drawn jet features (one seed
for all), so differences between samplers are integration error, not sampling noise;
each is scored against the same reference with the same resampling seed. Network
evaluations (NFE) are counted by a hook on the network, so adaptive dopri5 is counted as
it ran, not as planned.

The question (issue #5): at equal quality — W1M within its bootstrap error of the
200-NFE midpoint sampler — which sampler needs >= 3x fewer network evaluations?
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Sampler:
    """A sampler: a fixed-grid method with ``steps`` steps, or dopri5 with tolerances."""

    method: str
    steps: int | None = None
    rtol: float | None = None
    atol: float | None = None

    @property
    def name(self) -> str:
        if self.method == "dopri5":
            return f"dopri5 rtol={self.rtol:g} atol={self.atol:g}"
        return f"{self.method} {self.steps} steps"

    @classmethod
    def parse(cls, text: str) -> Sampler:
        """``midpoint:100``, ``rk4:10``, ``dopri5:1e-3`` (rtol = atol) or ``dopri5:1e-3:1e-4``."""
        parts = text.strip().split(":")
        try:
            if parts[0] == "dopri5" and len(parts) in (2, 3):
                rtol = float(parts[1])
                atol = float(parts[2]) if len(parts) == 3 else rtol
                if not (rtol > 0 and atol > 0):
                    raise ValueError
                return cls("dopri5", None, rtol, atol)
            if len(parts) == 2 and parts[0] != "dopri5":
                steps = int(parts[1])
                if steps < 1:
                    raise ValueError
                return cls(parts[0], steps)
        except ValueError:
            pass
        raise ValueError(
            f"sampler {text!r}: expected METHOD:STEPS (e.g. midpoint:100, rk4:10) or "
            "dopri5:RTOL[:ATOL] (e.g. dopri5:1e-3)"
        )


BASELINE = Sampler("midpoint", 100)  # the paper's: 100 midpoint steps, 200 NFE
DEFAULT_SAMPLERS = (
    BASELINE,
    Sampler("midpoint", 50),
    Sampler("midpoint", 25),
    Sampler("midpoint", 10),
    Sampler("euler", 100),
    Sampler("euler", 50),
    Sampler("euler", 20),
    Sampler("heun", 25),
    Sampler("heun", 10),
    Sampler("rk4", 16),
    Sampler("rk4", 10),
    Sampler("rk4", 5),
    Sampler("dopri5", None, 1e-2, 1e-2),
    Sampler("dopri5", None, 1e-3, 1e-3),
)


@dataclass
class SamplerResult:
    sampler: Sampler
    nfe: int
    seconds: float
    metrics: object  # hepgen.metrics.jets.JetMetrics
    rms_to_baseline: float  # RMS over jets of m_rel minus the baseline's m_rel (same noise)
    jets: object = None  # the generated hepgen.data.JetSample


class _NFECounter:
    """Counts forward calls of a module (one call = one batched network evaluation)."""

    def __init__(self, module):
        self.calls = 0
        self._handle = module.register_forward_hook(self._hook)

    def _hook(self, *_):
        self.calls += 1

    def remove(self):
        self._handle.remove()


def generate(model, sampler: Sampler, n: int, seed: int, batch_size: int = 1024):
    """(JetSample, NFE per batch, seconds) for ``n`` jets of ``model`` with ``sampler``."""
    import torch

    counter = _NFECounter(model.net)
    tolerances = {"rtol": sampler.rtol, "atol": sampler.atol} if sampler.method == "dopri5" else {}
    try:
        start = time.perf_counter()
        jets = model.sample(
            n,
            steps=sampler.steps or 1,
            method=sampler.method,
            batch_size=batch_size,
            generator=torch.Generator().manual_seed(seed),
            **tolerances,
        )
        seconds = time.perf_counter() - start
    finally:
        counter.remove()
    batches = -(-n // batch_size)
    # NFE per batch (what a user sees per jet batch); the hook counts every batch's calls.
    return jets, counter.calls / batches, seconds


def run_study(
    model,
    reference,
    samplers=DEFAULT_SAMPLERS,
    n: int = 5000,
    seed: int = 0,
    batch_size: int = 1024,
    full_metrics: bool = True,
    metric_seed: int = 0,
    batches: int = 5,
    progress: bool = True,
) -> list[SamplerResult]:
    """Sample ``model`` with every sampler and score each against ``reference``.

    W1M and W1P for every sampler; with ``full_metrics`` also W1EFP, FPD and KPD (the EFPs
    are the slow part: about a minute per sample of 5000 jets on this CPU).
    """
    from tqdm.auto import tqdm

    from hepgen.metrics.features.jets import substructure
    from hepgen.metrics.jets import jet_metrics

    samplers = list(samplers)
    if BASELINE not in samplers:
        samplers.insert(0, BASELINE)
    samplers.sort(key=lambda s: s != BASELINE)
    results: list[SamplerResult] = []
    base_mass = None
    for sampler in tqdm(samplers, desc="samplers", unit="sampler", disable=not progress):
        jets, nfe, seconds = generate(model, sampler, n, seed, batch_size)
        metrics = jet_metrics(
            jets, reference, batches=batches, efp=full_metrics, fpd_kpd=full_metrics, seed=metric_seed
        )
        # Same noise and jet features: how far each jet's relative mass moved from the
        # baseline's. The mass, not the particle slots: slots are sorted by pT_rel after
        # sampling, so two nearly equal particles may swap between samplers.
        mass = substructure(np.asarray(jets.particles, dtype=np.float64))["mass_rel"]
        if base_mass is None:
            base_mass = mass
        rms = float(np.sqrt(np.mean((mass - base_mass) ** 2)))
        results.append(SamplerResult(sampler, int(round(nfe)), seconds, metrics, rms, jets))
    return results


def equal_quality(result: SamplerResult, baseline: SamplerResult) -> bool:
    """W1M within the baseline's bootstrap error of the baseline's W1M (or better)."""
    return result.metrics["w1m"].value <= baseline.metrics["w1m"].value + baseline.metrics["w1m"].error


def markdown_table(results: list[SamplerResult], floor=None) -> str:
    """One row per sampler: NFE, time, W1M, W1P (and W1EFP, FPD, KPD where computed)."""
    from hepgen.metrics.jets import SCALES

    base = results[0]
    names = [k for k in ("w1m", "w1p", "w1efp", "fpd", "kpd") if k in base.metrics.metrics]
    head = {"w1m": "W1M ×10³", "w1p": "W1P ×10³", "w1efp": "W1EFP ×10⁵", "fpd": "FPD ×10⁴", "kpd": "KPD ×10⁴"}
    lines = [
        "| sampler | NFE | NFE saving | time [s] | "
        + " | ".join(head[k] for k in names)
        + " | RMS Δm_rel ×10³ to baseline | equal W1M |",
        "|---|---|---|---|" + "---|" * len(names) + "---|---|",
    ]
    rows = list(results)
    for r in rows:
        cells = []
        for k in names:
            m = r.metrics.metrics.get(k)
            cells.append("" if m is None else f"{m.value * SCALES[k]:.3f} ± {m.error * SCALES[k]:.3f}")
        same = "baseline" if r is base else ("yes" if equal_quality(r, base) else "no")
        lines.append(
            f"| {r.sampler.name} | {r.nfe} | {base.nfe / r.nfe:.1f}× | {r.seconds:.1f} | "
            + " | ".join(cells)
            + f" | {r.rms_to_baseline * 1e3:.2f} | {same} |"
        )
    if floor is not None:
        cells = []
        for k in names:
            m = floor.metrics.get(k)
            cells.append("" if m is None else f"{m.value * SCALES[k]:.3f} ± {m.error * SCALES[k]:.3f}")
        lines.append("| *Pythia vs Pythia (floor)* | – | – | – | " + " | ".join(cells) + " | – | – |")
    return "\n".join(lines)
