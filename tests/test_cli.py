"""The `hepgen` command line: the assembled commands, the shared options, errors, progress;
info tells the truth, bench prints and records its table."""

import argparse
import json
import os
import re
import subprocess
import sys

import pytest
import torch

from hepgen import _core
from hepgen.cli import COMMANDS, build_parser, main, options, progress

HELP_PATHS = [
    [],
    ["info"],
    ["data"],
    ["data", "jets"],
    ["data", "events"],
    ["data", "showers"],
    ["train"],
    ["train", "calo"],
    ["train", "jets"],
    ["train", "events"],
    ["generate"],
    ["generate", "calo"],
    ["generate", "jets"],
    ["generate", "events"],
    ["evaluate"],
    ["compare"],
    ["compare", "events"],
    ["metrics"],
    ["metrics", "jets"],
    ["metrics", "samplers"],
    ["bench"],
]


def _run(args, env=None, **kwargs):
    python = [sys.executable] + (["-S"] if sys.flags.no_site else [])
    return subprocess.run(python + args, capture_output=True, text=True, env={**os.environ, **(env or {})}, **kwargs)


def test_help_lists_every_command():
    out = _run(["-m", "hepgen.cli", "--help"], check=True).stdout
    assert COMMANDS == ("info", "data", "train", "generate", "evaluate", "compare", "metrics", "bench")
    for command in COMMANDS:
        assert f"    {command} " in out
    assert "--traceback" in out


def test_no_help_imports_torch_h5py_pythia_or_matplotlib():
    # One fresh interpreter for all of them: a --help that imported torch would leave it in sys.modules.
    code = (
        "import sys\n"
        "from hepgen.cli import main\n"
        f"for path in {HELP_PATHS!r}:\n"
        "    try:\n"
        "        main(path + ['--help'])\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 0, (path, e.code)\n"
        "    heavy = [m for m in ('torch', 'h5py', 'pythia8mc', 'matplotlib') if m in sys.modules]\n"
        "    assert not heavy, (path, heavy)\n"
        "print('checked', len(" + repr(HELP_PATHS) + "))\n"
    )
    result = _run(["-c", code])
    assert result.returncode == 0, result.stderr
    assert f"checked {len(HELP_PATHS)}" in result.stdout


def test_help_shows_defaults_and_hides_old_spellings(capsys):
    with pytest.raises(SystemExit):
        main(["train", "jets", "--help"])
    out = capsys.readouterr().out
    assert "--learning-rate LR" in out and "(default: 0.001)" in out and "(default: 1024)" in out
    assert "--seed SEED" in out and "(default: 0)" in out
    assert "--lr" not in out and "--max-jets" not in out
    with pytest.raises(SystemExit):
        main(["bench", "--help"])
    assert "--min-time SECONDS" in capsys.readouterr().out


# --------------------------------------------------------------------------- value checks


@pytest.mark.parametrize(
    "check, good, bad",
    [
        (options.positive_int, {"1": 1, "250": 250}, ["0", "-3", "1.5", "x", ""]),
        (options.non_negative_int, {"0": 0, "7": 7}, ["-1", "2.0", "seven"]),
        (options.int_at_least(2), {"2": 2}, ["1", "0"]),
        (options.positive_float, {"1e-3": 1e-3, "2": 2.0}, ["0", "-1e-3", "nan", "inf", "x"]),
        (options.non_negative_float, {"0": 0.0, "0.5": 0.5}, ["-0.1", "nan"]),
        (options.probability, {"0": 0.0, "1": 1.0, "0.3": 0.3}, ["1.01", "-0.01", "nan"]),
        (options.fraction, {"0.2": 0.2}, ["0", "1", "1.5"]),
        (options.float_in(0, 1, high_open=True), {"0": 0.0, "0.99": 0.99}, ["1", "-1"]),
    ],
)
def test_value_checks(check, good, bad):
    for text, value in good.items():
        assert check(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError, match=re.escape(f"expected {check.__name__}, got {text!r}")):
            check(text)


