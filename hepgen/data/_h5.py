"""HDF5 plumbing shared by the jet, event and shower files: checked reads and safe writes.

Writing (:class:`ChunkedWriter`, :func:`write_arrays`)
    Data go to a scratch file of this writer's own, ``FILE.partial-<pid>-<random>``, renamed
    onto FILE only when complete (:mod:`hepgen.data._atomic`): FILE holds the previous file,
    untouched, or a complete new one, never a partial file, and two writers of one target
    never share a scratch file. An interrupted run (KeyboardInterrupt: Ctrl-C, or SIGTERM
    in ``hepgen data``/the CLI) keeps its finished chunks as a valid file ``FILE.partial``
    (attributes ``complete=False``, ``n`` = the rows kept) and leaves FILE as it was; with no
    finished chunk it keeps nothing. Any other error removes the scratch file. SIGKILL leaves
    the scratch file behind (incomplete; delete it). Every dataset carries a ``checksum``
    attribute, ``"crc32:<8 hex digits>"``: the CRC-32 of its bytes (C order, stored dtype);
    the file carries ``format_version`` (:data:`FORMAT_VERSION`) and ``n``.

    Why CRC-32: the checksum is there to catch damage (a flipped bit, a bad copy, a file
    edited by hand), not an attacker, who could rewrite any unkeyed hash beside the data; it
    is the fastest well-kept hash of the standard library (zlib: 0.17 CPU s per GiB on one
    core here, against 0.28 s for Adler-32, 0.56 s for SHA-256, 0.80 s for BLAKE2b),
    incremental over chunks, and detects every burst error of up to 32 bits and all but
    2^-32 of random damage. It covers the datasets' values, not the attributes.

Reading (:func:`reading`, :func:`read_dataset`; the layouts' readers add the physics)
    Refused with a ValueError naming the file, the dataset and the problem, before any data
    is read where the problem is in the metadata: not a file, not HDF5 (truncated, empty,
    text, an image), unreadable metadata; another layout's ``format`` tag; a
    ``format_version`` newer than this hepgen's (upgrade) or not an integer; an ``n``
    attribute that disagrees with the data; a missing dataset, a group, an HDF5 link to
    another file; the wrong shape; the wrong dtype (complex, strings, compound, or ints
    where floats belong: an error, not a cast); external storage (the bytes live in another
    file) or a virtual dataset with sources outside the file, refused before a byte is read,
    since reading them would read whatever other file the crafted one names; a declared
    size larger than the memory available (refused: the readers return whole arrays, so
    streaming is not an option here; read a part with h5py directly); declared rows the file
    does not store (unwritten chunks would read as zeros); data HDF5 cannot decode; a
    checksum that does not match (damaged, or edited: delete the attribute to accept an
    edit); a checksum algorithm this hepgen does not know. Files without checksums (JetNet's
    and CaloChallenge's own, those of earlier hepgen releases) are read without that check;
    every other check applies to them as to ours.
"""

from __future__ import annotations

import os
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from hepgen._version import __version__
from hepgen.data._atomic import kept_path, publish, scratch_path

# Datasets are chunked along the first axis with about this many bytes per chunk.
_CHUNK_BYTES = 1 << 20

# The version of the file layouts this hepgen writes and reads; a file with a larger
# 'format_version' was written by a newer hepgen and is refused (files without one are 1).
FORMAT_VERSION = 1
CHECKSUM_ATTR = "checksum"
_CRC32 = "crc32"

# What a dataset may hold: "float" real floating point; "int" integers; "number" either.
_KINDS = {"float": "f", "int": "iu", "number": "fiu"}
_KIND_WORDS = {"float": "floating-point numbers", "int": "integers", "number": "real numbers"}


