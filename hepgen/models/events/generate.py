"""The older ``generate_events(model, preprocessing, n, ensemble, ...)``, kept for one release.

Use ``model.sample(n, seed=..., member=k)`` (the preprocessing is the model's own), one call
per ensemble member, and ``EventSample.concatenate``; this function keeps the numbers it
always made (one numpy and one torch stream seeded ``seed`` for the whole run)."""

from __future__ import annotations

import numpy as np
import torch

from hepgen.data.events import EventSample
from hepgen.models.events.base import EventGenerator
from hepgen.models.events.vectors import EventPreprocessing
from hepgen.nn.bayesian import is_bayesian, weight_draws


def generate_events(
    model: EventGenerator,
    preprocessing: EventPreprocessing,
    n: int,
    ensemble: int = 1,
    batch_size: int = 10_000,
    seed: int = 0,
    progress=None,
) -> tuple[EventSample, np.ndarray]:
    """(events, member [ensemble * n]): ``n`` events from each of ``ensemble`` weight draws
    (one draw = one network of the Bayesian ensemble; ``ensemble=1`` on a Bayesian model is
    one draw, not the mean weights). ``progress(iterable, name)`` wraps the chunk loop.
    Deprecated: see the module docstring."""
    from hepgen.models.base import deprecated

    deprecated(
        "hepgen.models.events.generate.generate_events(model, preprocessing, n, ensemble)",
        "model.sample(n, seed=..., member=k) per ensemble member",
    )
    for name, value in (("n", n), ("ensemble", ensemble), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    bayesian = is_bayesian(model)
    if ensemble > 1 and not bayesian:
        raise ValueError(f"ensemble={ensemble} needs a Bayesian model (train with --bayesian)")
    rng = np.random.default_rng(seed)
    generator = torch.Generator().manual_seed(seed)
    chunks = [(m, i, min(batch_size, n - i)) for m in range(ensemble) for i in range(0, n, batch_size)]
    it = chunks if progress is None else progress(chunks, "generate")
    parts, members = [], []
    draws = iter(weight_draws(model, ensemble, seed=seed)) if bayesian else None
    current = -1
    try:
        with torch.no_grad():
            for member, _, size in it:
                if draws is not None and member != current:
                    current = next(draws)
                n_jets = preprocessing.draw_multiplicities(size, rng)
                x = model.sample_vectors(n_jets, generator=generator)
                parts.append(preprocessing.decode(x, n_jets, rng))
                members.append(np.full(size, member))
    finally:
        if draws is not None:
            draws.close()  # restores the mean weights
    sample = EventSample(
        *(np.concatenate([getattr(p, k) for p in parts]) for k in ("muons", "jets", "n_jets")),
        {"clipped_pt": sum(int(p.attrs.get("clipped_pt", 0)) for p in parts)},
    )
    return sample, np.concatenate(members)
