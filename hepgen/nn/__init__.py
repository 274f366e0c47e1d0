"""Layers built on hepgen's ops."""

from hepgen.nn.attention import CausalSelfAttention, TransformerBlock
from hepgen.nn.kv_cache import KVCache

__all__ = ["CausalSelfAttention", "KVCache", "TransformerBlock"]
