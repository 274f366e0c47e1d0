"""The event generators' contract, and the table that finds them.

Users see the contract of :mod:`hepgen.models.base`: ``model.sample(n, condition=n_jets,
seed=..., member=k, ...)`` returns a :class:`hepgen.data.EventSample`; the fitted
preprocessing (:class:`hepgen.models.events.vectors.EventPreprocessing`: per-multiplicity
standardisation, multiplicity fractions, jet threshold) is ``model.preprocessing``, saved in
the checkpoint. ``condition``: optional jet multiplicities [N] in 1..3 (default: drawn from
the training fractions). ``member``: for a Bayesian model, which weight draw of the
ensemble (default 0; draw k is the (k+1)-th draw from a generator seeded ``weight_seed``,
default 0, so member k is the same network in every call); its events carry ``members``.

An architecture works on preprocessed event vectors (see :mod:`hepgen.models.events.vectors`):
``x`` [B, 17] float, the 5 + 4 n real components first and zeros after them, and
``n_jets`` [B] int64 in 1..3. Training, checkpoints, ensembles, generation and the CLI are
shared (train.py, checkpoint.py, cli.py); a new architecture only provides

    # module hepgen.models.events.<name>  (e.g. hepgen.models.events.jetgpt)
    def build(config: EventModelConfig) -> EventGenerator: ...

where the returned subclass of :class:`EventGenerator` implements

    loss(x, n_jets) -> 0-d tensor   # the batch mean of the training loss (e.g. -log p(x | n)),
                                    # WITHOUT the Bayesian KL: train.py adds KL / N_train
    sample_vectors(n_jets, generator=None, **settings) -> [B, 17] tensor  # padded components 0
    vector_settings(**settings) -> dict   # its sampler settings validated, defaults filled in

and builds its layers with :func:`hepgen.nn.bayesian.linear` (``bayesian=config.bayesian``,
``prior_std``, ``init_log_var``) so that ``--bayesian`` and ``--ensemble`` work unchanged.
Architecture-specific settings go in ``config.options`` (a dict saved in the checkpoint;
``hepgen train events --option KEY=VALUE``). Registering a name is one line in MODEL_MODULES.
"""

from __future__ import annotations

import contextlib
import importlib

import numpy as np
import torch

from hepgen.models.base import Generator, deprecated, positive_int
from hepgen.models.events.config import EventModelConfig
from hepgen.models.events.vectors import MAX_COMPONENTS, EventPreprocessing

# model name -> module with build(config)
MODEL_MODULES = {
    "jetgpt": "hepgen.models.events.jetgpt",
    "ddpm": "hepgen.models.events.ddpm",
    "cfm": "hepgen.models.events.cfm",
    "inn": "hepgen.models.events.inn",
}


