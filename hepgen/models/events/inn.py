"""The baseline INN: rational-quadratic spline coupling flows (hepgen.flows), trained by
maximum likelihood on the preprocessed event vectors.

One flow per jet multiplicity (9, 13, 17 dimensions) rather than one conditional flow on
padded vectors: a flow needs a density on every input component, and zero padding has
none. The loss is -log p(x | n) per event. The Bayesian INN makes the coupling
conditioners' linear layers mean-field Gaussian (:func:`hepgen.nn.bayesian.to_bayesian`);
the LU-linear layers stay deterministic (their weights are not an nn.Linear and carry few
parameters).
"""

from __future__ import annotations

import torch
from torch import nn

from hepgen.flows import coupling_spline_flow
from hepgen.models.events.base import EventGenerator, check_batch, gaussian_noise
from hepgen.models.events.config import EventModelConfig
from hepgen.models.events.vectors import MAX_COMPONENTS, dimension
from hepgen.nn.bayesian import to_bayesian


class INN(EventGenerator):
    def __init__(self, config: EventModelConfig):
        super().__init__(config)
        # The permutations are buffers (saved); a fixed seed makes a fresh build reproducible.
        generator = torch.Generator().manual_seed(0)
        self.flows = nn.ModuleList(
            [
                coupling_spline_flow(
                    dimension(n),
                    None,
                    num_layers=config.layers,
                    hidden_features=config.hidden,
                    num_blocks=config.flow_blocks,
                    num_bins=config.flow_bins,
                    tail_bound=config.flow_tail_bound,
                    generator=generator,
                )
                for n in (1, 2, 3)
            ]
        )
        if config.bayesian:
            to_bayesian(self.flows, prior_std=config.prior_std, init_log_var=config.init_log_var)

    def loss(self, x, n_jets):
        check_batch(x, n_jets)
        total = x.new_zeros(())
        for n in (1, 2, 3):
            rows = n_jets == n
            if rows.any():
                total = total - self.flows[n - 1].log_prob(x[rows, : dimension(n)]).sum()
        return total / len(x)

    @torch.no_grad()
    def sample_vectors(self, n_jets, generator=None):
        check_batch(None, n_jets)
        p = next(self.parameters())
        n_jets = n_jets.to(p.device)
        out = p.new_zeros(len(n_jets), MAX_COMPONENTS)
        for n in (1, 2, 3):
            rows = torch.nonzero(n_jets == n).flatten()
            if len(rows):
                flow = self.flows[n - 1]
                z = gaussian_noise((len(rows), dimension(n)), p, generator)
                out[rows, : dimension(n)] = flow.transform.inverse(z, None)[0]
        return out


def build(config: EventModelConfig) -> INN:
    return INN(config)
