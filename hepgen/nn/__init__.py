"""Layers built on hepgen's ops."""

from hepgen.nn.attention import CausalSelfAttention, TransformerBlock
from hepgen.nn.epic import EPiCLayer, EPiCNet, cosine_time_embedding
from hepgen.nn.kv_cache import KVCache

__all__ = ["CausalSelfAttention", "EPiCLayer", "EPiCNet", "KVCache", "TransformerBlock", "cosine_time_embedding"]
