"""hepgen.distributed.generate in one process: splitting, part files, interrupts, resuming, joining."""

import h5py
import numpy as np
import pytest
from generate_helpers import assert_same_file

from hepgen.data._h5 import ChunkedWriter
from hepgen.distributed.generate import (
    describe_chunks,
    join_parts,
    part_attrs,
    parts_dir,
    read_part,
    run_in_parts,
    split_chunks,
)

LAYOUT = {"x": ((2,), np.float32, "GeV"), "k": ((), np.int64, None)}
SIZES = [4, 4, 4, 4, 4, 4, 3]  # 27 samples in chunks of 4
RUN = {"command": "toy", "n": 27, "seed": 1, "chunk_size": 4}


def chunk(k: int) -> dict:
    """Chunk k of the toy run: its content depends on k alone, as the models' chunks do."""
    rng = np.random.default_rng(k)
    return {"x": rng.normal(size=(SIZES[k], 2)).astype(np.float32), "k": np.full(SIZES[k], k)}


def writer_of(asked, stop_after=None):
    """A write_part that records the chunks it is asked for and, with ``stop_after``, is
    interrupted (KeyboardInterrupt, as Ctrl-C) after that many chunks."""

    def write_part(path, chunks, attrs):
        asked.append(list(chunks))
        with ChunkedWriter(path, LAYOUT, {"generator": "toy", **attrs}) as writer:
            for i, k in enumerate(chunks):
                if stop_after is not None and i == stop_after:
                    raise KeyboardInterrupt
                writer.append(chunk(k))

    return write_part


def direct_file(path):
    with ChunkedWriter(path, LAYOUT, {"generator": "toy"}) as writer:
        for k in range(len(SIZES)):
            writer.append(chunk(k))
    return path


def test_split_chunks_gives_contiguous_blocks_covering_every_chunk_once():
    for n in (0, 1, 5, 7, 100):
        for world in (1, 2, 3, 8):
            blocks = split_chunks(range(n), world)
            assert len(blocks) == world and [k for b in blocks for k in b] == list(range(n))
            assert max(map(len, blocks)) - min(map(len, blocks)) <= 1
    assert split_chunks([2, 3, 9, 10], 2) == [[2, 3], [9, 10]]
    assert describe_chunks([9, 1, 2, 3, 5, 10]) == "1-3, 5, 9-10" and describe_chunks([]) == "none"


def test_one_process_run_in_parts_equals_the_direct_file(tmp_path):
    asked = []
    out = run_in_parts(tmp_path / "out.h5", run=RUN, sizes=SIZES, write_part=writer_of(asked))
    assert out.path == tmp_path / "out.h5" and out.n_chunks_reused == 0 and asked == [list(range(7))]
    assert_same_file(out.path, direct_file(tmp_path / "direct.h5"))
    assert not parts_dir(out.path).exists()  # removed once joined


def test_an_interrupted_run_keeps_a_valid_part_and_a_rerun_makes_only_the_missing_chunks(tmp_path, capsys):
    target = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        run_in_parts(target, run=RUN, sizes=SIZES, write_part=writer_of([], stop_after=3))
    err = capsys.readouterr().err
    assert "holds chunks 0-2" in err and "missing 3-6" in err and "rerun the same command" in err
    assert not target.exists()
    (part_file,) = parts_dir(target).glob("part-*.h5")
    part = read_part(part_file)
    assert not part.complete and [k for k, _, _ in part.finished()] == [0, 1, 2]
    with h5py.File(part_file) as f:
        assert f.attrs["complete"] == False and len(f["x"]) == 12  # noqa: E712 (a numpy bool)

    asked = []
    out = run_in_parts(target, run=RUN, sizes=SIZES, write_part=writer_of(asked))
    assert asked == [[3, 4, 5, 6]] and out.n_chunks_reused == 3
    assert "resuming: 3 of 7 chunks" in capsys.readouterr().err
    assert_same_file(target, direct_file(tmp_path / "direct.h5"))


def test_parts_of_another_run_are_refused_and_force_discards_them(tmp_path):
    target = tmp_path / "out.h5"
    with pytest.raises(KeyboardInterrupt):
        run_in_parts(target, run=RUN, sizes=SIZES, write_part=writer_of([], stop_after=2))
    other = {**RUN, "seed": 2}
    with pytest.raises(ValueError, match="parts of another run.*--force"):
        run_in_parts(target, run=other, sizes=SIZES, write_part=writer_of([]))
    asked = []
    run_in_parts(target, run=other, sizes=SIZES, write_part=writer_of(asked), force=True)
    assert asked == [list(range(7))]


def test_an_error_in_a_part_is_reported_and_leaves_no_output(tmp_path):
    def failing(path, chunks, attrs):
        raise ValueError("the model broke")

    with pytest.raises(RuntimeError, match="rank 0: the model broke.*rerun"):
        run_in_parts(tmp_path / "out.h5", run=RUN, sizes=SIZES, write_part=failing)
    assert not (tmp_path / "out.h5").exists()


def _parts(where, blocks, run=RUN):
    """Part files holding ``blocks`` of chunks (shards), in a new directory ``where``."""
    where.mkdir()
    paths = []
    for i, block in enumerate(blocks):
        path = where / f"shard{i}.h5"
        with ChunkedWriter(path, LAYOUT, {"generator": "toy", **part_attrs(run, block, SIZES)}) as writer:
            for k in block:
                writer.append(chunk(k))
        paths.append(path)
    return paths


def test_join_parts_in_any_order_and_its_refusals(tmp_path):
    a, b, c = _parts(tmp_path / "shards", [[0, 1, 2], [3, 4], [5, 6]])
    assert_same_file(join_parts(tmp_path / "joined.h5", [c, a, b]), direct_file(tmp_path / "direct.h5"))
    with pytest.raises(ValueError, match=r"2 of 7 chunks are missing \(3-4\)"):
        join_parts(tmp_path / "j2.h5", [a, c])
    with pytest.raises(ValueError, match="chunk 3 is in both"):
        join_parts(tmp_path / "j3.h5", [a, b, c, *_parts(tmp_path / "again", [[3]])])
    (other,) = _parts(tmp_path / "other", [[3, 4]], run={**RUN, "seed": 9})
    with pytest.raises(ValueError, match="parts of different runs"):
        join_parts(tmp_path / "j4.h5", [a, other, c])
    with pytest.raises(ValueError, match="not a part of a hepgen run"):
        join_parts(tmp_path / "j5.h5", [direct_file(tmp_path / "plain.h5")])
    with pytest.raises(FileExistsError):
        join_parts(tmp_path / "joined.h5", [a, b, c])
    assert sorted(p.name for p in tmp_path.glob("j*")) == ["joined.h5"]  # a refused join leaves no file