class EventGenerator(Generator):
    """Base class; see the module docstring for the contract."""

    kind = "events"
    checkpoint_format = "hepgen.events"
    checkpoint_version = 1
    default_batch_size = 10_000
    condition_help = "jet multiplicities [N] in 1..3"

    def __init__(self, config: EventModelConfig):
        super().__init__()
        self.config = config
        self.preprocessing: EventPreprocessing | None = None  # set by training / the checkpoint

    def loss(self, x: torch.Tensor, n_jets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample_vectors(
        self, n_jets: torch.Tensor, generator: torch.Generator | None = None, **settings
    ) -> torch.Tensor:
        raise NotImplementedError

    def vector_settings(self, **settings) -> dict:
        if settings:
            raise TypeError(f"{type(self).__name__}.sample takes no sampler setting {sorted(settings)}")
        return {}

    # ---- the contract (hepgen.models.base) ------------------------------------------------
    def _fitted(self) -> EventPreprocessing:
        if self.preprocessing is None:
            raise RuntimeError(
                f"this {self.config.model} model has no fitted preprocessing (train it, or load it from a checkpoint)"
            )
        return self.preprocessing

    def sampler_settings(self, member: int | None = None, weight_seed: int = 0, **settings) -> dict:
        from hepgen.nn.bayesian import is_bayesian

        bayesian = is_bayesian(self)
        if member is not None and not bayesian:
            raise ValueError(f"member={member!r}: this model is not Bayesian (train with --bayesian)")
        if bayesian:
            member = 0 if member is None else member
            if not isinstance(member, (int, np.integer)) or isinstance(member, bool) or member < 0:
                raise ValueError(f"member must be a non-negative int, got {member!r}")
            if not isinstance(weight_seed, (int, np.integer)) or isinstance(weight_seed, bool) or weight_seed < 0:
                raise ValueError(f"weight_seed must be a non-negative int, got {weight_seed!r}")
        # Flat, so that the result passed back in (sample(n, **model.sampler_settings(...)))
        # is the same settings.
        return {
            "member": None if member is None else int(member),
            "weight_seed": int(weight_seed),
            **self.vector_settings(**settings),
        }

    def check_condition(self, n, condition):
        fractions = self._fitted().fractions
        if condition is None:
            return positive_int("n", n), None
        c = np.asarray(condition.cpu() if torch.is_tensor(condition) else condition)
        if c.ndim != 1 or len(c) == 0 or not np.issubdtype(c.dtype, np.integer):
            raise ValueError(
                f"condition: expected jet multiplicities, a 1-D integer array [N], got {c.dtype} {c.shape}"
            )
        trained = [k + 1 for k in range(len(fractions)) if fractions[k] > 0]
        if not np.isin(c, trained).all():
            raise ValueError(
                f"condition: jet multiplicities must be among {trained} (those trained), "
                f"got {sorted(set(c.tolist()) - set(trained))}"
            )
        if n is not None and n != len(c):
            raise ValueError(f"n={n!r} but condition holds {len(c)} multiplicities; pass n=None or n={len(c)}")
        return len(c), torch.as_tensor(c.astype(np.int64))

    @contextlib.contextmanager
    def sampling_context(self, settings):
        from hepgen.nn.bayesian import resample, use_mean

        if settings["member"] is None:
            yield
            return
        draws = torch.Generator().manual_seed(settings["weight_seed"])
        for _ in range(settings["member"] + 1):  # member k: the (k+1)-th draw, as weight_draws makes them
            resample(self, draws)
        try:
            yield
        finally:
            use_mean(self)

    def generate_chunk(self, n, condition, generator, device, batch_size, settings):
        preprocessing = self._fitted()
        # The chunk's numpy draws (multiplicities, the leading muon's azimuth) from its generator.
        seed = torch.randint(0, 2**62, (1,), generator=generator).item()
        rng = np.random.default_rng(seed)
        n_jets = preprocessing.draw_multiplicities(n, rng) if condition is None else condition
        vectors = {k: v for k, v in settings.items() if k not in ("member", "weight_seed")}
        x = torch.cat(
            [
                self.sample_vectors(n_jets[i : i + batch_size], generator, **vectors).cpu()
                for i in range(0, n, batch_size)
            ]
        )
        sample = preprocessing.decode(x, n_jets, rng)
        if settings["member"] is not None:
            sample.members = np.full(n, settings["member"], dtype=np.int64)
        return sample

    def checkpoint_entries(self) -> dict:
        return {"preprocessing": self._fitted().state()}

    def load_entries(self, entries: dict) -> None:
        self.preprocessing = EventPreprocessing.from_state(entries["preprocessing"])

    @classmethod
    def build(cls, config_dict: dict) -> EventGenerator:
        return build_model(EventModelConfig.from_dict(config_dict))

    def sample(self, n=None, *legacy, **kwargs):
        """Events as a :class:`hepgen.data.EventSample` (the contract: :mod:`hepgen.models.base`).

        Deprecated: ``sample(n_jets, generator=None, ...)`` with a tensor of jet counts returns
        the preprocessed vectors [B, 17], as :meth:`sample_vectors` does."""
        if torch.is_tensor(n):
            deprecated(
                f"{type(self).__name__}.sample(n_jets) returning preprocessed vectors",
                f"{type(self).__name__}.sample_vectors(n_jets) (or sample(n) for events)",
            )
            return self.sample_vectors(n, *legacy, **kwargs)
        if legacy:
            raise TypeError(f"{type(self).__name__}.sample takes n and keyword arguments only")
        return super().sample(n, **kwargs)


def check_batch(x: torch.Tensor | None, n_jets: torch.Tensor) -> None:
    """The contract's input checks (ValueError naming the argument)."""
    if n_jets.dim() != 1 or n_jets.dtype not in (torch.int64, torch.int32):
        raise ValueError(f"n_jets: expected a 1-D integer tensor, got {n_jets.dtype} {tuple(n_jets.shape)}")
    if len(n_jets) and (int(n_jets.min()) < 1 or int(n_jets.max()) > 3):
        raise ValueError("n_jets: expected values 1, 2 or 3")
    if x is not None and (x.dim() != 2 or x.shape != (len(n_jets), MAX_COMPONENTS)):
        raise ValueError(f"x: expected shape ({len(n_jets)}, {MAX_COMPONENTS}), got {tuple(x.shape)}")


def build_model(config: EventModelConfig) -> EventGenerator:
    """The generator named by ``config.model``; a clear error when its module is not built."""
    module_name = MODEL_MODULES[config.model]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        raise RuntimeError(
            f"model {config.model!r} is not available in this build ({module_name} is missing)"
        ) from None
    model = module.build(config)
    if not isinstance(model, EventGenerator):
        raise TypeError(f"{module_name}.build returned {type(model).__name__}, expected an EventGenerator")
    return model


def gaussian_noise(shape, like: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """N(0, 1) noise of ``shape`` on ``like``'s device and dtype; a generator (CPU) makes it
    reproducible on any device."""
    if generator is None:
        return torch.randn(shape, dtype=like.dtype, device=like.device)
    return torch.randn(shape, generator=generator, dtype=like.dtype).to(like.device)
