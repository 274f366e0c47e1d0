"""`hepgen data --shard i/n` and `hepgen data merge`, and `hepgen data` under torchrun: the union
of the shards is the single-machine file for the same seed."""

import importlib.util
import subprocess
import sys

import pytest
from generate_helpers import LAUNCH_TIMEOUT_S, assert_same_file, attrs_of, child_env, torchrun

from hepgen.cli import main

SHOWERS = ["data", "showers", "-n", "95", "--chunk-size", "10", "--seed", "4", "--quiet"]  # 10 chunks, the last short


def _single(tmp_path, argv=SHOWERS, workers="2"):
    """The single-machine file, by a child process: its worker pool must not start from
    inside pytest (spawned workers would re-run pytest's __main__)."""
    path = tmp_path / "single.h5"
    command = [sys.executable, "-m", "hepgen", *argv, "--workers", workers, "-o", str(path)]
    done = subprocess.run(
        command, cwd=tmp_path, env=child_env(), capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return path


def _shards(tmp_path, n, argv=SHOWERS):
    paths = []
    for i in range(n):
        paths.append(tmp_path / f"shard{i}.h5")
        assert main([*argv, "--workers", "1", "--shard", f"{i}/{n}", "-o", str(paths[-1])]) == 0
    return paths


def test_merged_shards_are_the_single_machine_file(tmp_path, capsys):
    single = _single(tmp_path)
    shards = _shards(tmp_path, 3)
    assert [attrs_of(p)["n"] for p in shards] == [30, 30, 35]
    assert "wrote shard 2/3 (35 of 95 showers)" in capsys.readouterr().err
    merged = tmp_path / "merged.h5"
    assert main(["data", "merge", "-o", str(merged), *map(str, reversed(shards))]) == 0
    assert_same_file(single, merged)


def test_merge_names_missing_chunks_and_refuses_another_run(tmp_path, capsys):
    shards = _shards(tmp_path, 3)
    assert main(["data", "merge", "-o", str(tmp_path / "m.h5"), str(shards[0]), str(shards[2])]) == 1
    assert "3 of 10 chunks are missing (3-5)" in capsys.readouterr().err
    other = tmp_path / "other.h5"
    assert main([*SHOWERS[:-3], "--seed", "5", "--workers", "1", "--shard", "1/3", "-o", str(other)]) == 0
    assert main(["data", "merge", "-o", str(tmp_path / "m.h5"), str(shards[0]), str(other), str(shards[2])]) == 1
    assert "parts of different runs" in capsys.readouterr().err
    assert not (tmp_path / "m.h5").exists()


def test_more_shards_than_chunks_and_bad_shard_values(tmp_path, capsys):
    # 10 chunks in 12 blocks: two blocks are empty, the first of them block 0.
    assert main([*SHOWERS, "--workers", "1", "--shard", "0/12", "-o", str(tmp_path / "s.h5")]) == 0
    assert "nothing to make" in capsys.readouterr().err and not (tmp_path / "s.h5").exists()
    for bad in ("3/3", "-1/2", "1", "a/b", "0/0"):
        with pytest.raises(SystemExit) as stop:
            main([*SHOWERS, f"--shard={bad}", "-o", str(tmp_path / "x.h5")])
        assert stop.value.code == 2 and "argument --shard: expected I/N" in capsys.readouterr().err


def test_two_ranks_under_torchrun_write_the_single_machine_file(tmp_path):
    single = _single(tmp_path)
    out = tmp_path / "ranks.h5"
    done = torchrun(*SHOWERS, "--workers", "1", "-o", str(out), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "(2 ranks)" in done.stderr
    assert_same_file(single, out)


@pytest.mark.slow
@pytest.mark.skipif(importlib.util.find_spec("pythia8mc") is None, reason="needs the pythia extra")
def test_pythia_jet_shards_are_the_single_machine_file(tmp_path):
    jets = ["data", "jets", "-n", "40", "--chunk-size", "20", "--seed", "4", "--quiet"]
    single = _single(tmp_path, jets, workers="1")
    merged = tmp_path / "merged.h5"
    assert main(["data", "merge", "-o", str(merged), *map(str, _shards(tmp_path, 2, jets))]) == 0
    assert_same_file(single, merged)


def test_one_process_resumes_what_the_ranks_left_in_the_parts(tmp_path, capsys):
    from hepgen.distributed.generate import parts_dir

    single = _single(tmp_path)
    out = tmp_path / "resumed.h5"
    # What an interrupted 2-rank run leaves: rank 1's finished part; rank 0's never came.
    parts_dir(out).mkdir()
    (rank1,) = _shards(tmp_path, 2)[1:]
    rank1.rename(parts_dir(out) / "part-001-rank00001-of-00002.h5")
    assert main([*SHOWERS, "--workers", "1", "-o", str(out)]) == 0
    assert "resuming: 5 of 10 chunks" in capsys.readouterr().err
    assert_same_file(single, out)