def test_bad_values_are_usage_errors_naming_the_option(capsys):
    for argv, message in [
        (["data", "showers", "-n", "0", "-o", "x.h5"], "argument -n: expected a positive integer, got '0'"),
        (
            ["train", "jets", "--data", "d.h5", "-o", "c.pt", "--batch-size", "-2"],
            "argument --batch-size: expected a positive integer, got '-2'",
        ),
        (
            ["train", "jets", "--data", "d.h5", "-o", "c.pt", "--learning-rate", "0"],
            "argument --learning-rate: expected a positive number, got '0'",
        ),
        (
            ["train", "jets", "--data", "d.h5", "-o", "c.pt", "--lr", "0"],
            "argument --lr: expected a positive number, got '0'",
        ),
        (
            ["generate", "jets", "-n", "5", "-o", "x.h5", "--seed", "-1"],
            "argument --seed: expected a non-negative integer, got '-1'",
        ),
        (
            ["evaluate", "--truth", "a", "--generated", "b", "-o", "r", "--test-fraction", "1"],
            "argument --test-fraction: expected a number in (0, 1), got '1'",
        ),
        (
            ["metrics", "jets", "--truth", "a", "--generated", "b", "-o", "r", "--batches", "1"],
            "argument --batches: expected an integer >= 2, got '1'",
        ),
        (["bench", "--min-time", "-1"], "argument --min-time: expected a non-negative number, got '-1'"),
    ]:
        with pytest.raises(SystemExit) as stop:
            main(argv)
        assert stop.value.code == 2
        assert message in capsys.readouterr().err


# --------------------------------------------------------------------------- old spellings

# (command, arguments with the old spellings, the same with the new ones)
OLD_AND_NEW = [
    (
        ["train", "jets", "--data", "d.h5", "-o", "c.pt"],
        ["--lr", "3e-4", "--max-jets", "50"],
        ["--learning-rate", "3e-4", "--max-samples", "50"],
    ),
    (
        ["train", "events", "--model", "cfm", "--data", "d.h5", "-o", "c.pt"],
        ["--max-events", "70", "--ode-method", "rk4", "--ode-steps", "20"],
        ["--max-samples", "70", "--method", "rk4", "--steps", "20"],
    ),
    (
        ["evaluate", "--generated", "b.h5", "-o", "r"],
        ["--truth", "a.h5", "--overwrite"],
        ["--truth", "a.h5", "--force"],
    ),
    (
        ["metrics", "jets", "--generated", "b.h5", "-o", "r"],
        ["--reference", "a.h5", "--overwrite", "--max-jets", "9"],
        ["--truth", "a.h5", "--force", "--max-samples", "9"],
    ),
    (["metrics", "samplers", "-o", "r"], ["--reference", "a.h5", "--overwrite"], ["--truth", "a.h5", "--force"]),
]


def _namespace(argv):
    args = vars(build_parser().parse_args(argv))
    args.pop("command_parser")  # the same parser either way, but a fresh object per build
    return args


@pytest.mark.parametrize("command, old, new", OLD_AND_NEW, ids=[" ".join(c[:2]) for c, _, _ in OLD_AND_NEW])
def test_old_spellings_parse_to_the_same_request_and_say_so(command, old, new, capsys):
    assert _namespace(command + old) == _namespace(command + new)
    err = capsys.readouterr().err
    for spelling, replacement in zip(old, new):
        if spelling.startswith("--") and spelling != replacement:
            assert (
                f"hepgen: warning: {spelling} is deprecated and will be removed in the next release; "
                f"use {replacement}" in err
            )
    assert len(err.splitlines()) == sum(1 for a, b in zip(old, new) if a.startswith("--") and a != b)


def test_old_spelling_of_a_required_option_counts_and_a_missing_one_is_refused(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["metrics", "jets", "--generated", "b.h5", "-o", "r"])
    assert stop.value.code == 2 and "the following arguments are required: --truth" in capsys.readouterr().err


def test_compare_takes_generated_files_by_name_or_as_before(tmp_path, capsys):
    from hepgen.cli.compare import _generated_files

    new = build_parser().parse_args(
        ["compare", "events", "--truth", "t.h5", "--generated", "a.h5", "b.h5", "-o", "out"]
    )
    old = build_parser().parse_args(["compare", "events", "a.h5", "b.h5", "--truth", "t.h5", "-o", "out"])
    assert _generated_files(new) == _generated_files(old) == ["a.h5", "b.h5"]
    assert "use --generated FILE ..." in capsys.readouterr().err


# --------------------------------------------------------------------------- --force


def test_existing_output_is_refused_untouched_before_any_work(tmp_path, capsys, monkeypatch):
    import hepgen.cli.data as data_command

    def never(*args, **kwargs):
        raise AssertionError("the command ran although its output exists")

    monkeypatch.setattr(data_command, "_generate", never)
    path = tmp_path / "showers.h5"
    path.write_bytes(b"old contents")
    assert main(["data", "showers", "-n", "5", "-o", str(path)]) == 1
    assert "exists; pass --force to overwrite it" in capsys.readouterr().err
    assert path.read_bytes() == b"old contents" and [p.name for p in tmp_path.iterdir()] == ["showers.h5"]
    report = tmp_path / "report"
    report.mkdir()
    (report / "keep.txt").write_text("old")
    assert main(["evaluate", "--truth", str(path), "--generated", str(path), "-o", str(report)]) == 1
    assert "exists and is not empty; pass --force to replace it" in capsys.readouterr().err
    assert [p.name for p in report.iterdir()] == ["keep.txt"]
    assert main(["data", "showers", "-n", "5", "-o", str(tmp_path / "missing" / "x.h5")]) == 1
    assert "does not exist" in capsys.readouterr().err


