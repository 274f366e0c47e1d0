"""JetGPT: a GPT over the phase-space components of an event, every conditional a Gaussian mixture.

Token t (t = 0 .. D-1, D = 5 + 4 n_jets) carries the previous component x_{t-1} (a linear
embedding of the value; token 0 a learned start vector) plus a learned position embedding
and an embedding of the jet count, so that one network serves 1, 2 and 3 jets. Pre-LN
blocks with causal attention (hepgen.nn.TransformerBlock on the masked_attention op) and a
final LayerNorm feed a head giving token t the mixture p(x_t | x_<t, n_jets).

Training batches mix multiplicities: shorter events are padded to the batch's longest and
the padding is masked (key-padding mask in attention, excluded from the loss, and zeroed on
input so that whatever the padding holds cannot reach a gradient). Sampling runs one
decode step per component with a KV cache per block (:meth:`JetGPT.sample_sequences`),
or, as the reference it is tested against, re-runs the whole prefix at every step.

Bayesian version (config.bayesian): the head and the MLPs of the last ``bayesian_blocks``
blocks are hepgen.nn.bayesian.BayesianLinear layers; add kl_divergence(model) / N_train to
the loss; an ensemble is a set of fixed weight draws (hepgen.nn.bayesian.weight_draws).
"""

from __future__ import annotations

import torch
from torch import nn

from hepgen.models.events.jetgpt import gmm
from hepgen.models.events.jetgpt.config import JetGPTConfig
from hepgen.models.events.jetgpt.preprocessing import MAX_LENGTH, EventCoding, sequence_length
from hepgen.nn.attention import TransformerBlock
from hepgen.nn.bayesian import BayesianLinear, to_bayesian


