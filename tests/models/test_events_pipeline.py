"""Event generators end to end on a Z(->mu mu)+jets toy: preprocessing round trip,
training, checkpoints (validated on load), ensembles, event files, plots, precision, CLI."""

import json

import h5py
import numpy as np
import pytest
import torch
from events_toys import Z_MASS, z_file, z_sample

import hepgen.models
from hepgen.cli import main
from hepgen.data.events import EventSample, read_events
from hepgen.metrics.events_precision import precision
from hepgen.models.events import EventModelConfig, EventPreprocessing
from hepgen.models.events.train import train_events

TINY = dict(hidden=32, layers=2, timesteps=50, ode_steps=4)


def test_preprocessing_round_trip_keeps_the_physics():
    sample = z_sample(600, seed=3)
    prep = EventPreprocessing.fit(sample)
    x, n = prep.encode(sample)
    assert x.shape == (600, 17) and torch.isfinite(x).all()
    # Standardised: every real component has mean 0 and std 1 within its multiplicity.
    for k in (1, 2, 3):
        rows = x[n == k][:, : 5 + 4 * k]
        assert torch.allclose(rows.mean(0), torch.zeros(5 + 4 * k), atol=1e-4)
    back = prep.decode(x, n, np.random.default_rng(0))
    order = np.concatenate([np.flatnonzero(sample.n_jets == k) for k in (1, 2, 3)])
    assert np.allclose(back.muons[:, :, 0], sample.muons[order, :, 0], rtol=1e-4)
    assert np.allclose(back.dimuon_mass(), sample.dimuon_mass()[order], rtol=1e-3)
    assert np.allclose(back.jets[:, :, 0], sample.jets[order, :, 0], rtol=1e-4, atol=1e-3)
    restored = EventPreprocessing.from_state(prep.state())
    assert torch.equal(restored.encode(sample)[0], x)
    assert prep.fractions == pytest.approx([np.mean(sample.n_jets == k) for k in (1, 2, 3)])


def test_train_save_load_generate_an_ensemble(tmp_path):
    sample = z_sample(800, seed=4)
    result = train_events(
        sample, EventModelConfig(model="cfm", bayesian=True, **TINY), epochs=2, batch_size=256, seed=0
    )
    assert len(result.history["loss"]) == 2 and result.history["kl"][0] > 0
    path = result.model.save(tmp_path / "m.pt", provenance={"note": 1})
    with pytest.raises(FileExistsError):
        result.model.save(path)
    model = hepgen.models.load(path)
    assert model.provenance["note"] == 1 and model.config == result.model.config

    def ensemble(seed):  # member k: the k-th weight draw; its own noise stream (seed + k)
        return EventSample.concatenate(
            [model.sample(300, seed=seed + k, batch_size=200, member=k, weight_seed=seed) for k in range(3)]
        )

    events = ensemble(5)
    members = events.members
    assert len(events) == 900 and np.bincount(members).tolist() == [300, 300, 300]
    assert set(np.unique(events.n_jets)) <= {1, 2, 3}
    assert np.all(events.jets[:, :, 0][np.arange(3)[None] < events.n_jets[:, None]] > 20 - 0.01)
    assert np.array_equal(events.muons, ensemble(5).muons)  # the seed fixes draws and noise
    # Members differ: different weight draws.
    assert not np.allclose(events.muons[members == 0], events.muons[members == 1])


