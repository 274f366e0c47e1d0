"""The readers (jets, showers, events) against a corpus of bad files made from good small ones.

Every bad file must be refused with a ValueError (FileNotFoundError for a missing file) whose
message names the file and the problem; the good variants (no checksums, a foreign file
without our attributes, a virtual dataset inside the file) must read as the good file. The
byte-flip sweep may read a file whose flipped byte was unused, but only with the good
file's arrays: never different data, never another exception. ``hepgen train`` on bad
files exits 1 with one line on stderr naming the file.

With HEPGEN_BAD_FILES_COUNTS=FILE.json the outcomes per reader are written there (the
table of docs/reliability.md).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import pytest

from hepgen.cli import main
from hepgen.data import EventSample, JetSample, ShowerSample, read_events, read_jets, read_showers

P = 8  # particle slots of the jet files
N = 24  # rows of every good file


def good_jets(path: Path) -> None:
    rng = np.random.default_rng(1)
    mult = rng.integers(2, P + 1, N)
    mask = (np.arange(P)[None] < mult[:, None]).astype(np.float32)
    pt = -np.sort(-rng.random((N, P)), axis=1) * mask
    particles = np.stack([rng.normal(0, 0.1, (N, P)), rng.normal(0, 0.1, (N, P)), pt, mask], -1) * mask[..., None]
    jets = np.stack([rng.uniform(500, 700, N), rng.normal(size=N), rng.uniform(50, 200, N), mult], 1)
    JetSample(particles, jets, {"process": "toy"}).write(path)


def good_showers(path: Path) -> None:
    rng = np.random.default_rng(2)
    energies = rng.choice([1024.0, 4096.0, 16384.0], (N, 1))
    showers = rng.random((N, 368)) * energies / 368
    ShowerSample(energies, showers).write(path)


def good_events(path: Path) -> None:
    rng = np.random.default_rng(3)
    n_jets = rng.integers(1, 4, N)
    muons = np.stack(
        [rng.uniform(20, 80, (N, 2)), rng.normal(size=(N, 2)), rng.uniform(-3, 3, (N, 2)), np.full((N, 2), 0.1)], -1
    )
    jets = np.stack(
        [rng.uniform(20, 200, (N, 3)), rng.normal(size=(N, 3)), rng.uniform(-3, 3, (N, 3)), rng.uniform(1, 9, (N, 3))],
        -1,
    )
    jets[np.arange(3)[None] >= n_jets[:, None]] = 0
    EventSample(muons, jets, n_jets, members=rng.integers(0, 2, N)).write(path)


@dataclass(frozen=True)
class Layout:
    """A reader and what its files hold: which datasets are floats, where negative values
    are refused (key, index into the last axis or None for all), which are counts."""

    name: str
    read: object
    good: object
    format: str
    floats: tuple[str, ...]
    ints: tuple[str, ...]
    not_negative: tuple[tuple[str, int | None], ...]
    counts: tuple[tuple[str, int | None, int], ...]  # key, column, slots
    units: tuple[str, ...]


LAYOUTS = {
    "jets": Layout(
        "jets",
        read_jets,
        good_jets,
        "jetnet",
        ("particle_features", "jet_features"),
        (),
        (("jet_features", 0),),
        (("jet_features", 3, P),),
        ("jet_features",),
    ),
    "showers": Layout(
        "showers",
        read_showers,
        good_showers,
        "calochallenge",
        ("incident_energies", "showers"),
        (),
        (("showers", None), ("incident_energies", None)),
        (),
        ("incident_energies", "showers"),
    ),
    "events": Layout(
        "events",
        read_events,
        good_events,
        "hepgen-zjets",
        ("muons", "jets"),
        ("n_jets", "member"),
        (("muons", 0), ("jets", 0), ("member", None)),
        (("n_jets", None, 3),),
        ("muons", "jets"),
    ),
}


# ------------------------------------------------------------------ a file as plain data


def load_model(path: Path) -> dict:
    """The file as {"attrs": {...}, "datasets": {name: {"data", "attrs", "kwargs"}}}."""
    with h5py.File(path) as f:
        return {
            "attrs": dict(f.attrs),
            "datasets": {k: {"data": f[k][()], "attrs": dict(f[k].attrs), "kwargs": {}} for k in f},
        }


def crc(data: np.ndarray) -> str:
    return f"crc32:{zlib.crc32(np.ascontiguousarray(data).tobytes()) & 0xFFFFFFFF:08x}"


def save_model(model: dict, path: Path, fresh_checksums: bool = True) -> None:
    """Write ``model``; each dataset that had a checksum gets the one of its (new) data,
    so that only the defect under test is wrong."""
    with h5py.File(path, "w") as f:
        f.attrs.update(model["attrs"])
        for name, d in model["datasets"].items():
            if d.get("make") is not None:
                d["make"](f, name)
                continue
            dset = f.create_dataset(name, data=d["data"], **d["kwargs"])
            attrs = dict(d["attrs"])
            if fresh_checksums and "checksum" in attrs and not d.get("keep_checksum"):
                attrs["checksum"] = crc(d["data"])
            dset.attrs.update(attrs)


# ------------------------------------------------------------------ the corpus


@dataclass
class Case:
    name: str
    make: object  # (layout, good path, bad path, tmp dir) -> None
    expect: str | None  # regex of the refusal; None: must be accepted as the good file


def edit(change, fresh_checksums=True):
    """A case maker from ``change(layout, model, tmp)`` editing the good file's model."""

    def make(layout, good, bad, tmp):
        model = load_model(good)
        change(layout, model, tmp)
        save_model(model, bad, fresh_checksums)

    return make