class WriteInterrupted(KeyboardInterrupt):
    """Ctrl-C while a :class:`ChunkedWriter` wrote ``path``: ``path`` was left as it was;
    ``kept`` is ``FILE.partial`` holding the ``n_written`` finished rows (``complete=False``),
    or None when no row had finished."""

    def __init__(self, path: Path, kept: Path | None, n_written: int):
        super().__init__(path, kept, n_written)
        self.path, self.kept, self.n_written = path, kept, n_written

    def describe(self) -> str:
        if self.kept is None:
            return f"interrupted before any data was finished; {self.path} not written"
        return (
            f"interrupted: {self.kept} keeps the {self.n_written} finished rows (complete=False); "
            f"{self.path} left as it was"
        )


def output_path(path: str | os.PathLike, force: bool) -> Path:
    """The output path as a Path; FileExistsError if it exists and ``force`` is false."""
    path = Path(path)
    if path.exists() and not force:
        raise FileExistsError(f"{path} exists; pass --force (force=True) to overwrite it")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"{path}: directory {path.parent} does not exist")
    return path


def partial_path(path: Path) -> Path:
    """Where an interrupted write keeps its finished chunks: ``FILE.partial``."""
    return kept_path(Path(path))


def _set_attrs(target: h5py.AttributeManager, attrs: Mapping[str, Any]) -> None:
    for key, value in attrs.items():
        if value is None:
            continue
        if isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value):
            value = np.array(value, dtype=h5py.string_dtype())
        target[key] = value


def _checksum_text(crc: int) -> str:
    return f"{_CRC32}:{crc & 0xFFFFFFFF:08x}"


class ChunkedWriter:
    """Appends chunks to resizable datasets in a scratch file, renamed to ``path`` when done.

    ``layout`` maps dataset names to ``(shape after the first axis, dtype, unit or None)``.
    Use as a context manager: on normal exit the file is finished; on KeyboardInterrupt
    the finished chunks are kept as ``FILE.partial`` (see the module docstring) and a
    :class:`WriteInterrupted` is raised; on any other exception nothing is left.
    ``partial`` is the scratch file's path while writing.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        layout: Mapping[str, tuple[tuple[int, ...], Any, str | None]],
        attrs: Mapping[str, Any] | None = None,
        force: bool = False,
    ):
        self.path = output_path(path, force)
        self.force = force
        self.partial = scratch_path(self.path)
        self.layout = dict(layout)
        self.n_written = 0
        self._crc = dict.fromkeys(self.layout, 0)
        self._file = h5py.File(self.partial, "w")
        try:
            _set_attrs(
                self._file.attrs,
                {"hepgen_version": __version__, "format_version": FORMAT_VERSION, **(attrs or {})},
            )
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
        crc = {}
        for name, array in arrays.items():
            tail = self.layout[name][0]
            if tuple(array.shape[1:]) != tuple(tail):
                raise ValueError(f"chunk '{name}' has shape {array.shape}, expected (n, {tail})")
            dset = self._file[name]
            # Converted here, not by HDF5, so that the checksum is of exactly the bytes stored.
            data = np.ascontiguousarray(array, dtype=dset.dtype)
            dset.resize(start + n, axis=0)
            dset[start:] = data
            crc[name] = zlib.crc32(memoryview(data).cast("B"), self._crc[name])
        self._file.flush()
        # Only now do these rows count as finished.
        self.n_written = start + n
        self._crc.update(crc)

    def set_attrs(self, attrs: Mapping[str, Any]) -> None:
        """Set file attributes now (e.g. a run's totals, known only after its last chunk,
        before the context manager finishes the file)."""
        _set_attrs(self._file.attrs, attrs)
        self._file.flush()

    def _close_finished(self, attrs: Mapping[str, Any]) -> None:
        # Rows of a chunk whose append failed halfway are dropped with the truncation.
        for name in self.layout:
            self._file[name].resize(self.n_written, axis=0)
            self._file[name].attrs[CHECKSUM_ATTR] = _checksum_text(self._crc[name])
        _set_attrs(self._file.attrs, {"n": self.n_written, **attrs})
        self._file.close()

    def finish(self, attrs: Mapping[str, Any] | None = None) -> Path | None:
        """Truncate to the finished rows, set ``attrs``, rename into place; None if empty."""
        if self.n_written == 0:
            self.discard()
            return None
        self._close_finished(attrs or {})
        return publish(self.partial, self.path, self.force)

    def keep_finished(self) -> Path | None:
        """Keep the finished rows as ``FILE.partial`` (``complete=False``), leaving ``path``
        as it was; None (and no file) if no row had finished. For interrupted runs."""
        if self.n_written == 0:
            self.discard()
            return None
        self._close_finished({"complete": False})
        kept = partial_path(self.path)
        os.replace(self.partial, kept)
        return kept

    def discard(self) -> None:
        """Close and remove the scratch file."""
        if self._file.id.valid:
            self._file.close()
        self.partial.unlink(missing_ok=True)

    def __enter__(self) -> ChunkedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None:
            self.finish({"complete": True})
        elif issubclass(exc_type, KeyboardInterrupt):
            try:
                kept = self.keep_finished()
            except BaseException:
                self.discard()
                raise
            raise WriteInterrupted(self.path, kept, self.n_written) from exc
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
    """Write whole arrays at once, through a scratch file renamed at the end."""
    layout = {k: (tuple(a.shape[1:]), a.dtype, units.get(k)) for k, a in arrays.items()}
    with ChunkedWriter(path, layout, attrs, force=force) as writer:
        writer.append(arrays)
    return writer.path


# ------------------------------------------------------------------------------ reading


def open_for_reading(path: str | os.PathLike) -> h5py.File:
    """Open an HDF5 file read-only with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise ValueError(f"{path}: not a readable HDF5 file ({_first_line(err)})") from None


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


