"""`hepgen data`: the command through hepgen.cli.main, errors, and a real Ctrl-C."""

import os
import re
import signal
import subprocess
import sys
import threading
import time

import h5py
import pytest

from hepgen.cli import main
from hepgen.data import CaloGeometry, read_showers


def test_showers_command_writes_a_file(tmp_path, capsys):
    path = tmp_path / "showers.h5"
    assert main(["data", "showers", "-n", "40", "-o", str(path), "--seed", "2", "--workers", "1"]) == 0
    assert len(read_showers(path, CaloGeometry.photons())) == 40
    assert f"wrote 40 showers to {path}" in capsys.readouterr().err


def test_existing_output_needs_force(tmp_path, capsys):
    path = tmp_path / "showers.h5"
    path.write_text("old")
    assert main(["data", "showers", "-n", "5", "-o", str(path), "--quiet"]) == 1
    assert "exists; pass --force" in capsys.readouterr().err and path.read_text() == "old"
    assert main(["data", "showers", "-n", "5", "-o", str(path), "--quiet", "--force"]) == 0
    assert h5py.is_hdf5(path)


def test_bad_numbers_are_usage_errors(tmp_path, capsys):
    for bad in (["-n", "0"], ["-n", "5", "--workers", "0"], ["-n", "5", "--chunk-size", "-1"]):
        with pytest.raises(SystemExit) as stop:
            main(["data", "showers", "-o", str(tmp_path / "x.h5"), *bad])
        assert stop.value.code == 2
        assert f"argument {bad[-2]}: expected a positive integer" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["data", "jets", "-n", "5", "-o", str(tmp_path / "x.h5"), "--particles", "40"])
    assert not list(tmp_path.iterdir())


def test_jets_without_pythia_says_how_to_install(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "pythia8mc", None)  # import fails as if not installed
    assert main(["data", "jets", "-n", "5", "-o", str(tmp_path / "jets.h5")]) == 1
    err = capsys.readouterr().err
    assert "pip install 'hepgen[pythia]'" in err and "Pythia" in err
    assert not (tmp_path / "jets.h5").exists()


RUN_CLI = "import sys, hepgen.cli as c; sys.exit(c.main(sys.argv[1:]))"


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "sigterm"])
def test_interrupt_keeps_a_valid_file_with_the_finished_chunks(tmp_path, stop):
    path = tmp_path / "big.h5"
    python = [sys.executable] + (["-S"] if sys.flags.no_site else [])
    command = python + [
        "-c",
        RUN_CLI,
        "data",
        "showers",
        "-n",
        "2000000",
        "--chunk-size",
        "5000",
        "--workers",
        "2",
        "-o",
        str(path),
    ]
    # stderr is a pipe, where progress bars are off by default: the test reads the bar.
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True, env={**os.environ, "HEPGEN_PROGRESS": "1"})
    seen = []
    reader = threading.Thread(target=lambda: seen.extend(iter(lambda: process.stderr.read(1), "")), daemon=True)
    reader.start()
    # Generous limits: on a loaded shared machine (load 10+ on 2 cores) start-up and the pool's
    # shutdown after the signal were seen to take over a minute.
    deadline = time.time() + 120
    # Wait for the progress bar to pass two chunks, then interrupt (as Ctrl-C would, or a
    # batch system's SIGTERM).
    while time.time() < deadline:
        done = [int(k) for k in re.findall(r"(\d+)/2000000", "".join(seen))]
        if done and max(done) >= 10000:
            break
        assert process.poll() is None, "".join(seen)
        time.sleep(0.1)
    process.send_signal(stop)
    assert process.wait(timeout=180) == 130  # SIGTERM too, as Ctrl-C
    reader.join(timeout=10)
    err = "".join(seen)
    assert "interrupted:" in err and "Traceback" not in err
    # The target is not written; the finished chunks are kept, valid, as FILE.partial.
    assert not path.exists()
    sample = read_showers(tmp_path / "big.h5.partial", CaloGeometry.photons())
    assert 10000 <= len(sample) < 2000000 and len(sample) % 5000 == 0
    assert sample.attrs["complete"] is False or sample.attrs["complete"] == 0
    assert [p.name for p in tmp_path.iterdir()] == ["big.h5.partial"]