class JetGPT(nn.Module):
    def __init__(self, config: JetGPTConfig | None = None):
        super().__init__()
        self.config = config = config or JetGPTConfig()
        d = config.dim
        self.coding = EventCoding(config.jet_pt_min, config.pt_offset, config.mass_offset)
        self.value_embedding = nn.Linear(1, d)
        self.start = nn.Parameter(torch.zeros(d))
        self.position = nn.Parameter(0.02 * torch.randn(MAX_LENGTH, d))
        self.multiplicity = nn.Embedding(config.max_jets, d)
        nn.init.normal_(self.multiplicity.weight, std=0.02)
        self.blocks = nn.ModuleList(TransformerBlock(d, config.heads) for _ in range(config.layers))
        self.norm = nn.LayerNorm(d)
        out = 3 * config.components
        if config.bayesian:
            for block in self.blocks[config.layers - config.bayesian_blocks:]:
                to_bayesian(block.mlp, prior_std=config.prior_std, init_log_var=config.init_log_var)
            self.head = BayesianLinear(d, out, prior_std=config.prior_std, init_log_var=config.init_log_var)
        else:
            self.head = nn.Linear(d, out)

    # ---- inputs ----------------------------------------------------------------------------

    def _check(self, x: torch.Tensor, n_jets: torch.Tensor) -> None:
        if x.dim() != 2 or not 1 <= x.shape[1] <= MAX_LENGTH or not x.is_floating_point():
            raise ValueError(f"x must be a float tensor [batch, L <= {MAX_LENGTH}], got {x.dtype} {tuple(x.shape)}")
        if n_jets.shape != x.shape[:1] or n_jets.is_floating_point() or n_jets.dtype == torch.bool:
            raise ValueError(f"n_jets must be an integer tensor [{x.shape[0]}], got {n_jets.dtype} {tuple(n_jets.shape)}")
        if n_jets.numel() and (int(n_jets.min()) < 1 or int(n_jets.max()) > self.config.max_jets):
            raise ValueError(f"n_jets must lie in 1..{self.config.max_jets}")

    def _tokens(self, x_prev: torch.Tensor, n_jets: torch.Tensor, start: int = 0) -> torch.Tensor:
        """Tokens at positions start .. start+L-1 from x_prev [B, L] (the components before
        each; position 0 takes the start vector and ignores its x_prev entry)."""
        B, L = x_prev.shape
        tokens = self.value_embedding(x_prev.unsqueeze(-1))
        if start == 0:
            tokens = torch.cat([self.start.expand(B, 1, -1), tokens[:, 1:]], dim=1)
        return tokens + self.position[start:start + L] + self.multiplicity(n_jets - 1).unsqueeze(1)

    def _head(self, h: torch.Tensor):
        return gmm.split_head(self.head(self.norm(h)), self.config.min_log_sigma)

    # ---- likelihood ------------------------------------------------------------------------

    def conditionals(self, x: torch.Tensor, n_jets: torch.Tensor):
        """Mixture parameters of p(x_t | x_<t) for t < L, each [B, L, K], for x [B, L] padded
        beyond each event's 5 + 4 n_jets components (padding may hold anything), and the
        mask [B, L] of real components."""
        self._check(x, n_jets)
        B, L = x.shape
        mask = torch.arange(L, device=x.device) < sequence_length(n_jets).unsqueeze(1)
        x = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
        x_prev = torch.cat([torch.zeros_like(x[:, :1]), x[:, :-1]], dim=1)
        h = self._tokens(x_prev, n_jets)
        key_padding = None if bool(mask.all()) else mask
        for block in self.blocks:
            h = block(h, key_padding)
        return (*self._head(h), mask), x

    def log_prob(self, x: torch.Tensor, n_jets: torch.Tensor) -> torch.Tensor:
        """log p(x | n_jets) [B] in the preprocessed space: the sum of the conditionals' log
        densities over each event's real components."""
        (log_w, mu, log_s, mask), x = self.conditionals(x, n_jets)
        per_token = gmm.log_prob(x, log_w, mu, log_s)
        return torch.where(mask, per_token, torch.zeros((), dtype=per_token.dtype, device=x.device)).sum(1)

    # ---- sampling --------------------------------------------------------------------------

    @torch.no_grad()
    def sample_sequences(self, n_jets: int, uniform: torch.Tensor, normal: torch.Tensor,
                         use_cache: bool = True) -> torch.Tensor:
        """x [B, 5 + 4 n_jets] for B events with ``n_jets`` jets, one component per step,
        driven by the given random numbers uniform, normal [B, >= 5 + 4 n_jets] (component
        choice and Gaussian draw of each step). With ``use_cache`` each step is one decode
        step per block on a KV cache; without, every step re-runs the whole prefix (the
        reference: both give the same x up to floating-point rounding)."""
        D = sequence_length(n_jets)
        B = uniform.shape[0]
        if uniform.dim() != 2 or uniform.shape[1] < D or normal.shape != uniform.shape:
            raise ValueError(f"uniform and normal must be [B, >= {D}] of one shape, got "
                             f"{tuple(uniform.shape)} and {tuple(normal.shape)}")
        p = self.start
        n = torch.full((B,), n_jets, dtype=torch.int64, device=p.device)
        x = torch.zeros(B, D, dtype=p.dtype, device=p.device)
        uniform, normal = uniform.to(p), normal.to(p)
        caches = [block.new_cache(B, D) for block in self.blocks] if use_cache else None
        for t in range(D):
            if use_cache:
                h = self._tokens(x[:, t - 1:t] if t else x[:, :1], n, start=t)
                for block, cache in zip(self.blocks, caches):
                    h = block(h, cache=cache)
            else:
                h = self._tokens(torch.cat([x[:, :1], x[:, :t]], dim=1) if t else x[:, :1], n)
                for block in self.blocks:
                    h = block(h)
                h = h[:, -1:]
            log_w, mu, log_s = self._head(h[:, 0])
            x[:, t] = gmm.sample(log_w, mu, log_s, uniform[:, t], normal[:, t])
        return x