# --------------------------------------------------------------------------- errors


def _failing_command(monkeypatch, error):
    import hepgen.cli.info as info_command

    def fail(args):
        raise error

    monkeypatch.setattr(info_command, "run", fail)


def test_errors_are_one_line_with_exit_1(monkeypatch, capsys):
    _failing_command(monkeypatch, ValueError("--thing: expected a widget"))
    assert main(["info"]) == 1
    assert capsys.readouterr().err == "hepgen info: error: --thing: expected a widget\n"
    _failing_command(monkeypatch, ZeroDivisionError("division by zero"))
    assert main(["info"]) == 1
    assert capsys.readouterr().err == (
        "hepgen info: error: ZeroDivisionError: division by zero (rerun with --traceback to report it)\n"
    )


@pytest.mark.parametrize("how", ["before", "after", "environment"])
def test_traceback_flag_and_environment_show_the_traceback(monkeypatch, capsys, how):
    _failing_command(monkeypatch, ZeroDivisionError("division by zero"))
    monkeypatch.delenv("HEPGEN_TRACEBACK", raising=False)
    argv = {"before": ["--traceback", "info"], "after": ["info", "--traceback"], "environment": ["info"]}[how]
    if how == "environment":
        monkeypatch.setenv("HEPGEN_TRACEBACK", "1")
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):") and "in fail" in err
    assert err.endswith(
        "hepgen info: error: ZeroDivisionError: division by zero (rerun with --traceback to report it)\n"
    )


def test_interrupt_prints_interrupted_and_exits_130(monkeypatch, capsys):
    _failing_command(monkeypatch, KeyboardInterrupt())
    monkeypatch.delenv("HEPGEN_TRACEBACK", raising=False)
    assert main(["info"]) == 130
    assert capsys.readouterr().err == "interrupted\n"


# --------------------------------------------------------------------------- progress


def test_progress_convention(monkeypatch):
    monkeypatch.delenv("HEPGEN_PROGRESS", raising=False)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert progress.enabled(quiet=False) and not progress.enabled(quiet=True)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: False, raising=False)
    assert not progress.enabled(quiet=False)
    monkeypatch.setenv("HEPGEN_PROGRESS", "1")
    assert progress.enabled(quiet=False) and not progress.enabled(quiet=True)
    monkeypatch.setenv("HEPGEN_PROGRESS", "0")
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True, raising=False)
    assert not progress.enabled(quiet=False)
    assert progress.over(True, "epoch") is None


def test_bench_shows_each_case_and_quiet_hides_it():
    argv = ["-m", "hepgen.cli", "bench", "pooling", "--quick", "--device", "cpu", "--min-time", "0"]
    shown = _run(argv, env={"HEPGEN_PROGRESS": "1"}, timeout=600)
    assert shown.returncode == 0, shown.stderr
    assert "pooling cpu" in shown.stderr and "3/4" in shown.stderr and "B=64 N=150 D=32 forward" in shown.stderr
    quiet = _run(argv + ["--quiet"], env={"HEPGEN_PROGRESS": "1"}, timeout=600)
    assert quiet.returncode == 0 and "pooling cpu" not in quiet.stderr and "case" not in quiet.stderr
    assert "speedup" in quiet.stdout


def test_quiet_turns_the_library_bars_off(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("HEPGEN_PROGRESS", "1")  # on although stderr is not a terminal here
    argv = ["data", "showers", "-n", "20", "--workers", "1"]
    assert main([*argv, "-o", str(tmp_path / "a.h5")]) == 0
    assert "20/20" in capsys.readouterr().err
    assert main([*argv, "-o", str(tmp_path / "b.h5"), "--quiet"]) == 0
    assert "20/20" not in capsys.readouterr().err


def test_a_suite_counts_its_cases_for_the_bar():
    from hepgen.bench import pooling

    seen = []
    rows = pooling.run("cpu", quick=True, min_time_s=0, progress=lambda *call: seen.append(call))
    assert [(i, total) for i, total, _ in seen] == [(i, len(rows)) for i in range(1, len(rows) + 1)]
    assert [label for _, _, label in seen] == [f"{r.case} {r.direction}" for r in rows]


def test_every_bench_suite_reports_its_cases():
    import importlib
    import inspect

    from hepgen.bench import SUITES

    for name, module in SUITES.items():
        assert "progress" in inspect.signature(importlib.import_module(module).run).parameters, name


# --------------------------------------------------------------------------- info, bench


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
