"""`hepgen evaluate` end to end: kind detection, the report's files, all-or-nothing writes."""

import json

import numpy as np
import pytest
from toys import photon_showers, top_jets, write_events, write_h5, write_jets, write_showers, z_events

from hepgen.cli import main
from hepgen.metrics.features import detect_kind

FAST = ["--epochs", "3", "--layers", "2", "--units", "32", "--batch-size", "256", "--quiet", "--threads", "1"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("samples")
    rng = np.random.default_rng(0)
    paths = {}
    write_events(paths.setdefault("events_a", folder / "events_a.h5"), z_events(2000, rng))
    write_events(paths.setdefault("events_b", folder / "events_b.h5"), z_events(2000, rng, muon_pt_resolution=0.05))
    write_jets(paths.setdefault("jets", folder / "jets.h5"), top_jets(200, rng))
    write_showers(paths.setdefault("showers", folder / "showers.h5"), photon_showers(200, rng))
    events = z_events(300, rng)
    events.muons[5, 0, 0] = np.nan
    write_events(paths.setdefault("events_nan", folder / "events_nan.h5"), events)
    write_h5(paths.setdefault("unknown", folder / "unknown.h5"), x=np.zeros((10, 2)))
    return paths


def test_detect_kind(files):
    assert detect_kind(files["events_a"]) == "events"
    assert detect_kind(files["jets"]) == "jets"
    assert detect_kind(files["showers"]) == "showers"
    with pytest.raises(ValueError, match="cannot tell the sample kind"):
        detect_kind(files["unknown"])


def test_report_has_markdown_json_and_figures(files, tmp_path):
    out = tmp_path / "report"
    # Observables of every binning: linear, log, discrete, and undefined in most events.
    code = main(
        [
            "evaluate",
            "--truth",
            str(files["events_a"]),
            "--generated",
            str(files["events_b"]),
            "-o",
            str(out),
            *FAST,
            "--observables",
            "m_mumu,pt_j1,n_jets,dr_j2j3",
        ]
    )
    assert code == 0
    numbers = json.loads((out / "metrics.json").read_text())
    assert numbers["kind"] == "events"
    assert 0.5 < numbers["auc"] <= 1 and numbers["jsd"] < 1
    assert set(numbers["tail_fractions"]["generated"]) == {"w<0.5", "w>2", "w<0.2", "w>5", "w<0.1", "w>10"}
    assert {"full", "test", "test_reweighted", "floor", "floor_test"} <= set(numbers["separation_power"]["m_mumu"])
    assert [g["name"] for g in numbers["groups"]] == ["1 jet", "2 jets", "3 jets"]
    report = (out / "report.md").read_text()
    figures = {p.name for p in (out / "figures").iterdir()}
    assert figures == {"weights.png", "calibration.png"} | {
        f"{plot}_{name}.png" for plot in ("slices", "reweighted") for name in ("m_mumu", "pt_j1", "n_jets", "dr_j2j3")
    }
    for figure in figures:
        assert (out / "figures" / figure).stat().st_size > 1000
        assert f"figures/{figure}" in report
    assert "hepgen evaluate --truth" in report
    # No staging directories left beside the report.
    assert [p.name for p in tmp_path.iterdir()] == ["report"]


def test_existing_report_is_kept_without_force(files, tmp_path, capsys):
    out = tmp_path / "report"
    out.mkdir()
    (out / "keep.txt").write_text("old")
    args = [
        "evaluate",
        "--truth",
        str(files["events_a"]),
        "--generated",
        str(files["events_b"]),
        "-o",
        str(out),
        *FAST,
        "--observables",
        "m_mumu",
    ]
    assert main(args) == 1
    assert "exists and is not empty; pass --force" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]
    assert main([*args, "--force"]) == 0
    assert not (out / "keep.txt").exists() and (out / "report.md").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["report"]
    first = json.loads((out / "metrics.json").read_text())
    # The old spelling, --overwrite, does the same (and says it is deprecated).
    capsys.readouterr()
    assert main([*args, "--overwrite"]) == 0
    assert "--overwrite is deprecated" in capsys.readouterr().err
    again = json.loads((out / "metrics.json").read_text())
    assert again["auc"] == first["auc"] and again["jsd"] == first["jsd"]


@pytest.mark.parametrize(
    "generated, kind, message",
    [
        ("jets", None, "mixing sample kinds: --truth .* holds events, --generated .* holds jets"),
        ("events_b", "showers", "--kind showers: the files hold events"),
        ("events_nan", None, r"events_nan.h5: .* NaN or infinite values"),  # refused by the reader
        ("unknown", None, "cannot tell the sample kind"),
    ],
)
def test_bad_requests_fail_cleanly_and_write_nothing(files, tmp_path, capsys, generated, kind, message):
    out = tmp_path / "report"
    args = ["evaluate", "--truth", str(files["events_a"]), "--generated", str(files[generated]), "-o", str(out), *FAST]
    if kind:
        args += ["--kind", kind]
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.startswith("hepgen evaluate: error:")
    assert __import__("re").search(message, err), err
    assert list(tmp_path.iterdir()) == []


def test_failure_while_writing_leaves_nothing(files, tmp_path, monkeypatch):
    from hepgen.metrics import plots

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(plots, "reweighted_histogram", broken)
    out = tmp_path / "report"
    args = ["evaluate", "--truth", str(files["events_a"]), "--generated", str(files["events_b"]), "-o", str(out), *FAST]
    assert main(args) == 1
    assert list(tmp_path.iterdir()) == []


def test_jets_and_showers_reports(files, tmp_path):
    for kind in ("jets", "showers"):
        out = tmp_path / kind
        code = main(
            [
                "evaluate",
                "--truth",
                str(files[kind]),
                "--generated",
                str(files[kind]),
                "-o",
                str(out),
                *FAST,
                "--max-samples",
                "150",
                *(["--observables", "e_layer2"] if kind == "showers" else ["--observables", "mass", "--particles"]),
            ]
        )
        assert code == 0
        numbers = json.loads((out / "metrics.json").read_text())
        assert numbers["kind"] == kind and numbers["n_truth"] == 150
    assert (tmp_path / "showers" / "figures" / "reweighted_e_layer2.png").exists()
    assert len(list((tmp_path / "showers" / "figures").iterdir())) == 4  # weights, calibration, 2
    assert (tmp_path / "jets" / "figures" / "slices_mass.png").exists()
    assert json.loads((tmp_path / "jets" / "metrics.json").read_text())["settings"]["particles"]
