"""The older spellings keep working for one release, each with a DeprecationWarning."""

import importlib
import sys

import numpy as np
import pytest
import torch
from events_toys import z_sample
from model_toys import calo_toy, events_toy, jets_toy


def test_caloman_sample_with_energies_returns_the_array():
    model = calo_toy()
    energies = np.full(5, 4096.0)
    torch.manual_seed(1)
    with pytest.warns(DeprecationWarning, match="CaloMan.sample\\(energies"):
        showers = model.sample(energies, batch_size=2)
    torch.manual_seed(1)
    assert np.array_equal(showers, model.sample(condition=energies, batch_size=2).showers)
    out = np.empty((5, 368), np.float32)
    with pytest.warns(DeprecationWarning):
        assert model.sample(energies, 3, out) is out


def test_epic_positional_settings():
    model = jets_toy()
    with pytest.warns(DeprecationWarning, match="positional settings"):
        a = model.sample(6, 2, "euler", 4, torch.Generator().manual_seed(0))
    b = model.sample(6, steps=2, method="euler", batch_size=4, generator=torch.Generator().manual_seed(0))
    assert np.array_equal(a.particles, b.particles)
    with pytest.warns(DeprecationWarning):
        chunks = list(model.sample_chunks(6, 2, "euler", 4, torch.Generator().manual_seed(0), "cpu"))
    assert [len(c) for c in chunks] == [4, 2]
    assert np.array_equal(np.concatenate([c.particles for c in chunks]), b.particles)


def test_event_generator_sample_with_jet_counts_returns_vectors():
    model = events_toy("cfm")
    n_jets = torch.tensor([1, 2, 3])
    with pytest.warns(DeprecationWarning, match="sample_vectors"):
        x = model.sample(n_jets, generator=torch.Generator().manual_seed(0))
    assert torch.equal(x, model.sample_vectors(n_jets, generator=torch.Generator().manual_seed(0)))


def test_older_checkpoint_functions(tmp_path):
    from hepgen.models.caloman import load_checkpoint as calo_load
    from hepgen.models.caloman import load_pretrained
    from hepgen.models.caloman import save_checkpoint as calo_save
    from hepgen.models.epic import load
    from hepgen.models.epic import load_checkpoint as epic_load
    from hepgen.models.epic import save_checkpoint as epic_save
    from hepgen.models.events.checkpoint import load_checkpoint as events_load
    from hepgen.models.events.checkpoint import save_checkpoint as events_save

    calo_save(calo_toy(), tmp_path / "c.pt", {"note": "x"})
    with pytest.warns(DeprecationWarning, match="load_checkpoint"):
        model, extra = calo_load(tmp_path / "c.pt")
    assert extra == {"note": "x"}
    with pytest.warns(DeprecationWarning, match="load_pretrained"):
        assert len(load_pretrained()) == 2
    epic_save(jets_toy(), tmp_path / "j.pt", {"note": "y"}, train_state={"epoch": 3})
    with pytest.warns(DeprecationWarning):
        _, extra, state = epic_load(tmp_path / "j.pt", with_train_state=True)
    assert extra == {"note": "y"} and state == {"epoch": 3}
    with pytest.warns(DeprecationWarning, match="epic.load"):
        load(tmp_path / "j.pt")
    model = events_toy("inn")
    events_save(model, model.preprocessing, tmp_path / "e.pt", {"note": "z"})
    with pytest.warns(DeprecationWarning):
        _, preprocessing, extra = events_load(tmp_path / "e.pt")
    assert extra == {"note": "z"} and np.array_equal(preprocessing.mean, model.preprocessing.mean)


def test_generate_events_keeps_its_numbers():
    from hepgen.models.events.generate import generate_events

    model = events_toy("cfm")
    with pytest.warns(DeprecationWarning, match="generate_events"):
        sample, members = generate_events(model, model.preprocessing, 7, batch_size=3, seed=2)
    # What it always computed: one numpy and one torch stream seeded `seed`.
    rng, g = np.random.default_rng(2), torch.Generator().manual_seed(2)
    parts = []
    for size in (3, 3, 1):
        n_jets = model.preprocessing.draw_multiplicities(size, rng)
        parts.append(model.preprocessing.decode(model.sample_vectors(n_jets, generator=g), n_jets, rng))
    assert np.array_equal(sample.muons, np.concatenate([p.muons for p in parts]))
    assert (members == 0).all()


@pytest.mark.parametrize(
    "old, new", [("plots", "events_plots"), ("precision", "events_precision"), ("observables", "events_observables")]
)
def test_moved_evaluation_modules(old, new):
    sys.modules.pop(f"hepgen.models.events.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"hepgen.metrics.{new}"):
        shim = importlib.import_module(f"hepgen.models.events.{old}")
    moved = importlib.import_module(f"hepgen.metrics.{new}")
    name = {"plots": "write_plots", "precision": "precision", "observables": "observable_values"}[old]
    assert getattr(shim, name) is getattr(moved, name)


def test_write_generated_and_read_generated(tmp_path):
    from hepgen.models.events.files import read_generated, write_generated

    sample = z_sample(10)
    members = np.repeat([0, 1], 5)
    path = write_generated(tmp_path / "g.h5", sample, members, attrs={"seed": 1})
    back, m = read_generated(path)
    assert np.array_equal(m, members) and back.attrs["ensemble"] == 2 and back.attrs["seed"] == 1
