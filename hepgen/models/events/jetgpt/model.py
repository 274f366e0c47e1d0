"""JetGPT: a GPT over the phase-space components of an event, every conditional a Gaussian mixture.

An event with n jets is the sequence of its 5 + 4n preprocessed components in the paper's
order (mu1 pT, eta; mu2 pT, eta, phi; per jet pT, eta, phi, m; see
hepgen.models.events.vectors). Token t (t = 0 .. D-1) carries the previous component
x_{t-1} (a linear embedding of the value; token 0 a learned start vector) plus a learned
position embedding and an embedding of the jet count, so that one network serves 1, 2 and
3 jets. Pre-LN blocks with causal attention (hepgen.nn.TransformerBlock on the
masked_attention op) and a final LayerNorm feed a head that gives token t the mixture
p(x_t | x_<t, n): loss = -mean_events sum_t log p(x_t | x_<t, n).

Training batches mix multiplicities: shorter events are padded to the batch's longest and
the padding is masked (key-padding mask in attention, left out of the loss, and zeroed on
input so that whatever the padding holds cannot reach a value or a gradient). Sampling
(:meth:`JetGPT.sample_vectors`) groups events by jet count and runs one decode step per component
with a KV cache per block; ``use_cache=False`` re-runs the whole prefix at every step
instead (the reference the cache is tested against, and the baseline of its benchmark).

Bayesian version (config.bayesian): the head and the MLPs of the last ``bayesian_blocks``
blocks are hepgen.nn.bayesian.BayesianLinear layers (the shared trainer adds KL / N_train);
an ensemble member is a fixed weight draw.

Physical constraints: the shared preprocessing keeps jet pT above 20 GeV and |phi| < pi
(artanh(phi / pi): phi is treated as bounded, not periodic); pT ordering is not enforced
(hepgen.models.events.jetgpt.ordering counts and repairs violations).
"""

from __future__ import annotations

import torch
from torch import nn

from hepgen.models.events.base import EventGenerator, check_batch
from hepgen.models.events.config import EventModelConfig
from hepgen.models.events.jetgpt import gmm
from hepgen.models.events.jetgpt.options import JetGPTOptions
from hepgen.models.events.vectors import MAX_COMPONENTS, dimension
from hepgen.nn.attention import TransformerBlock
from hepgen.nn.bayesian import BayesianLinear, to_bayesian

MAX_JETS = 3


