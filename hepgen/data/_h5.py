"""HDF5 plumbing shared by the jet, event and shower files: checked reads and safe writes.

Writes never leave a half-written file under the requested name: data go to
``FILE.partial`` and the finished file is renamed into place. An interrupted run
(KeyboardInterrupt) keeps the chunks it finished; any other failure removes the
partial file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepgen._version import __version__

# Datasets are chunked along the first axis with about this many bytes per chunk.
_CHUNK_BYTES = 1 << 20


def output_path(path: str | os.PathLike, force: bool) -> Path:
    """The output path as a Path; FileExistsError if it exists and ``force`` is false."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force (force=True) to overwrite it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: directory {path.parent} does not exist")
    return path


def partial_path(path: Path) -> Path:
    """Where a file is written before it is complete: ``FILE.partial``."""
    return path.with_name(path.name + ".partial")


def _set_attrs(target: h5py.AttributeManager, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            value = np.array(value, dtype=h5py.string_dtype())
        target[key] = value


class ChunkedWriter:
    """Appends chunks to resizable datasets in ``FILE.partial``, renamed to FILE when done.

    ``layout`` maps dataset names to ``(shape after the first axis, dtype, unit or None)``.
    Use as a context manager: on normal exit the file is finished; on KeyboardInterrupt
    it is truncated to the finished chunks and kept (or removed if there are none); on
    any other exception it is removed.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        layout: Mapping[str, tuple[tuple[int, ...], Any, str | None]],
        attrs: Mapping[str, Any] | None = None,
        force: bool = False,
    ):
        self.path = output_path(path, force)
        self.partial = partial_path(self.path)
        self.layout = dict(layout)
        self.n_written = 0
        self._file = h5py.File(self.partial, "w")
        try:
            _set_attrs(self._file.attrs, {"hepgen_version": __version__, **(attrs or {})})
            for name, (tail, dtype, unit) in self.layout.items():
                row_bytes = max(1, int(np.prod(tail, dtype=np.int64)) * np.dtype(dtype).itemsize)
                rows = max(1, min(4096, _CHUNK_BYTES // row_bytes))
                dset = self._file.create_dataset(
                    name, shape=(0, *tail), maxshape=(None, *tail), dtype=dtype, chunks=(rows, *tail)
                )
                if unit is not None:
                    dset.attrs["unit"] = unit
        except BaseException:
            self.discard()
            raise

    def append(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Append one chunk: every dataset of the layout, the same number of rows."""
        if set(arrays) != set(self.layout):
            raise ValueError(f"chunk has datasets {sorted(arrays)}, expected {sorted(self.layout)}")
        lengths = {len(a) for a in arrays.values()}
        if len(lengths) != 1:
            raise ValueError(f"chunk datasets differ in length: {lengths}")
        n = lengths.pop()
        start = self.n_written
        for name, array in arrays.items():
            tail = self.layout[name][0]
            if tuple(array.shape[1:]) != tuple(tail):
                raise ValueError(f"chunk '{name}' has shape {array.shape}, expected (n, {tail})")
            dset = self._file[name]
            dset.resize(start + n, axis=0)
            dset[start:] = array
        self._file.flush()
        # Only now do these rows count as finished.
        self.n_written = start + n

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Set file attributes now (e.g. a run's totals, known only after its last chunk,
        before the context manager finishes the file)."""
        _set_attrs(self._file.attrs, attrs)
        self._file.flush()

    def finish(self, attrs: Mapping[str, Any] | None = None) -> Path | None:
        """Truncate to the finished rows, set ``attrs``, rename into place; None if empty."""
        if self.n_written == 0:
            self.discard()
            return None
        for name in self.layout:
            self._file[name].resize(self.n_written, axis=0)
        _set_attrs(self._file.attrs, {"n": self.n_written, **(attrs or {})})
        self._file.close()
        os.replace(self.partial, self.path)
        return self.path

    def discard(self) -> None:
        """Close and remove the partial file."""
        if self._file.id.valid:
            self._file.close()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> ChunkedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.finish({"complete": True})
        elif issubclass(exc_type, KeyboardInterrupt):
            self.finish({"complete": False})
        else:
            self.discard()
        return False


def write_arrays(
    path: str | os.PathLike,
    arrays: Mapping[str, np.ndarray],
    units: Mapping[str, str | None],
    attrs: Mapping[str, Any] | None = None,
    force: bool = False,
) -> Path:
    """Write whole arrays at once, through a partial file renamed at the end."""
    layout = {k: (tuple(a.shape[1:]), a.dtype, units.get(k)) for k, a in arrays.items()}
    with ChunkedWriter(path, layout, attrs, force=force) as writer:
        writer.append(arrays)
    return writer.path


def open_for_reading(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 file read-only with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({err})") from None


def read_dataset(
    file: h5py.File,
    key: str,
    shape: tuple[int | None, ...],
    unit: str | None = None,
) -> np.ndarray:
    """Read ``key`` and check its shape (None matches any size) and, if stored, its unit."""
    where = f"{file.filename}: '{key}'"
    if key not in file:
        raise ValueError(f"{file.filename}: missing dataset '{key}' (found {sorted(file.keys())})")
    dset = file[key]
    if not isinstance(dset, h5py.Dataset):
        raise ValueError(f"{where} is a group, expected a dataset")
    if len(dset.shape) != len(shape) or any(want is not None and got != want for got, want in zip(dset.shape, shape)):
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{where} has shape {dset.shape}, expected {expected}")
    stored_unit = dset.attrs.get("unit")
    if isinstance(stored_unit, bytes):
        stored_unit = stored_unit.decode()
    if unit is not None and stored_unit is not None and stored_unit != unit:
        raise ValueError(f"{where} is in {stored_unit}, expected {unit}")
    if not np.issubdtype(dset.dtype, np.number):
        raise ValueError(f"{where} has dtype {dset.dtype}, expected numbers")
    return dset[()]


def read_attrs(file: h5py.File) -> dict[str, Any]:
    """File attributes as plain Python values (strings decoded, arrays as lists)."""
    out: dict[str, Any] = {}
    for key, value in file.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        elif isinstance(value, np.ndarray):
            value = [v.decode() if isinstance(v, bytes) else v for v in value.tolist()]
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out
