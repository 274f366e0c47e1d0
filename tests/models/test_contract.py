"""The generator contract (hepgen.models.base) for every model kind: sample types and shapes,
seeds, chunks, conditions, settings, devices, checkpoints and file round trips."""

import numpy as np
import pytest
import torch
from model_toys import KINDS, condition_for, toy

import hepgen.models
from hepgen.data import EventSample, JetSample, ShowerSample, read_events, read_jets, read_showers

SAMPLE_TYPE = {"showers": ShowerSample, "jets": JetSample, "events": EventSample}
READ = {"showers": read_showers, "jets": read_jets, "events": read_events}


def arrays(sample) -> dict:
    names = {
        JetSample: ("particles", "jets"),
        ShowerSample: ("incident_energies", "showers"),
        EventSample: ("muons", "jets", "n_jets", "members"),
    }[type(sample)]
    return {k: getattr(sample, k) for k in names if getattr(sample, k) is not None}


def assert_same(a, b):
    assert type(a) is type(b)
    x, y = arrays(a), arrays(b)
    assert x.keys() == y.keys()
    for k in x:
        np.testing.assert_array_equal(x[k], y[k], err_msg=k)


@pytest.fixture(scope="module", params=KINDS)
def case(request):
    torch.set_num_threads(1)
    return request.param, toy(request.param)


def test_sample_type_shape_and_seeds(case):
    kind, model = case
    assert model.kind == kind.split("-")[0]
    s = model.sample(7, seed=3)
    assert isinstance(s, SAMPLE_TYPE[model.kind]) and len(s) == 7
    assert_same(s, model.sample(7, seed=3))
    assert_same(
        model.sample(7, generator=torch.Generator().manual_seed(1)),
        model.sample(7, generator=torch.Generator().manual_seed(1)),
    )
    other = model.sample(7, seed=4)
    assert any(not np.array_equal(a, b) for a, b in zip(arrays(s).values(), arrays(other).values()))
    assert not model.training  # left in eval mode, as loaded
    if model.kind == "jets":
        assert s.particles.shape == (7, model.config.particles, 4)
    if model.kind == "showers":
        assert s.showers.shape == (7, model.config.n_voxels)


def test_chunks_equal_sample_and_do_not_depend_on_order(case):
    _, model = case
    chunks = list(model.sample_chunks(10, seed=5, chunk_size=4))
    assert [len(c) for c in chunks] == [4, 4, 2]
    assert_same(type(chunks[0]).concatenate(chunks), model.sample(10, seed=5, batch_size=4))
    # Chunk k depends on (seed, k) alone: alone, in another order, with another network batch.
    reordered = list(model.sample_chunks(10, seed=5, chunk_size=4, chunks=[2, 0]))
    assert_same(reordered[0], chunks[2])
    assert_same(reordered[1], chunks[0])
    assert_same(next(model.sample_chunks(10, seed=5, chunk_size=4, chunks=[1])), chunks[1])
    # One generator stream: sample() is its chunks in sequence.
    streamed = list(model.sample_chunks(10, generator=torch.Generator().manual_seed(2), chunk_size=4))
    assert_same(
        type(streamed[0]).concatenate(streamed),
        model.sample(10, generator=torch.Generator().manual_seed(2), batch_size=4),
    )


def test_chunk_arguments_are_checked(case):
    _, model = case
    # Refused in the call itself, before anything is iterated (and before a caller opens a file).
    with pytest.raises(ValueError, match="chunks needs seed"):
        model.sample_chunks(10, chunk_size=4, chunks=[0])
    with pytest.raises(ValueError, match="chunks: \\[3\\] outside 0..2"):
        model.sample_chunks(10, seed=0, chunk_size=4, chunks=[3])
    with pytest.raises(TypeError, match="no_such_setting"):
        model.sample_chunks(10, no_such_setting=1)
    with pytest.raises(ValueError, match="seed or generator"):
        model.sample(3, seed=1, generator=torch.Generator())
    for bad in (0, -1, 2.5, True):
        with pytest.raises(ValueError, match="n must be a positive int"):
            model.sample(bad)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        model.sample(3, batch_size=0)
    with pytest.raises(ValueError, match="seed must be a non-negative int"):
        model.sample(3, seed=-1)
    with pytest.raises(TypeError, match="no_such_setting"):
        model.sample(3, no_such_setting=1)


def test_condition_is_used_and_validated(case):
    kind, model = case
    condition = condition_for(kind, 6)
    if condition is None:
        with pytest.raises(ValueError, match="condition"):
            model.sample(2, condition=np.ones((2, 2)))
        return
    s = model.sample(condition=condition, seed=0)
    assert len(s) == 6
    assert_same(s, model.sample(6, condition=condition, seed=0))
    if model.kind == "showers":
        np.testing.assert_array_equal(s.incident_energies[:, 0], condition.astype(np.float32))
    elif model.kind == "jets":
        np.testing.assert_allclose(s.jets[:, [0, 2]], condition, rtol=1e-6)
    else:
        np.testing.assert_array_equal(s.n_jets, condition)
    with pytest.raises(ValueError, match="n=5 but condition holds 6"):
        model.sample(5, condition=condition)
    bad = {"showers": np.full(3, -1.0), "jets": np.ones((3, 3)), "events": np.array([1, 4, 2])}[model.kind]
    with pytest.raises(ValueError, match="condition|energies"):
        model.sample(condition=bad)