def set_value(key, value, index=None):
    def change(layout, model, tmp):
        data = model["datasets"][key]["data"]
        at = (0,) * data.ndim if index is None else (0,) * (data.ndim - 1) + (index,)
        data[at] = value

    return change


def in_every_dataset(change_one):
    def change(layout, model, tmp):
        for name, d in model["datasets"].items():
            change_one(d, name, tmp)

    return change


def bytes_case(content):
    def make(layout, good, bad, tmp):
        bad.write_bytes(content(good.read_bytes()))

    return make


def data_regions(path: Path) -> dict[str, tuple[int, int]]:
    """(first byte, bytes used) of each dataset's first chunk: where its values are stored
    (a chunk of our files is larger than a small file's rows; the rest is unused)."""
    with h5py.File(path) as f:
        return {key: (f[key].id.get_chunk_info(0).byte_offset, f[key][()].nbytes) for key in f}


def flip_data_byte(key):
    """Flip one byte in the middle of ``key``'s values (the checksum's job)."""

    def make(layout, good, bad, tmp):
        raw = bytearray(good.read_bytes())
        start, used = data_regions(good)[key]
        raw[start + used // 2] ^= 0x40
        bad.write_bytes(bytes(raw))

    return make


def external_storage(key):
    def change(layout, model, tmp):
        secret = tmp / "secret.bin"
        d = model["datasets"][key]
        secret.write_bytes(np.ascontiguousarray(d["data"]).tobytes())
        nbytes = d["data"].nbytes
        d["kwargs"] = {"external": [(str(secret), 0, nbytes)]}

    return change


def virtual(key, inside: bool):
    def change(layout, model, tmp):
        d = model["datasets"][key]
        data = d["data"]
        if inside:
            model["datasets"]["_source"] = {"data": data, "attrs": {}, "kwargs": {}}
            source_file, source_name = ".", "_source"
        else:
            source_file, source_name = str(tmp / "elsewhere.h5"), "x"
            with h5py.File(source_file, "w") as other:
                other[source_name] = data
        vlayout = h5py.VirtualLayout(shape=data.shape, dtype=data.dtype)
        vlayout[...] = h5py.VirtualSource(source_file, source_name, shape=data.shape)
        attrs = dict(d["attrs"])
        d["make"] = lambda f, name: f.create_virtual_dataset(name, vlayout).attrs.update(attrs)

    return change


def external_link(key):
    def change(layout, model, tmp):
        other = tmp / "linked.h5"
        d = model["datasets"][key]
        with h5py.File(other, "w") as f:
            f["x"] = d["data"]
        d["make"] = lambda f, name: f.__setitem__(name, h5py.ExternalLink(str(other), "x"))

    return change


def declared_rows(rows: int):
    """Every dataset declares ``rows`` rows (chunked, allocated lazily); only the good rows
    are written, or none at all."""

    def change_one(d, name, tmp):
        data = d["data"]
        write = rows < 10**6

        def make(f, name):
            dset = f.create_dataset(
                name,
                shape=(rows, *data.shape[1:]),
                maxshape=(None, *data.shape[1:]),
                dtype=data.dtype,
                chunks=(len(data), *data.shape[1:]),
            )
            if write:
                dset[: len(data)] = data
            dset.attrs.update({k: v for k, v in d["attrs"].items() if k != "checksum"})

        d["make"] = make

    def change(layout, model, tmp):
        model["attrs"].pop("n", None)
        for name, d in model["datasets"].items():
            change_one(d, name, tmp)

    return change


def strip_ours(layout, model, tmp):
    """What JetNet's, CaloChallenge's and older hepgen files look like: no attributes."""
    model["attrs"] = {}
    for d in model["datasets"].values():
        d["attrs"] = {k: v for k, v in d["attrs"].items() if k == "unit"}


def strip_checksums(layout, model, tmp):
    for d in model["datasets"].values():
        d["attrs"].pop("checksum", None)


def png(raw: bytes) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + b"\x00\x00\x00\rIHDR" + bytes(range(256)) * 4


def file_attrs(**changes):
    return edit(lambda layout, model, tmp: model["attrs"].update(changes))


def data_of(key, transform):
    """``key``'s data replaced by ``transform(data)``."""

    def change(layout, model, tmp):
        d = model["datasets"][key]
        d["data"] = transform(d["data"])

    return edit(change)


def dataset_attrs(key, **changes):
    return edit(lambda layout, model, tmp: model["datasets"][key]["attrs"].update(changes), fresh_checksums=False)


def drop(key):
    return edit(lambda layout, model, tmp: model["datasets"].pop(key))


def as_group(key):
    return edit(lambda layout, model, tmp: model["datasets"][key].update(make=lambda f, name: f.create_group(name)))


def only_foreign_datasets(layout, model, tmp):
    model["datasets"] = {"images": {"data": np.zeros((2, 3)), "attrs": {}, "kwargs": {}}}


def truncated(cut):
    """The first ``cut`` bytes (an int > 0), all but the last ``-cut`` (an int < 0), or that
    fraction of the file (a float)."""

    def content(raw):
        if isinstance(cut, float):
            return raw[: int(cut * len(raw))]
        return raw[:cut]

    return bytes_case(content)


TRUNCATIONS = (1, 8, 96, 512, 1 / 8, 1 / 4, 1 / 2, 3 / 4, 7 / 8, -1)
NOT_HDF5 = r"not a readable HDF5 file|damaged|cannot be read|fails its checksum"
TEXT = b"particle_features,jet_features\n1,2\n"


def cases(layout: Layout) -> list[Case]:
    out = [
        Case("good", edit(lambda *unchanged: None), None),
        Case("no-checksums", edit(strip_checksums), None),
        Case("foreign (no attributes)", edit(strip_ours), None),
        Case("zero bytes", bytes_case(lambda raw: b""), r"not a readable HDF5 file"),
        Case("text", bytes_case(lambda raw: TEXT), r"not a readable HDF5 file"),
        Case("png", bytes_case(png), r"not a readable HDF5 file"),
        Case("future format_version", file_attrs(format_version=2), r"newer hepgen"),
        Case("format_version not int", file_attrs(format_version="1.x"), r"not an integer"),
        Case("n attribute", file_attrs(n=N + 1), rf"attribute n={N + 1}"),
        Case("another layout", file_attrs(format="other"), r"a 'other' file, expected"),
        Case("foreign HDF5 kind", edit(only_foreign_datasets), r"missing dataset"),
        Case("declares 10^12 rows", edit(declared_rows(10**12)), r"GiB, more than the .* GiB of memory available"),
        Case("declares unstored rows", edit(declared_rows(50 * N)), r"stores data for 1 of its 50 chunks"),
    ]
    out += [Case(f"truncated at {cut}", truncated(cut), NOT_HDF5) for cut in TRUNCATIONS]
    for key in layout.floats + layout.ints:
        if key != "member":  # optional: a file without it is a file without ensemble members
            out.append(Case(f"missing {key}", drop(key), rf"missing dataset '{key}'"))
        out += [
            Case(f"group {key}", as_group(key), rf"'{key}' is a group"),
            Case(f"extra axis {key}", data_of(key, lambda a: a[..., None]), rf"'{key}' has shape"),
            Case(f"row missing {key}", data_of(key, lambda a: a[1:]), r"has shape"),
            Case(f"complex {key}", data_of(key, lambda a: a.astype(np.complex64)), rf"'{key}' has dtype complex64"),
            Case(f"strings {key}", data_of(key, lambda a: a.astype("S8")), rf"'{key}' has dtype"),
            Case(f"external storage {key}", edit(external_storage(key)), rf"'{key}' keeps its data in external file"),
            Case(f"virtual outside {key}", edit(virtual(key, inside=False)), rf"'{key}' is a virtual dataset reading"),
            Case(f"virtual inside {key}", edit(virtual(key, inside=True)), None),
            Case(f"link to another file {key}", edit(external_link(key)), rf"'{key}' is a link to"),
            Case(f"flipped data byte {key}", flip_data_byte(key), rf"'{key}' fails its checksum"),
            Case(
                f"checksum algorithm {key}", dataset_attrs(key, checksum="sha3:00"), r"algorithm this hepgen does not"
            ),
        ]
    for key in layout.floats:
        out += [
            Case(
                f"ints {key}", data_of(key, lambda a: a.astype(np.int32)), rf"'{key}' has dtype int32, expected float"
            ),
            Case(f"NaN {key}", edit(set_value(key, np.nan)), r"NaN or infinite"),
            Case(f"+inf {key}", edit(set_value(key, np.inf)), r"NaN or infinite"),
            Case(f"-inf {key}", edit(set_value(key, -np.inf)), r"NaN or infinite"),
        ]
    for key in layout.ints:
        out.append(Case(f"floats {key}", data_of(key, lambda a: a.astype(np.float32)), rf"'{key}' has dtype float32"))
    for key in layout.units:
        out.append(Case(f"unit {key}", dataset_attrs(key, unit="TeV"), rf"'{key}' is in TeV"))
    for key, column in layout.not_negative:
        out.append(Case(f"negative {key}[{column}]", edit(set_value(key, -1, column)), r"negative|finite and positive"))
    for key, column, slots in layout.counts:
        out += [
            Case(
                f"count above slots {key}", edit(set_value(key, slots + 1, column)), rf"'{key}' must be in 0..{slots}"
            ),
            Case(f"negative count {key}", edit(set_value(key, -1, column)), rf"'{key}' must be in 0..{slots}"),
        ]
        if key in layout.floats:
            out.append(Case(f"fractional {key}", edit(set_value(key, 1.5, column)), rf"'{key}' must be in 0..{slots}"))
    return out


# ------------------------------------------------------------------ running a case


def outcome(layout: Layout, path: Path, expect: str | None, good_arrays) -> tuple[str, str]:
    """("refused" | "accepted" | "unclear" | "crash", detail). "unclear": refused, but the
    message does not name the file or not the expected problem; "accepted" with different
    data than the good file counts as a crash (silent corruption)."""
    import re

    try:
        sample = layout.read(path)
    except (ValueError, FileNotFoundError) as err:
        text = str(err)
        if str(path) not in text or (expect is not None and not re.search(expect, text)):
            return "unclear", text
        return "refused", text
    except Exception as err:  # anything else is what the corpus hunts
        return "crash", f"{type(err).__name__}: {err}"
    if not all(np.array_equal(a, b) for a, b in zip(arrays(sample), good_arrays)):
        return "crash", "accepted with data different from the good file"
    return "accepted", ""


def arrays(sample):
    if isinstance(sample, JetSample):
        return sample.particles, sample.jets
    if isinstance(sample, ShowerSample):
        return sample.incident_energies, sample.showers
    return sample.muons, sample.jets, sample.n_jets, sample.members


# reader -> "corpus" (bad files), "good variants", "byte flips" -> outcome -> count
COUNTS: dict[str, dict[str, Counter]] = {name: {} for name in LAYOUTS}


def count(reader: str, group: str, result: str) -> None:
    COUNTS[reader].setdefault(group, Counter())[result] += 1


ALL_CASES = [(name, case) for name, layout in LAYOUTS.items() for case in cases(layout)]


@pytest.fixture(scope="module")
def good_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("good")
    out = {}
    for name, layout in LAYOUTS.items():
        path = root / f"{name}.h5"
        layout.good(path)
        out[name] = (path, arrays(layout.read(path)))
    return out


@pytest.mark.parametrize("reader, case", ALL_CASES, ids=[f"{n}-{c.name}" for n, c in ALL_CASES])
def test_bad_file_is_refused_naming_file_and_problem(reader, case, good_files, tmp_path):
    layout = LAYOUTS[reader]
    good, good_arrays = good_files[reader]
    bad = tmp_path / f"bad_{reader}.h5"
    case.make(layout, good, bad, tmp_path)
    result, detail = outcome(layout, bad, case.expect, good_arrays)
    count(reader, "good variants" if case.expect is None else "corpus", result)
    assert result == ("accepted" if case.expect is None else "refused"), detail


FLIPS = 24  # offsets per region: the metadata before the first chunk, each dataset's values, the metadata after


def flip_offsets(path: Path) -> np.ndarray:
    regions = sorted(data_regions(path).values())
    size = path.stat().st_size
    last = max(start + used for start, used in regions)
    spans = [(0, regions[0][0]), *regions, (last, size - last)]
    return np.unique(np.concatenate([start + np.linspace(0, n - 1, FLIPS).astype(int) for start, n in spans if n > 0]))


@pytest.mark.parametrize("reader", sorted(LAYOUTS))
def test_flipped_bytes_anywhere_are_refused_or_harmless(reader, good_files, tmp_path):
    layout = LAYOUTS[reader]
    good, good_arrays = good_files[reader]
    raw = good.read_bytes()
    seen = Counter()
    for k, offset in enumerate(flip_offsets(good)):
        bad = tmp_path / f"flip{k}.h5"
        flipped = bytearray(raw)
        flipped[offset] ^= 0xFF
        bad.write_bytes(bytes(flipped))
        result, detail = outcome(layout, bad, None, good_arrays)
        seen[result] += 1
        count(reader, "byte flips", result)
        assert result in ("refused", "accepted"), f"byte {offset}: {result}: {detail}"
    # Every flip in the values is refused (the checksums); unused metadata bytes may be harmless.
    assert seen["refused"] >= FLIPS * len(data_regions(good)), seen


def test_missing_file_is_named(tmp_path):
    for layout in LAYOUTS.values():
        with pytest.raises(FileNotFoundError, match="nope.h5: no such file"):
            layout.read(tmp_path / "nope.h5")


def test_external_storage_is_refused_before_reading_the_other_file(good_files, tmp_path):
    edit(external_storage("showers"))(LAYOUTS["showers"], good_files["showers"][0], tmp_path / "bad.h5", tmp_path)
    # The external file becomes a FIFO: reading a byte of it would block the test forever.
    (tmp_path / "secret.bin").unlink()
    os.mkfifo(tmp_path / "secret.bin")
    with pytest.raises(ValueError, match="keeps its data in external file"):
        read_showers(tmp_path / "bad.h5")


# ------------------------------------------------------------------ through the CLI

TRAIN = {
    "jets": ["train", "jets", "--epochs", "1"],
    "showers": ["train", "calo", "--epochs", "1"],
    "events": ["train", "events", "--model", "cfm", "--epochs", "1"],
}
# A representative subset per reader: damaged bytes, a value defect, a storage defect.
CLI_CASES = (
    "truncated at 0.5",
    "flipped data byte",
    "NaN",
    "external storage",
    "declares 10^12 rows",
    "future format_version",
)


def cli_subset(reader):
    picked = []
    for wanted in CLI_CASES:
        picked += [c for c in cases(LAYOUTS[reader]) if c.name.startswith(wanted)][:1]
    return picked


@pytest.mark.parametrize("reader", sorted(LAYOUTS))
def test_cli_refuses_bad_data_in_one_line(reader, good_files, tmp_path, capsys):
    good, _ = good_files[reader]
    for case in cli_subset(reader):
        bad = tmp_path / f"{case.name.replace(' ', '_')}.h5"
        case.make(LAYOUTS[reader], good, bad, tmp_path)
        out = tmp_path / "model.pt"
        assert main([*TRAIN[reader], "--data", str(bad), "-o", str(out), "--quiet"]) == 1, case.name
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and str(bad) in err[0] and "error:" in err[0], (case.name, err)
        assert not out.exists()


def test_cli_process_prints_one_line_and_no_traceback(good_files, tmp_path):
    """The real process: no warning, no traceback, one line, exit 1, for one bad file per reader."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parents[2]), os.environ.get("PYTHONPATH")])),
    }
    for reader, wanted in (
        ("jets", "complex particle_features"),
        ("showers", "negative showers"),
        ("events", "external storage muons"),
    ):
        case = next(c for c in cases(LAYOUTS[reader]) if c.name.startswith(wanted))
        bad = tmp_path / f"{reader}.h5"
        case.make(LAYOUTS[reader], good_files[reader][0], bad, tmp_path)
        run = subprocess.run(
            [sys.executable, "-m", "hepgen", *TRAIN[reader], "--data", str(bad), "-o", str(tmp_path / "m.pt")],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        lines = run.stderr.strip().splitlines()
        assert run.returncode == 1 and len(lines) == 1 and str(bad) in lines[0], run.stderr


def teardown_module(module):
    target = os.environ.get("HEPGEN_BAD_FILES_COUNTS")
    if target:
        Path(target).write_text(json.dumps(COUNTS, indent=1, sort_keys=True))