class JetGPT(EventGenerator):
    def __init__(self, config: EventModelConfig):
        super().__init__(config)
        self.options = o = JetGPTOptions.from_config(config)
        d = o.dim
        self.value_embedding = nn.Linear(1, d)
        self.start = nn.Parameter(torch.zeros(d))
        self.position = nn.Parameter(0.02 * torch.randn(MAX_COMPONENTS, d))
        self.multiplicity = nn.Embedding(MAX_JETS, d)
        nn.init.normal_(self.multiplicity.weight, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(d, o.heads) for _ in range(o.layers))
        self.norm = nn.LayerNorm(d)
        out = 3 * o.components
        if config.bayesian:
            for block in self.blocks[o.layers - o.bayesian_blocks :]:
                to_bayesian(block.mlp, prior_std=config.prior_std, init_log_var=config.init_log_var)
            self.head = BayesianLinear(d, out, prior_std=config.prior_std, init_log_var=config.init_log_var)
        else:
            self.head = nn.Linear(d, out)

    # ---- pieces ----------------------------------------------------------------------------

    def _tokens(self, x_prev: torch.Tensor, n_jets: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Tokens at positions start .. start+L-1 from x_prev [B, L] (the component before each
        position; position 0 takes the start vector and ignores its x_prev entry)."""
        B, L = x_prev.shape
        tokens = self.value_embedding(x_prev.unsqueeze(-1))
        if start == 0:
            tokens = torch.cat([self.start.expand(B, 1, -1), tokens[:, 1:]], dim=1)
        return tokens + self.position[start : start + L] + self.multiplicity(n_jets - 1).unsqueeze(1)

    def _head(self, h: torch.Tensor):
        return gmm.split_head(self.head(self.norm(h)), self.options.min_log_sigma)

    # ---- likelihood ------------------------------------------------------------------------

    def conditionals(self, x: torch.Tensor, n_jets: torch.Tensor):
        """((log weights, means, log sigmas) of p(x_t | x_<t), each [B, L, K]; the mask [B, L] of
        real components; x with its padding zeroed) for x [B, L <= 17], padded beyond each
        event's 5 + 4 n components (the padding may hold anything, NaN included)."""
        if x.dim() != 2 or not 1 <= x.shape[1] <= MAX_COMPONENTS or not x.is_floating_point():
            raise ValueError(
                f"x: expected a float tensor [batch, L <= {MAX_COMPONENTS}], got {x.dtype} {tuple(x.shape)}"
            )
        check_batch(None, n_jets)
        if len(n_jets) != len(x):
            raise ValueError(f"n_jets: expected {len(x)} entries (one per row of x), got {len(n_jets)}")
        L = x.shape[1]
        mask = torch.arange(L, device=x.device) < dimension(n_jets).unsqueeze(1)
        x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
        x_prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        h = self._tokens(x_prev, n_jets)
        key_padding = None if bool(mask.all()) else mask
        for block in self.blocks:
            h = block(h, key_padding)
        return self._head(h), mask, x

    def log_prob(self, x: torch.Tensor, n_jets: torch.Tensor) -> torch.Tensor:
        """log p(x | n) [B] in the preprocessed space: the conditionals' log densities summed
        over each event's real components (x [B, L], L >= the longest event's 5 + 4 n)."""
        if len(n_jets) and x.shape[1] < int(dimension(n_jets).max()):
            raise ValueError(f"x: {x.shape[1]} columns do not hold events with up to {int(n_jets.max())} jets")
        (log_w, mu, log_s), mask, x = self.conditionals(x, n_jets)
        per_token = gmm.log_prob(x, log_w, mu, log_s)
        return torch.where(mask, per_token, torch.zeros((), dtype=per_token.dtype, device=x.device)).sum(1)

    def loss(self, x: torch.Tensor, n_jets: torch.Tensor) -> torch.Tensor:
        """-mean log p(x | n) over the batch (x [B, 17], the shared trainer's layout). The batch
        runs only as long as its longest event: the all-padding tail columns are cut."""
        check_batch(x, n_jets)
        longest = int(dimension(n_jets).max()) if len(n_jets) else 1
        return -self.log_prob(x[:, :longest], n_jets).mean()

    # ---- sampling --------------------------------------------------------------------------

    @torch.no_grad()
    def sample_sequences(
        self, n_jets: int, uniform: torch.Tensor, normal: torch.Tensor, use_cache: bool = True
    ) -> torch.Tensor:
        """x [B, 5 + 4 n_jets] for B events with ``n_jets`` jets, one component per step,
        driven by the given uniform and normal numbers [B, >= 5 + 4 n_jets] (the mixture
        component and the Gaussian draw of each step). With ``use_cache`` each step is one
        decode step per block on a KV cache; without, every step re-runs the whole prefix;
        both give the same x up to floating-point rounding."""
        D = dimension(n_jets)
        B = uniform.shape[0]
        if uniform.dim() != 2 or uniform.shape[1] < D or normal.shape != uniform.shape:
            raise ValueError(
                f"uniform and normal: expected one shape [B, >= {D}], got "
                f"{tuple(uniform.shape)} and {tuple(normal.shape)}"
            )
        p = self.start
        n = torch.full((B,), n_jets, dtype=torch.int64, device=p.device)
        x = torch.zeros(B, D, dtype=p.dtype, device=p.device)
        uniform, normal = uniform.to(p), normal.to(p)
        caches = [block.new_cache(B, D) for block in self.blocks] if use_cache else None
        # One jet count per call: position + multiplicity embeddings are one [D, dim] table.
        offsets = self.position[:D] + self.multiplicity.weight[n_jets - 1]
        for t in range(D):
            if use_cache:
                if t == 0:
                    h = (self.start + offsets[0]).expand(B, 1, -1)
                else:
                    h = self.value_embedding(x[:, t - 1 : t].unsqueeze(-1)) + offsets[t]
                for block, cache in zip(self.blocks, caches):
                    h = block(h, cache=cache)
            else:
                h = self._tokens(torch.cat([x[:, :1], x[:, :t]], dim=1), n)
                for block in self.blocks:
                    h = block(h)
                h = h[:, -1:]
            log_w, mu, log_s = self._head(h[:, 0])
            x[:, t] = gmm.sample(log_w, mu, log_s, uniform[:, t], normal[:, t])
        return x

    def vector_settings(self, use_cache: bool = True) -> dict:
        """``use_cache``: decode with the KV cache (default) or re-run the prefix (the reference)."""
        if not isinstance(use_cache, bool):
            raise ValueError(f"use_cache must be a bool, got {use_cache!r}")
        return {"use_cache": use_cache}

    @torch.no_grad()
    def sample_vectors(
        self,
        n_jets: torch.Tensor,
        generator: torch.Generator | None = None,
        *,
        use_cache: bool = True,
        batch_size: int = 10_000,
        progress=None,
    ) -> torch.Tensor:
        """Preprocessed events x [B, 17] (exactly 0 beyond each event's 5 + 4 n components)
        for the jet counts n_jets [B]. The random numbers of every event are drawn up front
        (on the CPU, from ``generator`` if given), so the events do not depend on batch_size,
        use_cache or the device beyond rounding. Events are grouped by jet count: each batch
        runs exactly its 5 + 4 n steps. ``progress(iterable)`` may wrap the batch loop."""
        check_batch(None, n_jets)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        N = len(n_jets)
        uniform = torch.rand(N, MAX_COMPONENTS, generator=generator, dtype=torch.float64)
        normal = torch.randn(N, MAX_COMPONENTS, generator=generator, dtype=torch.float64)
        p = self.start
        x = torch.zeros(N, MAX_COMPONENTS, dtype=p.dtype, device=p.device)
        n_cpu = n_jets.cpu()
        jobs = []
        for n in range(1, MAX_JETS + 1):
            rows = torch.nonzero(n_cpu == n).squeeze(1)
            jobs += [(n, rows[i : i + batch_size]) for i in range(0, len(rows), batch_size)]
        was_training = self.training
        self.eval()
        try:
            for n, rows in progress(jobs) if progress else jobs:
                x[rows.to(p.device), : dimension(n)] = self.sample_sequences(
                    n, uniform[rows].to(p.dtype), normal[rows].to(p.dtype), use_cache=use_cache
                )
        finally:
            self.train(was_training)
        return x


def build(config: EventModelConfig) -> JetGPT:
    return JetGPT(config)
