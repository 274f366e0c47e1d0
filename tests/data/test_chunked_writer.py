"""ChunkedWriter: finished files, interrupted files, failed files, overwrite protection."""

import h5py
import numpy as np
import pytest

from hepgen.data._h5 import FORMAT_VERSION, ChunkedWriter, WriteInterrupted, partial_path, read_dataset, reading

LAYOUT = {"x": ((3,), np.float32, "GeV"), "k": ((), np.int64, None)}


def chunk(start, n):
    return {"x": np.full((n, 3), start, np.float32), "k": np.arange(start, start + n)}


def test_finished_file_has_all_chunks_and_attrs(tmp_path):
    path = tmp_path / "out.h5"
    with ChunkedWriter(path, LAYOUT, {"seed": 3, "names": ["a", "b"]}) as writer:
        writer.append(chunk(0, 4))
        writer.append(chunk(4, 2))
    assert not partial_path(path).exists()
    with h5py.File(path) as f:
        assert f["x"].shape == (6, 3) and f["x"].attrs["unit"] == "GeV"
        np.testing.assert_array_equal(f["k"][()], np.arange(6))
        assert f.attrs["complete"] and f.attrs["n"] == 6 and f.attrs["seed"] == 3
        assert [s.decode() if isinstance(s, bytes) else s for s in f.attrs["names"]] == ["a", "b"]


def test_interrupt_keeps_finished_chunks_beside_the_untouched_target(tmp_path):
    path = tmp_path / "out.h5"
    path.write_bytes(b"previous")
    with pytest.raises(WriteInterrupted) as stop, ChunkedWriter(path, LAYOUT, force=True) as writer:
        writer.append(chunk(0, 4))
        writer.append(chunk(4, 4))
        raise KeyboardInterrupt
    assert path.read_bytes() == b"previous"
    assert stop.value.kept == partial_path(path) and stop.value.n_written == 8
    assert "keeps the 8 finished rows" in stop.value.describe()
    with h5py.File(partial_path(path)) as f:
        assert f["x"].shape == (8, 3) and not f.attrs["complete"] and f.attrs["n"] == 8
    assert len(read_checked(partial_path(path))) == 8
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.h5", "out.h5.partial"]


def read_checked(path):
    """The kept file is a valid file: its checksums match."""
    with reading(path) as f:
        return read_dataset(f, "x", (None, 3), kind="float")


def test_writers_of_one_target_use_their_own_scratch_files(tmp_path):
    path = tmp_path / "out.h5"
    first, second = ChunkedWriter(path, LAYOUT), ChunkedWriter(path, LAYOUT, force=True)
    assert first.partial != second.partial
    assert first.partial.name.startswith("out.h5.partial-") and first.partial.exists()
    first.append(chunk(0, 2))
    second.append(chunk(10, 3))
    assert second.finish() == path
    # Without force, a target made by another writer meanwhile is not replaced.
    with pytest.raises(FileExistsError, match="created by another process"):
        first.finish()
    with h5py.File(path) as f:
        assert f["x"].shape == (3, 3)
    with h5py.File(partial_path(path)) as f:
        assert f["x"].shape == (2, 3)


def test_checksums_are_written_and_checked(tmp_path):
    path = tmp_path / "out.h5"
    with ChunkedWriter(path, LAYOUT) as writer:
        writer.append(chunk(0, 4))
        writer.append({"x": np.arange(6.0).reshape(2, 3), "k": np.arange(2)})  # float64 stored as float32
    with reading(path) as f:
        np.testing.assert_array_equal(read_dataset(f, "x", (None, 3))[4:], np.arange(6.0).reshape(2, 3))
        assert f.attrs["format_version"] == FORMAT_VERSION and f["x"].attrs["checksum"].startswith("crc32:")
    with h5py.File(path, "r+") as f:
        f["x"][1, 1] += 1
    with reading(path) as f, pytest.raises(ValueError, match="'x' fails its checksum"):
        read_dataset(f, "x", (None, 3))


def test_interrupt_before_any_chunk_leaves_no_file(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt), ChunkedWriter(path, LAYOUT):
        raise KeyboardInterrupt
    assert not path.exists() and not partial_path(path).exists()


def test_failure_leaves_no_file(tmp_path):
    path = tmp_path / "out.h5"
    with pytest.raises(RuntimeError), ChunkedWriter(path, LAYOUT) as writer:
        writer.append(chunk(0, 4))
        raise RuntimeError("generator broke")
    assert not list(tmp_path.iterdir())


def test_existing_file_needs_force(tmp_path):
    path = tmp_path / "out.h5"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError, match="--force"):
        ChunkedWriter(path, LAYOUT)
    assert path.read_bytes() == b"precious"
    with ChunkedWriter(path, LAYOUT, force=True) as writer:
        writer.append(chunk(0, 1))
    assert h5py.is_hdf5(path)


def test_chunk_must_match_layout(tmp_path):
    path = tmp_path / "out.h5"
    bad_chunks = [
        ({"x": np.zeros((2, 4), np.float32), "k": np.zeros(2, np.int64)}, "shape"),
        ({"x": np.zeros((2, 3), np.float32)}, "datasets"),
        ({"x": np.zeros((2, 3), np.float32), "k": np.zeros(3, np.int64)}, "length"),
    ]
    for bad, message in bad_chunks:
        with pytest.raises(ValueError, match=message), ChunkedWriter(path, LAYOUT) as writer:
            writer.append(bad)
        assert not path.exists() and not partial_path(path).exists()


def test_read_dataset_names_file_key_and_expectation(tmp_path):
    path = tmp_path / "in.h5"
    with h5py.File(path, "w") as f:
        f["x"] = np.zeros((5, 2))
        f["x"].attrs["unit"] = "MeV"
    with h5py.File(path) as f:
        with pytest.raises(ValueError, match=r"in\.h5: missing dataset 'y'"):
            read_dataset(f, "y", (None,))
        with pytest.raises(ValueError, match=r"'x' has shape \(5, 2\), expected \(N, 3\)"):
            read_dataset(f, "x", (None, 3))
        with pytest.raises(ValueError, match="'x' is in MeV, expected GeV"):
            read_dataset(f, "x", (None, 2), unit="GeV")
        assert read_dataset(f, "x", (5, None), unit="MeV").shape == (5, 2)