def test_write_read_round_trip(case, tmp_path):
    _, model = case
    s = model.sample(5, seed=1)
    path = s.write(tmp_path / "out.h5", attrs={"seed": 1})
    back = READ[model.kind](path)
    assert_same(s, back)
    assert back.attrs["seed"] == 1
    with pytest.raises(FileExistsError):
        s.write(path)
    s.write(path, force=True)


def test_device_argument(case):
    _, model = case
    assert_same(model.sample(3, seed=2, device="cpu"), model.sample(3, seed=2))
    if torch.cuda.is_available():
        on_gpu = model.sample(3, seed=2, device="cuda")
        assert type(on_gpu) is SAMPLE_TYPE[model.kind]
        model.to("cpu")


def test_checkpoint_round_trip_through_load(case, tmp_path):
    _, model = case
    model.provenance = {"data": "toy"}
    path = model.save(tmp_path / "m.pt")
    loaded = hepgen.models.load(path)
    assert type(loaded) is type(model) and not loaded.training
    assert loaded.provenance["data"] == "toy" and "hepgen_version" in loaded.provenance
    assert_same(loaded.sample(6, seed=7), model.sample(6, seed=7))
    with pytest.raises(FileExistsError):
        model.save(path)
    kinds = {"showers", "jets", "events"} - {model.kind}
    with pytest.raises(ValueError, match=f"generates {model.kind}, expected"):
        hepgen.models.load(path, kind=sorted(kinds)[0])


def test_bayesian_members():
    model = toy("events-cfm-bayesian")
    a, b = model.sample(20, seed=0, member=0), model.sample(20, seed=0, member=1)
    assert (a.members == 0).all() and (b.members == 1).all()
    assert not np.array_equal(a.muons, b.muons)  # another network, the same noise
    assert_same(a, model.sample(20, seed=0))  # member 0 by default, the same draw every call
    both = EventSample.concatenate([a, b])
    assert both.members.tolist() == [0] * 20 + [1] * 20
    with pytest.raises(ValueError, match="member must be"):
        model.sample(2, member=-1)
    with pytest.raises(ValueError, match="not Bayesian"):
        toy("events-cfm").sample(2, member=1)


def test_sampler_settings_are_parameters():
    jets = toy("jets")
    assert jets.sampler_settings() == {"method": "midpoint", "steps": 100, "rtol": 1e-3, "atol": 1e-3}
    few = jets.sample(4, seed=0, method="euler", steps=2)
    assert not np.array_equal(few.particles, jets.sample(4, seed=0, method="euler", steps=3).particles)
    with pytest.raises(ValueError, match="method must be one of"):
        jets.sample(2, method="leapfrog")
    with pytest.raises(ValueError, match="rtol must be a positive number"):
        jets.sample(2, method="dopri5", rtol=0)
    cfm = toy("events-cfm")
    assert cfm.sampler_settings() == {"member": None, "weight_seed": 0, "method": "midpoint", "steps": 3}
    calls = []
    hook = cfm.net.register_forward_hook(lambda *_: calls.append(1))
    cfm.sample(4, seed=0, steps=1)
    one = len(calls)
    cfm.sample(4, seed=0, steps=2, method="euler")
    hook.remove()
    assert (one, len(calls) - one) == (2, 2)  # midpoint: 2 evaluations per step; euler: 1
    ddpm = toy("events-ddpm")
    assert ddpm.sampler_settings() == {"member": None, "weight_seed": 0, "sampler": "ddim", "steps": 3}
    with pytest.raises(ValueError, match="steps must be an int in 1..20"):
        ddpm.sample(2, steps=21)
    assert toy("events-jetgpt").sampler_settings() == {"member": None, "weight_seed": 0, "use_cache": True}


def test_sampler_settings_pass_back_unchanged(case):
    # A caller validates once (model.sampler_settings(method=..., steps=...)) and passes the
    # result to sample / sample_chunks: the same settings, the same samples.
    _, model = case
    settings = model.sampler_settings()
    assert model.sampler_settings(**settings) == settings
    assert_same(model.sample(3, seed=1, **settings), model.sample(3, seed=1))


def test_dopri5_tolerances_reach_the_solver_without_patching():
    from hepgen.metrics.samplers import Sampler, generate
    from hepgen.models.epic import dynamics

    model, solver = toy("jets"), dynamics.solve_ode
    _, loose, _ = generate(model, Sampler("dopri5", None, 1e-1, 1e-1), 8, seed=0, batch_size=8)
    _, tight, _ = generate(model, Sampler("dopri5", None, 1e-5, 1e-5), 8, seed=0, batch_size=8)
    assert tight > loose
    assert dynamics.solve_ode is solver


def test_progress(capsys):
    model = toy("jets-unconditional")
    assert len(model.sample(5, seed=0, progress=True, steps=1)) == 5  # not a terminal here: no bar
    seen = []
    with pytest.warns(DeprecationWarning, match="progress=<callable>"):
        model.sample(5, seed=0, batch_size=2, progress=seen.append, steps=1)
    assert seen == [2, 2, 1]


def test_untrained_event_model_says_so():
    from hepgen.models.events import EventModelConfig, build_model

    model = build_model(EventModelConfig(model="cfm", hidden=8, layers=1))
    with pytest.raises(RuntimeError, match="no fitted preprocessing"):
        model.sample(2)
