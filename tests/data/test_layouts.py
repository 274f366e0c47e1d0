"""hepgen.data.layouts: each layout's names and attributes, samples that write themselves,
concatenation, and the appendable writer for streamed chunks (same file content as a
whole-sample write)."""

import h5py
import numpy as np
import pytest

from hepgen.data import EventSample, JetSample, ShowerSample, read_events, read_jets, read_showers
from hepgen.data.layouts import calochallenge, jetnet, zjets


def jets_sample(rng, n=6, P=5):
    particles = rng.normal(size=(n, P, 4)).astype(np.float32)
    particles[..., 3] = 1
    return JetSample(particles, np.c_[rng.uniform(100, 500, (n, 3)), np.full(n, P)])


def shower_sample(rng, n=6, voxels=7):
    energies = rng.uniform(1e3, 1e4, (n, 1))
    return ShowerSample(energies, rng.dirichlet(np.ones(voxels), n) * energies)


def content(path):
    with h5py.File(path) as f:
        datasets = {k: (f[k].dtype, f[k].shape, dict(f[k].attrs), f[k][()]) for k in f}
        attrs = {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in f.attrs.items()}
    return datasets, attrs


EXPECTED = {
    "jets": (
        {"particle_features": (np.float32, None), "jet_features": (np.float32, "GeV")},
        {
            "format": "jetnet",
            "energy_unit": "GeV",
            "particle_feature_names": ["eta_rel", "phi_rel", "pt_rel", "mask"],
            "jet_feature_names": ["pt", "eta", "mass", "n_particles"],
        },
    ),
    "showers": (
        {"incident_energies": (np.float32, "MeV"), "showers": (np.float32, "MeV")},
        {"format": "calochallenge", "energy_unit": "MeV"},
    ),
    "events": (
        {
            "muons": (np.float32, "GeV"),
            "jets": (np.float32, "GeV"),
            "n_jets": (np.int64, None),
            "member": (np.int64, None),
        },
        {
            "format": "hepgen-zjets",
            "energy_unit": "GeV",
            "object_feature_names": ["pt", "eta", "phi", "m"],
            "ensemble": 2,
        },
    ),
}


@pytest.mark.parametrize("kind", sorted(EXPECTED))
def test_layout_names_and_streamed_file_equal_the_whole_write(kind, tmp_path, rng, make_events):
    if kind == "jets":
        sample, stream = jets_sample(rng), lambda p: jetnet.writer(p, 5, attrs={"seed": 1})
    elif kind == "showers":
        sample, stream = shower_sample(rng), lambda p: calochallenge.writer(p, 7, attrs={"seed": 1})
    else:
        e = make_events(rng, 6)
        sample = EventSample(e.muons, e.jets, e.n_jets, members=[0, 0, 0, 1, 1, 1])
        stream = lambda p: zjets.writer(p, members=True, attrs={"seed": 1, "ensemble": 2})  # noqa: E731
    whole = sample.write(tmp_path / "whole.h5", attrs={"seed": 1})
    with stream(tmp_path / "streamed.h5") as writer:
        writer.append(_part(sample, 0, 4))
        writer.append(_part(sample, 4, 6))
    datasets, attrs = content(whole)
    streamed_datasets, streamed_attrs = content(writer.path)
    names, file_attrs = EXPECTED[kind]
    assert {k: (d[0], d[2].get("unit")) for k, d in datasets.items()} == names
    assert {k: attrs[k] for k in file_attrs} == file_attrs and attrs["seed"] == 1
    assert attrs["complete"] and attrs["n"] == 6 and "hepgen_version" in attrs
    assert streamed_attrs == attrs
    for k, (dtype, shape, dattrs, values) in datasets.items():
        assert streamed_datasets[k][:3] == (dtype, shape, dattrs)
        np.testing.assert_array_equal(streamed_datasets[k][3], values)


def _part(sample, start, stop):
    if isinstance(sample, JetSample):
        return JetSample(sample.particles[start:stop], sample.jets[start:stop])
    if isinstance(sample, ShowerSample):
        return ShowerSample(sample.incident_energies[start:stop], sample.showers[start:stop])
    return EventSample(
        sample.muons[start:stop], sample.jets[start:stop], sample.n_jets[start:stop], members=sample.members[start:stop]
    )


def test_concatenate_and_read_back(tmp_path, rng, make_events):
    jets = [jets_sample(rng, 3), jets_sample(rng, 2)]
    both = JetSample.concatenate(jets)
    assert len(both) == 5 and np.array_equal(both.jets[3:], jets[1].jets)
    assert np.array_equal(read_jets(both.write(tmp_path / "j.h5")).particles, both.particles)
    showers = ShowerSample.concatenate([shower_sample(rng, 2), shower_sample(rng, 4)])
    assert np.array_equal(read_showers(showers.write(tmp_path / "s.h5")).showers, showers.showers)
    a, b = make_events(rng, 3), make_events(rng, 4)
    a.attrs["clipped_pt"], b.attrs["clipped_pt"] = 1, 2
    events = EventSample.concatenate([a, b])
    assert len(events) == 7 and events.attrs["clipped_pt"] == 3 and events.members is None
    back = read_events(events.write(tmp_path / "e.h5"))
    assert back.members is None and np.array_equal(back.n_jets, events.n_jets)
    with pytest.raises(ValueError, match="some have ensemble members"):
        EventSample.concatenate([a, EventSample(b.muons, b.jets, b.n_jets, members=np.zeros(4))])
    with pytest.raises(ValueError, match="nothing to concatenate"):
        JetSample.concatenate([])
    with pytest.raises(ValueError, match="members: expected shape"):
        EventSample(a.muons, a.jets, a.n_jets, members=[0])
