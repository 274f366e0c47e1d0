"""Layers built on hepgen's ops."""

from hepgen.nn.epic import EPiCLayer, EPiCNet, cosine_time_embedding

__all__ = ["EPiCLayer", "EPiCNet", "cosine_time_embedding"]