@contextmanager
def reading(path: str | os.PathLike, expect_format: str | None = None) -> Iterator[h5py.File]:
    """The file at ``path`` open read-only, its ``format`` tag (if any) checked against
    ``expect_format`` and its ``format_version`` against :data:`FORMAT_VERSION`; any
    HDF5 error inside (damaged metadata or data) becomes a ValueError naming the file."""
    path = Path(path)
    with open_for_reading(path) as file:
        try:
            check_format(file, expect_format)
            yield file
        except (OSError, RuntimeError, KeyError) as err:
            # h5py's errors on a damaged file: OSError (HDF5's), KeyError (unreadable objects).
            raise ValueError(f"{path}: damaged HDF5 file ({type(err).__name__}: {_first_line(err)})") from None


def check_format(file: h5py.File, expect_format: str | None = None) -> None:
    """Refuse another layout's file and a newer format version (see the module docstring)."""
    attrs = file.attrs
    fmt = _plain(attrs.get("format"))
    if expect_format is not None and fmt is not None and fmt != expect_format:
        raise ValueError(f"{file.filename}: a {fmt!r} file, expected {expect_format!r}")
    version = _plain(attrs.get("format_version", 1))
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{file.filename}: damaged file (format_version {version!r} is not an integer)")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{file.filename}: format_version {version} was written by a newer hepgen; this hepgen reads "
            f"version {FORMAT_VERSION} (upgrade hepgen)"
        )


def check_rows(file: h5py.File, n: int) -> None:
    """Refuse a file whose ``n`` attribute (rows written, set by our writers) is not ``n``."""
    stored = _plain(file.attrs.get("n"))
    if stored is not None and stored != n:
        raise ValueError(f"{file.filename}: attribute n={stored!r} but the datasets hold {n} rows")


def _plain(value):
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    if isinstance(value, np.generic):
        return value.item()
    return value


