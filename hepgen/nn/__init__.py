"""Layers built on hepgen's ops."""

from hepgen.nn.kv_cache import KVCache

__all__ = ["KVCache"]
