"""JetGPT suite: sampling events with the KV cache against re-running the whole prefix.

Both sides are the same JetGPT (hepgen.models.events.jetgpt) with the same weights and the
same random numbers, and must give the same events (checked on a subset before timing); the baseline
re-runs causal attention over every token generated so far at each of the 5 + 4 n steps,
which is what sampling without a cache costs. The weights are a fresh initialisation:
sampling time does not depend on what the network learned. Cases: the Z+jets mix of jet
counts (fractions as in the Pythia sample of docs/jetgpt.md) and 3-jet events only (17
tokens); the table's ns/elem column is per event.
"""

from __future__ import annotations

import torch

from hepgen.bench.progress import CaseCounter, CaseProgress
from hepgen.bench.report import Row
from hepgen.bench.timing import Timing, time_call

# Width, blocks, heads, mixture components: the model trained in docs/jetgpt.md.
SIZE = dict(hidden=64, layers=3, heads=4, components=16)
MIX = (0.75, 0.20, 0.05)  # 1, 2, 3 jets (rounded, as in the Pythia Z+jets sample of docs/jetgpt.md)


def _model(device: str):
    from hepgen.models.events import EventModelConfig, build_model

    config = EventModelConfig(
        model="jetgpt",
        hidden=SIZE["hidden"],
        layers=SIZE["layers"],
        options={"heads": SIZE["heads"], "components": SIZE["components"]},
    )
    torch.manual_seed(0)
    return build_model(config).to(device).eval()


def _jet_counts(n: int, mix, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.multinomial(torch.tensor(mix, dtype=torch.float64), n, replacement=True, generator=g) + 1


def _time_only(fn, device, warmup, min_runs, min_time_s) -> Timing:
    """time_call without the peak-memory pass: in --quick runs the profiler that measures
    peak memory on the CPU costs ten times the sampling it watches."""
    import statistics
    import time

    for _ in range(warmup):
        fn()
    times = []
    while len(times) < min_runs:
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), min(times), len(times), None)


def run(
    device: str = "cpu", quick: bool = False, min_time_s: float = 0.5, progress: CaseProgress | None = None
) -> list[Row]:
    model = _model(device)
    # Full: 2 x 10^4 mixed / 5 x 10^3 3-jet events (re-running the prefix for 10^5 events
    # takes ~10 minutes on one busy CPU core); the per-event column scales to any count
    # (sampling is linear in it).
    batch = 100 if quick else 10_000
    rows = []
    size = ", ".join(f"{k} {v}" for k, v in SIZE.items())
    cases = (("Z+jets mix", MIX, 200 if quick else 20_000), ("3 jets", (0.0, 0.0, 1.0), 200 if quick else 5_000))
    counter = CaseCounter(progress, len(cases))
    for label, mix, n_events in cases:
        counter.start(f"{n_events} events ({label})")
        n_jets = _jet_counts(n_events, mix)

        def sample(use_cache, n_jets=n_jets):
            return model.sample_vectors(n_jets, torch.Generator().manual_seed(1), batch_size=batch, use_cache=use_cache)

        # The two must give the same events before their times mean anything (on a subset:
        # re-running the prefix for all of them is what the timing is for).
        check = n_jets[:500]
        a = model.sample_vectors(check, torch.Generator().manual_seed(1), batch_size=batch, use_cache=True)
        b = model.sample_vectors(check, torch.Generator().manual_seed(1), batch_size=batch, use_cache=False)
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
        # Each call is seconds to minutes long: no warm-up beyond the check above, one run
        # (quick) or two (the median of two is their mean).
        timing = dict(warmup=0, min_runs=1 if quick else 2, min_time_s=0.0 if quick else min_time_s)
        timer = _time_only if quick else time_call
        t_ours = timer(lambda: sample(True), device, **timing)
        t_base = timer(lambda: sample(False), device, **timing)
        case = f"{n_events} events ({label}), batch {batch}; {size}"
        rows.append(
            Row(
                "jetgpt",
                case,
                "sampling",
                device,
                "hepgen KV-cache decode",
                t_ours.median_ms,
                "re-run the prefix every step",
                t_base.median_ms,
                None if t_ours.peak_bytes is None else t_ours.peak_bytes / 2**20,
                None if t_base.peak_bytes is None else t_base.peak_bytes / 2**20,
                elements=n_events,
            )
        )
    return rows