def available_memory() -> int | None:
    """Bytes this process could still allocate: MemAvailable, lowered to the room left
    under a cgroup (container) limit; None where neither is known."""
    limits = []
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    limits.append(int(line.split()[1]) * 1024)
                    break
    except (OSError, ValueError):
        pass
    try:
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            limits.append(int(limit) - int((cgroup / "memory.current").read_text()))
    except (OSError, ValueError):
        pass
    if not limits:
        try:
            limits.append(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
        except (ValueError, OSError, AttributeError):
            return None
    return max(0, min(limits))


def _check_storage(dset: h5py.Dataset, where: str, whole: bool = True) -> None:
    """External storage, virtual sources outside the file, and unstored rows: refused; with
    ``whole`` (the dataset is to be read at once) also sizes beyond the memory available."""
    if dset.external:
        files = sorted({str(name) for name, *_ in dset.external})
        raise ValueError(f"{where} keeps its data in external file(s) {files}; refused (it would read another file)")
    if dset.is_virtual:
        sources = dset.virtual_sources()
        outside = sorted({src.file_name for src in sources if src.file_name != "."})
        if outside:
            raise ValueError(f"{where} is a virtual dataset reading file(s) {outside}; refused (outside this file)")
        for src in sources:  # datasets of this file: what they store is checked as for any
            source = dset.file.get(src.dset_name)
            if not isinstance(source, h5py.Dataset) or source.is_virtual:
                raise ValueError(f"{where} is a virtual dataset of {src.dset_name!r}, which is not a stored dataset")
            _check_storage(source, f"{where} (virtual, from {src.dset_name!r})", whole)
        return
    nbytes = dset.size * dset.dtype.itemsize
    if nbytes == 0:
        return
    available = available_memory() if whole else None
    if available is not None and nbytes > available:
        raise ValueError(
            f"{where} declares shape {dset.shape} of {dset.dtype} = {nbytes / 2**30:.3g} GiB, more than the "
            f"{available / 2**30:.3g} GiB of memory available; refused before reading "
            f"(the readers load whole files; read a slice with h5py instead)"
        )
    if dset.chunks is not None:
        needed = int(np.prod([-(-s // c) for s, c in zip(dset.shape, dset.chunks)], dtype=np.int64))
        stored = dset.id.get_num_chunks()
        if stored < needed:
            raise ValueError(
                f"{where} declares shape {dset.shape} but stores data for {stored} of its {needed} chunks "
                f"(the missing rows would read as zeros)"
            )
    elif dset.id.get_storage_size() < nbytes:
        raise ValueError(
            f"{where} declares shape {dset.shape} but stores {dset.id.get_storage_size()} of its {nbytes} bytes"
        )


def _stored_checksum(dset: h5py.Dataset, where: str) -> str | None:
    stored = _plain(dset.attrs.get(CHECKSUM_ATTR))
    if stored is None:
        return None  # a file without checksums (another producer's, or an older hepgen's)
    algorithm, _, _ = str(stored).partition(":")
    if algorithm != _CRC32:
        raise ValueError(f"{where} has checksum {stored!r} of an algorithm this hepgen does not know")
    return str(stored)


def _compare_checksum(stored: str, crc: int, where: str) -> None:
    actual = _checksum_text(crc)
    if actual != stored:
        raise ValueError(
            f"{where} fails its checksum (stored {stored}, data give {actual}): the file is damaged, or was "
            f"edited after hepgen wrote it (delete the dataset's '{CHECKSUM_ATTR}' attribute to accept an edit)"
        )


def _check_checksum(dset: h5py.Dataset, data: np.ndarray, where: str) -> None:
    stored = _stored_checksum(dset, where)
    if stored is not None:
        _compare_checksum(stored, zlib.crc32(memoryview(np.ascontiguousarray(data)).cast("B")), where)


def _dataset(file: h5py.File, key: str) -> tuple[h5py.Dataset, str]:
    """``key`` as a dataset stored in this file (not a link to another, not a group)."""
    where = f"{file.filename}: '{key}'"
    link = file.get(key, getlink=True)
    if link is None:
        raise ValueError(f"{file.filename}: missing dataset '{key}' (found {sorted(file.keys())})")
    if isinstance(link, h5py.ExternalLink):
        raise ValueError(f"{where} is a link to {link.filename!r}; refused (outside this file)")
    dset = file[key]
    if not isinstance(dset, h5py.Dataset):
        raise ValueError(f"{where} is a group, expected a dataset")
    return dset, where


def _check_kind(dset: h5py.Dataset, where: str, kind: str) -> None:
    if dset.dtype.kind not in _KINDS[kind] or dset.dtype.fields is not None:
        raise ValueError(f"{where} has dtype {dset.dtype}, expected {_KIND_WORDS[kind]}")


def dataset_for_slices(file: h5py.File, key: str, kind: str = "number") -> h5py.Dataset:
    """``key`` checked as :func:`read_dataset` checks it before reading (link, kind, dtype,
    storage), for a caller that reads row slices of it (a rank's shard in training): no
    memory check, since no one reads it whole; see :func:`verify_checksum` for the data."""
    dset, where = _dataset(file, key)
    _check_kind(dset, where, kind)
    _check_storage(dset, where, whole=False)
    return dset


def verify_checksum(dset: h5py.Dataset, block_rows: int = 65536) -> None:
    """Check ``dset``'s stored checksum (if any) reading it in blocks of rows: the whole
    dataset is read once but never held whole (the CRC is computed block after block, in
    the order the writers appended the rows)."""
    where = f"{dset.file.filename}: '{dset.name.lstrip('/')}'"
    stored = _stored_checksum(dset, where)
    if stored is None:
        return
    crc = 0
    try:
        for start in range(0, len(dset), block_rows):
            block = np.ascontiguousarray(dset[start : start + block_rows])
            crc = zlib.crc32(memoryview(block).cast("B"), crc)
    except (OSError, RuntimeError, ValueError) as err:
        raise ValueError(f"{where} cannot be read: damaged data ({_first_line(err)})") from None
    _compare_checksum(stored, crc, where)


def read_dataset(
    file: h5py.File,
    key: str,
    shape: tuple[int | None, ...],
    unit: str | None = None,
    kind: str = "number",
) -> np.ndarray:
    """Read ``key`` after the checks of the module docstring: its shape (None matches any
    size), its unit if stored, its dtype (``kind``: "float", "int" or "number" = either),
    its storage; then its checksum, if stored."""
    dset, where = _dataset(file, key)
    if len(dset.shape) != len(shape) or any(want is not None and got != want for got, want in zip(dset.shape, shape)):
        expected = "(" + ", ".join("N" if s is None else str(s) for s in shape) + ")"
        raise ValueError(f"{where} has shape {dset.shape}, expected {expected}")
    _check_kind(dset, where, kind)
    stored_unit = _plain(dset.attrs.get("unit"))
    if unit is not None and stored_unit is not None and stored_unit != unit:
        raise ValueError(f"{where} is in {stored_unit}, expected {unit}")
    _check_storage(dset, where)
    try:
        data = dset[()]
    except (OSError, RuntimeError, ValueError) as err:
        raise ValueError(f"{where} cannot be read: damaged data ({_first_line(err)})") from None
    _check_checksum(dset, data, where)
    return data


def check_values(path, key: str, array: np.ndarray, negative: str | None = None) -> None:
    """Refuse NaN and infinite values and, with ``negative`` (what the values are, e.g.
    "voxel energies"), negative ones. One min and one max over ``array``, no temporary:
    they are finite exactly when all values are (NaN propagates)."""
    if not array.size:
        return
    low, high = array.min(), array.max()
    if not (np.isfinite(low) and np.isfinite(high)):
        bad = int(np.count_nonzero(~np.isfinite(array)))
        raise ValueError(f"{path}: '{key}' holds {bad} NaN or infinite values")
    if negative is not None and low < 0:
        raise ValueError(f"{path}: '{key}' has {int(np.count_nonzero(array < 0))} negative {negative} (min {low:.4g})")


def check_counts(path, key: str, counts: np.ndarray, slots: int, what: str) -> None:
    """Refuse counts that are not whole numbers in 0..``slots``."""
    if counts.size and (counts.min() < 0 or counts.max() > slots or np.any(counts != np.round(counts))):
        raise ValueError(
            f"{path}: '{key}' must be in 0..{slots} ({what}: whole numbers up to the {slots} slots), "
            f"found {counts.min():g}..{counts.max():g}"
        )


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
