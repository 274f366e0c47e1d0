"""The `hepgen` command line: info tells the truth, bench prints and records its table."""

import json
import subprocess
import sys

import pytest
import torch

from hepgen import _core
from hepgen.cli import main


def test_help_lists_only_implemented_commands():
    out = subprocess.run([sys.executable, "-m", "hepgen.cli", "--help"], capture_output=True, text=True, check=True).stdout
    for command in ("info", "bench"):
        assert command in out


def test_info_reports_the_build_truthfully(capsys):
    assert main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    built = _core.build_info()
    assert info["core"]["built"] is True
    assert info["core"]["cuda"] == built["cuda"]
    assert info["core"]["openmp"] == built["openmp"]
    assert len(info["gpus"]) == (torch.cuda.device_count() if torch.cuda.is_available() else 0)
    cpu = info["ops"]["set_pool"]["cpu"]
    assert cpu["chosen"] == "cpu" and "reference" in cpu["available"]
    assert "cuda" in cpu["unavailable"]

    assert main(["info"]) == 0
    text = capsys.readouterr().out
    assert "compiled core" in text and "set_pool" in text
    assert ("kernels compiled for sm_" in text) == built["cuda"]


def test_bench_prints_and_records_the_pooling_table(tmp_path, capsys):
    assert main(["bench", "pooling", "--quick", "--device", "cpu", "--min-time", "0.01", "--save", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "plain PyTorch" in out and "speedup" in out
    records = sorted(tmp_path.glob("*_pooling.json"))
    assert len(records) == 1
    record = json.loads(records[0].read_text())
    assert record["suite"] == "pooling" and record["rows"]
    for row in record["rows"]:
        assert row["ours_ms"] > 0 and row["baseline_ms"] > 0
        assert row["speedup"] == pytest.approx(row["baseline_ms"] / row["ours_ms"])
    assert (tmp_path / records[0].name.replace(".json", ".md")).exists()


def test_bench_unknown_suite_is_an_error(capsys):
    assert main(["bench", "nonesuch"]) == 1
    assert "unknown suite nonesuch" in capsys.readouterr().err


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_bench_cuda_without_gpu_is_an_error(capsys):
    assert main(["bench", "--device", "cuda"]) == 1
    assert "torch sees no GPU" in capsys.readouterr().err
