"""Streaming jets into a JetNet-layout file, chunk by chunk (for generators of any size).

:func:`hepgen.data.write_jets` writes one sample held in memory; this writes an iterable of
:class:`~hepgen.data.JetSample` chunks as they come, to ``FILE.partial`` renamed to FILE
when done, with the same datasets and attributes. Ctrl-C keeps the finished chunks
(attribute ``complete`` false); any other error leaves no file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from hepgen.data._h5 import ChunkedWriter
from hepgen.data.jets import JET_FEATURES, JET_KEY, PARTICLE_FEATURES, PARTICLE_KEY, JetSample


def write_jet_chunks(
    path: str | os.PathLike,
    chunks: Iterable[JetSample],
    particles: int,
    attrs: dict[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Append each chunk (``particles`` slots per jet) to ``path``; returns the path."""
    layout = {PARTICLE_KEY: ((particles, 4), np.float32, None), JET_KEY: ((4,), np.float32, "GeV")}
    layout_attrs = {
        "format": "jetnet",
        "energy_unit": "GeV",
        "particle_feature_names": list(PARTICLE_FEATURES),
        "jet_feature_names": list(JET_FEATURES),
    }
    with ChunkedWriter(path, layout, {**layout_attrs, **(attrs or {})}, force=force) as writer:
        for chunk in chunks:
            writer.append({PARTICLE_KEY: chunk.particles, JET_KEY: chunk.jets})
    return writer.path
