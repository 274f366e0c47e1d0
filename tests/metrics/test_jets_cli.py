"""`hepgen metrics jets` and `hepgen metrics samplers` end to end on toy jets."""

import json

import numpy as np
import pytest

pytest.importorskip("scipy", reason="the jet metrics need the eval extra (scipy)")

from toys import top_jets, write_jets

from hepgen.cli import main

FAST = ["--batches", "2", "--quiet"]


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("jets")
    rng = np.random.default_rng(0)
    paths = {name: folder / f"{name}.h5" for name in ("a", "b", "small_a", "small_b")}
    write_jets(paths["a"], top_jets(120, rng))
    write_jets(paths["b"], top_jets(120, rng, mass_resolution=0.2))
    # The sampler study computes EFPs of three samples: keep them small.
    write_jets(paths["small_a"], top_jets(40, rng))
    write_jets(paths["small_b"], top_jets(40, rng))
    return paths


def test_jets_report_has_table_json_and_figures(files, tmp_path):
    out = tmp_path / "report"
    code = main(
        [
            "metrics",
            "jets",
            "--generated",
            str(files["b"]),
            "--truth",
            str(files["a"]),
            "-o",
            str(out),
            "--no-fpd-kpd",
            *FAST,
        ]
    )
    assert code == 0
    data = json.loads((out / "metrics.json").read_text())
    # The old spelling, --reference, gives the same report.
    old = tmp_path / "old"
    assert (
        main(
            [
                "metrics",
                "jets",
                "--generated",
                str(files["b"]),
                "--reference",
                str(files["a"]),
                "-o",
                str(old),
                "--no-fpd-kpd",
                *FAST,
            ]
        )
        == 0
    )
    assert json.loads((old / "metrics.json").read_text())["metrics"] == data["metrics"]
    assert {"w1m", "w1p", "w1efp", "w1_jet_mass"} <= set(data["metrics"])
    assert data["n_generated"] == data["n_reference"] == 120
    # The generated file's stored mass was smeared by 20%: its W1 stands far above its error.
    m = data["metrics"]["w1_jet_mass"]
    assert m["value"] > 5 * m["error"]
    figures = {p.name for p in (out / "figures").iterdir()}
    assert figures == {f"{n}.png" for n in ("mass_rel", "pt_rel", "eta_rel", "phi_rel", "multiplicity", "jet_mass")}
    report = (out / "report.md").read_text()
    assert "W1M" in report and "hepgen metrics jets" in report
    for name in figures:
        assert f"figures/{name}" in report


def test_existing_output_and_bad_arguments_write_nothing(files, tmp_path, capsys):
    out = tmp_path / "taken"
    out.mkdir()
    (out / "x").write_text("keep")
    args = ["metrics", "jets", "--generated", str(files["b"]), "--truth", str(files["a"]), *FAST]
    assert main([*args, "-o", str(out)]) == 1
    assert "pass --force" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*args, "-o", str(tmp_path / "r"), "--n-eval", "1"])
    assert "argument --n-eval: expected an integer >= 2" in capsys.readouterr().err
    assert (
        main(
            [
                "metrics",
                "jets",
                "--generated",
                str(tmp_path / "missing.h5"),
                "--truth",
                str(files["a"]),
                "-o",
                str(tmp_path / "r"),
                *FAST,
            ]
        )
        == 1
    )
    assert not (tmp_path / "r").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


@pytest.fixture(scope="module")
def checkpoint(files, tmp_path_factory):
    from hepgen.data import read_jets
    from hepgen.models.epic import EPiCConfig, TrainSettings, save_checkpoint, train_epic

    sample = read_jets(files["a"])
    state = train_epic(
        sample.particles, sample.jets, EPiCConfig(hidden=8, latent=4, layers=1), TrainSettings(epochs=1, batch_size=64)
    )
    path = tmp_path_factory.mktemp("model") / "tiny.pt"
    save_checkpoint(state.model, path)
    return path


def test_samplers_report(files, checkpoint, tmp_path):
    out = tmp_path / "study"
    code = main(
        [
            "metrics",
            "samplers",
            "--model",
            str(checkpoint),
            "--truth",
            str(files["small_a"]),
            "--floor",
            str(files["small_b"]),
            "-o",
            str(out),
            "-n",
            "40",
            "--samplers",
            "midpoint:100,rk4:3,dopri5:0.1",
            *FAST,
        ]
    )
    assert code == 0
    data = json.loads((out / "results.json").read_text())
    rows = {r["sampler"]: r for r in data["samplers"]}
    assert rows["midpoint 100 steps"]["nfe"] == 200 and rows["rk4 3 steps"]["nfe"] == 12
    assert rows["midpoint 100 steps"]["rms_to_baseline"] == 0
    assert rows["dopri5 rtol=0.1 atol=0.1"]["nfe"] >= 7  # one step at least: 1 + 6 stages
    assert {"fpd", "kpd", "w1efp"} <= set(data["baseline_full"]["metrics"])
    assert (out / "figures" / "w1m_vs_nfe.png").stat().st_size > 0
    assert (out / "baseline" / "figures" / "mass_rel.png").exists()
    report = (out / "report.md").read_text()
    assert "hepgen metrics samplers" in report and "Pythia vs Pythia" in report


def test_sampler_spec_errors(files, tmp_path, capsys):
    from hepgen.metrics.samplers import Sampler

    assert Sampler.parse("rk4:10") == Sampler("rk4", 10)
    assert Sampler.parse("dopri5:1e-3:1e-4") == Sampler("dopri5", None, 1e-3, 1e-4)
    for bad in ("rk4", "rk4:0", "dopri5", "dopri5:-1", "midpoint:x"):
        with pytest.raises(ValueError, match="expected METHOD:STEPS"):
            Sampler.parse(bad)
    assert (
        main(
            [
                "metrics",
                "samplers",
                "--truth",
                str(files["a"]),
                "-o",
                str(tmp_path / "s"),
                "--samplers",
                "rk4:x",
                "--quiet",
            ]
        )
        == 1
    )
    assert "sampler 'rk4:x'" in capsys.readouterr().err