def test_checkpoints_are_validated(tmp_path):
    result = train_events(z_sample(200), EventModelConfig(model="ddpm", **TINY), epochs=1, batch_size=100)
    path = result.model.save(tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    for change, message in [
        ({"format": "hepgen.caloman", "version": 2}, "generates showers, expected events"),
        ({"version": 99}, "version 99"),
        ({"config": {**payload["config"], "hidden": 64}}, "damaged"),
        ({"preprocessing": {}}, "damaged"),
    ]:
        torch.save({**payload, **change}, tmp_path / "bad.pt")
        with pytest.raises(ValueError, match=message):
            hepgen.models.load(tmp_path / "bad.pt", kind="events")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        hepgen.models.load(tmp_path / "junk.pt")


def test_precision_sees_a_shifted_z_peak():
    truth, same = z_sample(3000, seed=1), z_sample(3000, seed=2)
    shifted = z_sample(3000, seed=2)
    shifted.muons[:, :, 0] *= 1.05  # a 5% muon scale shifts M_mumu by ~4.6 GeV
    good, bad = precision(truth, same)["m_mumu"]["w1"], precision(truth, shifted)["m_mumu"]["w1"]
    assert good < 1.0 < 3.0 < bad
    assert bad == pytest.approx(0.05 * Z_MASS, rel=0.3)


def test_cli_train_generate_compare(tmp_path, capsys):
    data, truth = z_file(tmp_path / "train.h5", 600, seed=0), z_file(tmp_path / "truth.h5", 600, seed=1)
    ckpt, bckpt = tmp_path / "inn.pt", tmp_path / "bddpm.pt"
    common = ["--data", str(data), "--epochs", "1", "--hidden", "16", "--layers", "2", "--quiet"]
    assert main(["train", "events", "--model", "inn", *common, "-o", str(ckpt)]) == 0
    assert (
        main(
            [
                "train",
                "events",
                "--model",
                "ddpm",
                "--bayesian",
                "--timesteps",
                "20",
                *common,
                "--option",
                "sampler=ddim",
                "--option",
                "sample_steps=5",
                "-o",
                str(bckpt),
            ]
        )
        == 0
    )
    gen, bgen = tmp_path / "inn.h5", tmp_path / "bddpm.h5"
    assert main(["generate", "events", "--model", str(ckpt), "-n", "300", "-o", str(gen), "--quiet"]) == 0
    assert (
        main(
            [
                "generate",
                "events",
                "--model",
                str(bckpt),
                "-n",
                "200",
                "--ensemble",
                "3",
                "-o",
                str(bgen),
                "--truth",
                str(truth),
                "--plots",
                str(tmp_path / "p"),
                "--observables",
                "m_mumu",
                "--quiet",
            ]
        )
        == 0
    )
    assert (tmp_path / "p" / "m_mumu.png").is_file()
    assert len(read_events(gen)) == 300  # readable by hepgen.data
    sample = read_events(bgen)
    members = sample.members
    assert len(sample) == 600 and np.bincount(members).tolist() == [200] * 3
    with h5py.File(bgen) as f:
        assert f.attrs["ensemble"] == 3
    out = tmp_path / "cmp"
    assert (
        main(
            [
                "compare",
                "events",
                "--truth",
                str(truth),
                "--generated",
                str(gen),
                str(bgen),
                "--labels",
                "INN,B-DDPM",
                "-o",
                str(out),
                "--observables",
                "m_mumu,pt_mu1,eta_j1,dr_j1j2,pt_j3",
                "--quiet",
            ]
        )
        == 0
    )
    result = json.loads((out / "precision.json").read_text())
    assert set(result) == {"INN", "B-DDPM"} and len(result["B-DDPM"]["m_mumu"]["w1_members"]) == 3
    assert result["INN"]["run"]["epochs"] == 1 and result["INN"]["run"]["seconds_per_1e5"] > 0
    for name in ("m_mumu", "pt_mu1", "eta_j1", "dr_j1j2", "pt_j3"):
        assert (out / f"{name}.png").stat().st_size > 10_000
    assert "B-DDPM" in (out / "precision.md").read_text()
    # The older spelling, files as positional arguments, still works for one release.
    capsys.readouterr()
    old = tmp_path / "cmp_old"
    assert (
        main(
            ["compare", "events", "--truth", str(truth), str(gen), "-o", str(old), "--observables", "m_mumu", "--quiet"]
        )
        == 0
    )
    assert "positional arguments is deprecated" in capsys.readouterr().err
    # The same numbers up to summation order (the 16th digit differs between runs under load).
    old_m = json.loads((old / "precision.json").read_text())["inn"]["m_mumu"]
    assert set(old_m) == set(result["INN"]["m_mumu"])
    for key, value in result["INN"]["m_mumu"].items():
        assert old_m[key] == pytest.approx(value, rel=1e-12, abs=1e-12), key
    # Errors: one line naming the problem, nothing written.
    capsys.readouterr()
    assert (
        main(["generate", "events", "--model", str(ckpt), "-n", "10", "--ensemble", "2", "-o", str(tmp_path / "x.h5")])
        == 1
    )
    assert "not a Bayesian model" in capsys.readouterr().err and not (tmp_path / "x.h5").exists()
    assert main(["train", "events", "--model", "cfm", *common, "-o", str(ckpt)]) == 1
    assert "exists" in capsys.readouterr().err
    assert main(["train", "events", "--model", "cfm", *common, "--option", "oops", "-o", str(tmp_path / "y.pt")]) == 1
    assert "KEY=VALUE" in capsys.readouterr().err
    assert (
        main(
            [
                "compare",
                "events",
                "--truth",
                str(truth),
                "--generated",
                str(gen),
                "-o",
                str(out),
                "--observables",
                "mass",
                "--force",
            ]
        )
        == 1
    )
    assert "--observables: unknown" in capsys.readouterr().err


def test_decode_caps_unphysical_pt_at_the_beam_energy():
    sample = z_sample(200, seed=6)
    prep = EventPreprocessing.fit(sample)
    x, n = prep.encode(sample)
    x[0, 5] = 50.0  # clamped to +10 sigma: log(pT - 20 GeV) of the leading jet, still > 6.5 TeV
    back = prep.decode(x, n, np.random.default_rng(0))
    assert back.attrs["clipped_pt"] >= 1 and back.jets[..., 0].max() <= 6500.0
    assert prep.decode(prep.encode(sample)[0], n, np.random.default_rng(0)).attrs["clipped_pt"] == 0
