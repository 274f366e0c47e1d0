"""hepgen train jets → hepgen generate jets, end to end on tiny sizes, resuming, and errors."""

import numpy as np
import pytest
import torch
from jet_toys import toy_jets

import hepgen.models
from hepgen.cli import main
from hepgen.data import JetSample, read_jets, write_jets
from hepgen.models.epic import read_train_state


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("jets") / "jets.h5"
    write_jets(path, JetSample(*toy_jets(120, seed=7)))
    return path


TINY = ["--hidden", "8", "--latent", "4", "--layers", "1", "--batch-size", "40", "--quiet"]


@pytest.fixture(scope="module")
def checkpoint(data_file):
    torch.set_num_threads(1)
    path = data_file.parent / "fm.pt"
    assert main(["train", "jets", "--data", str(data_file), "-o", str(path), "--epochs", "1", *TINY]) == 0
    return path


def test_train_then_generate(checkpoint, tmp_path, capsys):
    out = tmp_path / "gen.h5"
    assert (
        main(
            [
                "generate",
                "jets",
                "--model",
                str(checkpoint),
                "-n",
                "25",
                "--batch-size",
                "10",
                "--steps",
                "2",
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    sample = read_jets(out)
    assert sample.particles.shape == (25, 8, 4) and np.isfinite(sample.particles).all()
    assert (sample.particles[~sample.mask] == 0).all()
    assert (sample.mask.sum(1) == sample.jets[:, 3]).all()
    assert sample.attrs["generator"] == "hepgen epic-fm" and sample.attrs["nfe"] == 4
    assert sample.attrs["complete"]
    assert main(["generate", "jets", "--model", str(checkpoint), "-n", "5", "-o", str(out)]) == 1
    assert "exists" in capsys.readouterr().err
    again = tmp_path / "again.h5"
    assert (
        main(
            [
                "generate",
                "jets",
                "--model",
                str(checkpoint),
                "-n",
                "25",
                "--batch-size",
                "10",
                "--steps",
                "2",
                "-o",
                str(again),
                "--quiet",
            ]
        )
        == 0
    )
    assert np.array_equal(read_jets(again).particles, sample.particles)  # same seed, same jets


def test_resume_continues_the_run(data_file, tmp_path):
    path = tmp_path / "jedi.pt"
    base = ["train", "jets", "--model", "epic-jedi", "--data", str(data_file), "-o", str(path), *TINY]
    assert main(base + ["--epochs", "1"]) == 0
    assert main(base + ["--epochs", "2", "--resume"]) == 0
    extra, state = hepgen.models.load(path).provenance, read_train_state(path)
    assert extra["epochs"] == 2 and len(extra["losses"]) == 2 and state["epoch"] == 2
    out = tmp_path / "gen.h5"
    assert (
        main(
            [
                "generate",
                "jets",
                "--model",
                str(path),
                "-n",
                "6",
                "--method",
                "ddim",
                "--steps",
                "3",
                "-o",
                str(out),
                "--quiet",
            ]
        )
        == 0
    )
    assert read_jets(out).attrs["generator"] == "hepgen epic-jedi"


def test_generate_errors_leave_no_file(checkpoint, tmp_path, capsys):
    out = tmp_path / "bad.h5"
    base = ["generate", "jets", "--model", str(checkpoint), "-n", "5", "-o", str(out)]
    assert main(base + ["--method", "em"]) == 1
    assert "method must be one of" in capsys.readouterr().err
    for argv, message in [
        (["--steps", "0"], "argument --steps: expected a positive integer"),
        (["--batch-size", "0"], "argument --batch-size: expected a positive integer"),
        (["-n", "0"], "argument -n: expected a positive integer"),
    ]:
        with pytest.raises(SystemExit):
            main(base + argv)
        assert message in capsys.readouterr().err
    assert not list(tmp_path.iterdir())


def test_old_spellings_train_the_same_model(data_file, tmp_path, capsys):
    new, old = tmp_path / "new.pt", tmp_path / "old.pt"
    common = ["train", "jets", "--data", str(data_file), "--epochs", "1", *TINY]
    assert main(common + ["-o", str(new), "--learning-rate", "3e-3", "--max-samples", "80"]) == 0
    capsys.readouterr()
    assert main(common + ["-o", str(old), "--lr", "3e-3", "--max-jets", "80"]) == 0
    err = capsys.readouterr().err
    assert "--lr is deprecated" in err and "use --learning-rate" in err and "use --max-samples" in err
    a, b = hepgen.models.load(new), hepgen.models.load(old)
    extra_a, extra_b = a.provenance, b.provenance
    assert extra_a["n_train"] == extra_b["n_train"] == 80 and extra_a["settings"] == extra_b["settings"]
    for (name, p), (_, q) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(p, q), name


def test_train_errors(data_file, checkpoint, tmp_path, capsys):
    assert main(["train", "jets", "--data", str(data_file), "-o", str(checkpoint), *TINY]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["train", "jets", "--data", str(data_file), "-o", str(tmp_path / "x.pt"), "--resume"]) == 1
    assert "does not exist" in capsys.readouterr().err
    assert main(["train", "jets", "--data", str(data_file), "-o", str(tmp_path / "x.pt"), "--particles", "30"]) == 1
    assert "has only 8 particle slots" in capsys.readouterr().err
    assert main(["generate", "jets", "--model", str(data_file), "-n", "5", "-o", str(tmp_path / "y.h5")]) == 1
    assert "not a readable hepgen checkpoint" in capsys.readouterr().err
