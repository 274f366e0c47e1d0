"""hepgen train calo → hepgen generate calo, end to end on tiny sizes, and its errors."""

import numpy as np
import pytest
import torch

from hepgen.cli import main
from hepgen.data import GFlashSimulator, read_showers, write_showers


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("calo") / "showers.h5"
    sample = GFlashSimulator().sample(300, np.random.default_rng(0), (1024.0, 8192.0))
    write_showers(path, sample)
    return path


@pytest.fixture(scope="module")
def checkpoint(data_file):
    torch.set_num_threads(1)
    path = data_file.parent / "calo.pt"
    assert (
        main(
            [
                "train",
                "calo",
                "--data",
                str(data_file),
                "-o",
                str(path),
                "--epochs",
                "1",
                "--batch-size",
                "100",
                "--latent",
                "4",
                "--hidden",
                "64",
                "64",
                "--quiet",
            ]
        )
        == 0
    )
    return path


def test_train_then_generate(checkpoint, tmp_path, capsys):
    out = tmp_path / "gen.h5"
    assert main(["generate", "calo", "--model", str(checkpoint), "-n", "25", "--batch-size", "10", "-o", str(out)]) == 0
    sample = read_showers(out)
    assert sample.showers.shape == (25, 368) and np.isfinite(sample.showers).all()
    # dataset 1 energies within the training range 1-8 GeV
    assert set(np.unique(sample.incident_energies)) <= {1024.0, 2048.0, 4096.0, 8192.0}
    assert sample.attrs["generator"] == "hepgen CaloMan"
    # Streamed in chunks of --batch-size, chunk k seeded from (--seed, k): the same showers
    # as one library call, and as the chunks made one by one in any order (another process).
    import hepgen.models

    model = hepgen.models.load(checkpoint)
    whole = model.sample(25, seed=0, batch_size=10)
    assert np.array_equal(whole.showers, sample.showers)
    assert np.array_equal(whole.incident_energies, sample.incident_energies)
    parts = dict(zip([2, 0, 1], model.sample_chunks(25, seed=0, chunk_size=10, chunks=[2, 0, 1])))
    assert np.array_equal(np.concatenate([parts[k].showers for k in range(3)]), sample.showers)
    assert sample.attrs["seed"] == 0 and sample.attrs["seeding"] == "per-chunk"
    assert main(["generate", "calo", "--model", str(checkpoint), "-n", "5", "-o", str(out), "--energy", "2048"]) == 1
    assert "exists" in capsys.readouterr().err
    assert (
        main(
            [
                "generate",
                "calo",
                "--model",
                str(checkpoint),
                "-n",
                "5",
                "-o",
                str(out),
                "--energy",
                "2048",
                "--force",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    again = tmp_path / "again.h5"
    assert (
        main(
            [
                "generate",
                "calo",
                "--model",
                str(checkpoint),
                "-n",
                "5",
                "-o",
                str(again),
                "--energy",
                "2048",
                "--seed",
                "3",
            ]
        )
        == 0
    )
    first, second = read_showers(out), read_showers(again)
    assert (first.incident_energies == 2048).all()
    assert np.array_equal(first.showers, second.showers)  # same seed, same showers


def test_generate_errors_leave_no_file(checkpoint, tmp_path, capsys):
    out = tmp_path / "bad.h5"
    base = ["generate", "calo", "--model", str(checkpoint), "-n", "5", "-o", str(out)]
    assert main(base + ["--energy", "1e8"]) == 1
    assert "training range" in capsys.readouterr().err
    for argv, message in [
        (["--energy", "-5"], "argument --energy: expected a positive number"),
        (["--batch-size", "0"], "argument --batch-size: expected a positive integer"),
        (["-n", "0"], "argument -n: expected a positive integer"),
    ]:
        with pytest.raises(SystemExit):
            main(base + argv)
        assert message in capsys.readouterr().err
    assert not out.exists() and not list(tmp_path.iterdir())


def test_generate_rejects_a_foreign_checkpoint(tmp_path, capsys):
    foreign = tmp_path / "jets.pt"
    torch.save({"format": "hepgen.epic_fm", "version": 1}, foreign)
    assert main(["generate", "calo", "--model", str(foreign), "-n", "5", "-o", str(tmp_path / "x.h5")]) == 1
    err = capsys.readouterr().err
    assert "jets.pt" in err and "hepgen.epic_fm" in err


def test_train_errors(data_file, checkpoint, tmp_path, capsys):
    assert main(["train", "calo", "--data", str(data_file), "-o", str(checkpoint), "--epochs", "1", "--quiet"]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["train", "calo", "--data", str(tmp_path / "nope.h5"), "-o", str(tmp_path / "c.pt")]) == 1
    assert "no such file" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["train", "calo", "--data", str(data_file), "-o", str(tmp_path / "c.pt"), "--epochs", "0"])
    assert "argument --epochs: expected a positive integer" in capsys.readouterr().err
    assert not (tmp_path / "c.pt").exists()


def test_help_lists_train_and_generate(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "train" in out and "generate" in out
