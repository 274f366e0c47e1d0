"""The field's file layouts, one module each: its dataset names, feature names and file
attributes, its reader and writer, and an appendable writer for streaming chunks.

- :mod:`~hepgen.data.layouts.jetnet`: jets as particle clouds (JetNet);
- :mod:`~hepgen.data.layouts.calochallenge`: calorimeter showers (CaloChallenge);
- :mod:`~hepgen.data.layouts.zjets`: Z(->mu mu)+jets events (hepgen-zjets), with the
  optional 'member' dataset of Bayesian ensembles.

The sample classes (:class:`hepgen.data.JetSample`, ...) write themselves through these
(``sample.write(path)``); ``hepgen.data.read_jets`` and friends read through them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

from hepgen.data._h5 import ChunkedWriter


class SampleWriter:
    """Appends sample chunks to a file of one layout: a :class:`hepgen.data._h5.ChunkedWriter`
    (a scratch file renamed onto FILE when done; Ctrl-C keeps the finished chunks as
    ``FILE.partial``, marked ``complete=False``, and leaves FILE as it was; any other error
    leaves no file) fed through ``to_arrays(sample)``."""

    def __init__(
        self,
        path: str | os.PathLike,
        layout: Mapping,
        attrs: Mapping[str, Any] | None,
        force: bool,
        to_arrays: Callable[[Any], dict],
    ):
        self._writer = ChunkedWriter(path, layout, attrs, force=force)
        self._to_arrays = to_arrays
        self.path = self._writer.path

    @property
    def n_written(self) -> int:
        return self._writer.n_written

    def append(self, sample) -> None:
        self._writer.append(self._to_arrays(sample))

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Set file attributes now (e.g. totals known after the last chunk)."""
        self._writer.set_attrs(attrs)

    def finish(self, attrs: Mapping[str, Any] | None = None):
        return self._writer.finish(attrs)

    def discard(self) -> None:
        self._writer.discard()

    def __enter__(self) -> SampleWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        return self._writer.__exit__(exc_type, exc, tb)
