"""The interface every event generator implements, and the table that finds them.

A generator works on preprocessed event vectors (see :mod:`hepgen.models.events.vectors`):
``x`` [B, 17] float, the 5 + 4 n real components first and zeros after them, and
``n_jets`` [B] int64 in 1..3. Training, checkpoints, ensembles, generation and the CLI are
shared (train.py, checkpoint.py, generate.py, cli.py); a new architecture only provides

    # module hepgen.models.events.<name>  (e.g. hepgen.models.events.jetgpt)
    def build(config: EventModelConfig) -> EventGenerator: ...

where the returned ``nn.Module`` subclass of :class:`EventGenerator` implements

    loss(x, n_jets) -> 0-d tensor   # the batch mean of the training loss (e.g. -log p(x | n)),
                                    # WITHOUT the Bayesian KL: train.py adds KL / N_train
    sample(n_jets, generator=None) -> [B, 17] tensor  # padded components exactly 0

and builds its layers with :func:`hepgen.nn.bayesian.linear` (``bayesian=config.bayesian``,
``prior_std``, ``init_log_var``) so that ``--bayesian`` and ``--ensemble`` work unchanged.
Architecture-specific settings go in ``config.options`` (a dict saved in the checkpoint;
``hepgen train events --option KEY=VALUE``). Registering a name is one line in MODEL_MODULES.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from hepgen.models.events.config import EventModelConfig
from hepgen.models.events.vectors import MAX_COMPONENTS

# model name -> module with build(config)
MODEL_MODULES = {
    "jetgpt": "hepgen.models.events.jetgpt",
    "ddpm": "hepgen.models.events.ddpm",
    "cfm": "hepgen.models.events.cfm",
    "inn": "hepgen.models.events.inn",
}


class EventGenerator(nn.Module):
    """Base class; see the module docstring for the contract."""

    def __init__(self, config: EventModelConfig):
        super().__init__()
        self.config = config

    def loss(self, x: torch.Tensor, n_jets: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def sample(self, n_jets: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        raise NotImplementedError

    def _device(self) -> torch.device:
        return next(self.parameters()).device


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
        raise RuntimeError(f"model {config.model!r} is not available in this build ({module_name} is missing)") \
            from None
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
