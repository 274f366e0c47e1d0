"""Training examples by row range: a rank reads only the rows it trains on.

A :class:`Rows` source has ``n`` rows and ``read(start, stop)`` → a dict of numpy arrays
(one row per example). :class:`ArrayRows` wraps arrays in memory (the Python API, where the
caller already holds them); :class:`FileRows` reads row ranges of an HDF5 file's datasets
(h5py slicing reads only those rows), so with K ranks each reads about N / K rows.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import numpy as np


class Rows:
    n: int

    def read(self, start: int, stop: int) -> dict[str, np.ndarray]:
        raise NotImplementedError

    def column(self, name: str) -> np.ndarray:
        """One array whole (all ``n`` rows): for small per-row columns (e.g. jet counts)."""
        raise NotImplementedError

    def _check(self, start: int, stop: int) -> None:
        if not 0 <= start <= stop <= self.n:
            raise ValueError(f"rows {start}..{stop} outside 0..{self.n}")


class ArrayRows(Rows):
    """Rows of arrays that share their first dimension."""

    def __init__(self, **arrays):
        lengths = {k: len(v) for k, v in arrays.items()}
        if len(set(lengths.values())) != 1:
            raise ValueError(f"arrays must have the same number of rows, got {lengths}")
        self.arrays, self.n = arrays, next(iter(lengths.values()))

    def read(self, start: int, stop: int) -> dict[str, np.ndarray]:
        self._check(start, stop)
        return {k: np.asarray(v[start:stop]) for k, v in self.arrays.items()}

    def column(self, name: str) -> np.ndarray:
        return np.asarray(self.arrays[name][: self.n])


class FileRows(Rows):
    """Rows of an HDF5 file: ``datasets`` maps names to dataset keys; only the first
    ``limit`` rows (all when None); ``transform(arrays)`` post-processes what is read.
    Every slice read is checked as the layout readers check whole files: floating values
    must be finite, and those named in ``nonnegative`` ({name: what they are}) not negative."""

    def __init__(
        self,
        path: str | os.PathLike,
        datasets: Mapping[str, str],
        limit: int | None = None,
        transform: Callable[[dict], dict] | None = None,
        nonnegative: Mapping[str, str] | None = None,
    ):
        from hepgen.data._h5 import dataset_for_slices, reading, verify_checksum
        from hepgen.distributed.context import current

        self.path, self.datasets, self.transform = path, dict(datasets), transform
        self.nonnegative = dict(nonnegative or {})
        # The readers' checks that need no data (format version, links, dtypes, external or
        # virtual storage: hepgen.data._h5), on every rank; the checksums, which need every
        # byte, by rank 0 alone, streaming: the file is read once, never held whole.
        with reading(path) as file:
            missing = [key for key in self.datasets.values() if key not in file]
            if missing:
                raise ValueError(f"{path}: missing dataset(s) {missing} (found {sorted(file.keys())})")
            dsets = {name: dataset_for_slices(file, key) for name, key in self.datasets.items()}
            self.shapes = {name: tuple(d.shape) for name, d in dsets.items()}
            lengths = {self.datasets[name]: d.shape[0] if d.shape else 0 for name, d in dsets.items()}
            self.attrs = dict(file.attrs)
            if current().is_main:
                for d in dsets.values():
                    verify_checksum(d)
        if len(set(lengths.values())) != 1:
            raise ValueError(f"{path}: datasets have different numbers of rows: {lengths}")
        total = next(iter(lengths.values()))
        self.n = total if limit is None else min(limit, total)

    def read(self, start: int, stop: int) -> dict[str, np.ndarray]:
        from hepgen.data._h5 import check_values, reading

        self._check(start, stop)
        with reading(self.path) as file:
            out = {name: file[key][start:stop] for name, key in self.datasets.items()}
        for name, values in out.items():
            if not np.issubdtype(values.dtype, np.number):
                raise ValueError(f"{self.path}: '{self.datasets[name]}' has dtype {values.dtype}, expected numbers")
            if values.dtype.kind == "f":
                check_values(self.path, self.datasets[name], values, self.nonnegative.get(name))
        return self.transform(out) if self.transform else out

    def column(self, name: str) -> np.ndarray:
        from hepgen.data._h5 import open_for_reading

        with open_for_reading(self.path) as file:
            return file[self.datasets[name]][: self.n]
