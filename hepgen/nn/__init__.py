"""Layers built on hepgen's ops."""

from hepgen.nn.attention import CausalSelfAttention, TransformerBlock
from hepgen.nn.bayesian import BayesianLinear, kl_divergence, weight_draws
from hepgen.nn.epic import EPiCLayer, EPiCNet, cosine_time_embedding
from hepgen.nn.kv_cache import KVCache

__all__ = [
    "BayesianLinear",
    "CausalSelfAttention",
    "EPiCLayer",
    "EPiCNet",
    "KVCache",
    "TransformerBlock",
    "cosine_time_embedding",
    "kl_divergence",
    "weight_draws",
]
