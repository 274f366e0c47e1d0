"""EPiC-FM / EPiC-JeDi: preprocessing, jet-feature density, losses, samplers, checkpoints."""

import numpy as np
import pytest
import torch
from jet_toys import P, toy_jets

from hepgen.models.epic import (
    ConditionScaler,
    EPiCConfig,
    JetFeatureDensity,
    ParticleScaler,
    TrainSettings,
    load_checkpoint,
    relative_mass,
    save_checkpoint,
    train_epic,
)
from hepgen.models.epic.dynamics import CosineSchedule


def tiny_config(model="epic-fm", conditional=True):
    return EPiCConfig(model=model, particles=P, conditional=conditional, hidden=16, latent=4, layers=1, time_dim=8)


@pytest.fixture(scope="module")
def trained():
    torch.set_num_threads(1)
    particles, jets = toy_jets()
    out = {}
    for model in ("epic-fm", "epic-jedi"):
        state = train_epic(particles, jets, tiny_config(model), TrainSettings(epochs=3, batch_size=32, seed=1))
        out[model] = state
    return out


def test_particle_preprocessing_round_trip_keeps_padding_zero():
    particles, _ = toy_jets()
    x = torch.as_tensor(particles[..., :3]).double()
    mask = torch.as_tensor(particles[..., 3] > 0.5)
    scaler = ParticleScaler(3, feature_std=5.0).double().fit(x, mask)
    y = scaler(x, mask)
    assert (y[~mask] == 0).all()
    real = y[mask]
    torch.testing.assert_close(real.mean(0), torch.zeros(3, dtype=torch.float64), atol=1e-9, rtol=0)
    torch.testing.assert_close(real.std(0), torch.full((3,), 5.0, dtype=torch.float64))
    torch.testing.assert_close(scaler.inverse(y, mask), x)
    c = torch.as_tensor(toy_jets()[1][:, [0, 2]]).double()
    cs = ConditionScaler().double().fit(c)
    torch.testing.assert_close(cs.inverse(cs(c)), c)
    with pytest.raises(ValueError, match="mask must have shape"):
        scaler(x, mask[:, :3])


def test_jet_density_resamples_the_training_jets():
    _, jets = toy_jets(4000, seed=3)
    density = JetFeatureDensity(P).fit(torch.as_tensor(jets), torch.Generator().manual_seed(0))
    drawn = density.sample(20000, torch.Generator().manual_seed(1)).numpy()
    assert drawn.shape == (20000, 4) and (drawn[:, 0] > 0).all() and (drawn[:, 2] > 0).all()
    n_true = np.bincount(jets[:, 3].astype(int), minlength=P + 1) / len(jets)
    n_drawn = np.bincount(drawn[:, 3].astype(int), minlength=P + 1) / len(drawn)
    assert np.abs(n_true - n_drawn).max() < 0.02  # N from its empirical distribution
    assert abs(np.median(drawn[:, 0]) - np.median(jets[:, 0])) < 10  # GeV
    assert abs(np.median(drawn[:, 2]) - np.median(jets[:, 2])) < 5
    # the state (with its data-sized point table) survives a state_dict round trip
    again = JetFeatureDensity(P)
    again.load_state_dict(density.state_dict())
    torch.testing.assert_close(
        again.sample(5, torch.Generator().manual_seed(2)), density.sample(5, torch.Generator().manual_seed(2))
    )
    with pytest.raises(ValueError, match="N must lie in"):
        JetFeatureDensity(4).fit(torch.as_tensor(jets))


@pytest.mark.parametrize("kind", ["epic-fm", "epic-jedi"])
def test_training_lowers_the_loss(kind):
    """The loss of fixed batches (fixed noise and times) before and after a short training."""
    torch.set_num_threads(1)
    particles, jets = toy_jets(128, seed=5)
    config = tiny_config(kind)
    state = train_epic(particles, jets, config, TrainSettings(epochs=1, batch_size=64, seed=2))

    def fixed_loss(net):
        y, mask, cond = state.model.prepare(torch.as_tensor(particles), torch.as_tensor(jets))
        with torch.no_grad():
            return float(
                np.mean(
                    [
                        state.model.loss(y, mask, cond, net=net, generator=torch.Generator().manual_seed(s))
                        for s in range(4)
                    ]
                )
            )

    before = fixed_loss(state.ema)  # EMA after 2 steps is still close to the initial weights
    state = train_epic(particles, jets, config, TrainSettings(epochs=40, batch_size=64, seed=2))
    after = fixed_loss(state.model.net)
    # Both losses have a large irreducible part (the noise-to-data pairing is random), so a
    # working fit lowers them by ~10% here; a wrong target or sign leaves them flat or worse.
    assert after < 0.93 * before, (before, after)


@pytest.mark.parametrize(
    "kind, methods",
    [("epic-fm", ["euler", "midpoint", "heun", "rk4", "rk4_38"]), ("epic-jedi", ["midpoint", "em", "ddim"])],
)
def test_sampling_layout_and_padding(trained, kind, methods):
    model = trained[kind].sampling_model()
    for method in methods:
        s = model.sample(21, steps=3, method=method, batch_size=8, generator=torch.Generator().manual_seed(0))
        assert s.particles.shape == (21, P, 4) and s.jets.shape == (21, 4)
        mask = s.mask
        assert np.isfinite(s.particles).all() and np.isfinite(s.jets).all()
        assert (s.particles[~mask] == 0).all()  # padded particles stay exactly zero
        assert (mask.sum(1) == s.jets[:, 3]).all() and (mask.sum(1) >= 1).all()
        # real particles first, by decreasing pT_rel (JetNet order)
        assert (np.diff(mask.astype(int), axis=1) <= 0).all()
        pt = np.where(mask, s.particles[..., 2], -1e9)
        assert (np.diff(pt, axis=1)[mask[:, 1:]] <= 0).all()


def test_sampling_is_reproducible_and_checks_arguments(trained):
    model = trained["epic-fm"].sampling_model()
    a = model.sample(5, steps=2, generator=torch.Generator().manual_seed(3))
    b = model.sample(5, steps=2, generator=torch.Generator().manual_seed(3))
    assert np.array_equal(a.particles, b.particles) and np.array_equal(a.jets, b.jets)
    with pytest.raises(ValueError, match="method must be one of"):
        model.sample(5, method="em")  # a diffusion sampler for a flow-matching model
    with pytest.raises(ValueError, match="steps must be a positive int"):
        model.sample(5, steps=0)


def test_dopri5_sampler_runs(trained):
    model = trained["epic-fm"].sampling_model()
    s = model.sample(4, method="dopri5", generator=torch.Generator().manual_seed(0))
    assert np.isfinite(s.particles).all() and (s.particles[~s.mask] == 0).all()


def test_unconditional_model_writes_the_mass_of_its_particles():
    particles, jets = toy_jets(64)
    state = train_epic(particles, jets, tiny_config(conditional=False), TrainSettings(epochs=1, batch_size=32))
    s = state.sampling_model().sample(6, steps=2, generator=torch.Generator().manual_seed(0))
    np.testing.assert_allclose(s.jets[:, 2], relative_mass(s.particles) * s.jets[:, 0], rtol=1e-5)


def test_relative_mass_of_two_particles():
    # two massless particles of pT fractions 1/2 at eta = ±a, phi = 0: m² = 2·(1/2)²·(cosh 2a − 1)
    a = 0.3
    p = np.array([[[a, 0, 0.5, 1], [-a, 0, 0.5, 1], [9, 9, 9, 0]]])
    np.testing.assert_allclose(relative_mass(p), np.sqrt(0.5 * (np.cosh(2 * a) - 1)))


def test_checkpoint_round_trip_and_errors(trained, tmp_path):
    model = trained["epic-jedi"].sampling_model()
    path = save_checkpoint(model, tmp_path / "m.pt", extra={"note": 1})
    loaded, extra = load_checkpoint(path)
    assert extra == {"note": 1} and loaded.config == model.config
    g = lambda: torch.Generator().manual_seed(4)  # noqa: E731
    a, b = (
        model.sample(6, steps=3, method="ddim", generator=g()),
        loaded.sample(6, steps=3, method="ddim", generator=g()),
    )
    assert np.array_equal(a.particles, b.particles) and np.array_equal(a.jets, b.jets)
    with pytest.raises(FileExistsError):
        save_checkpoint(model, path)
    payload = torch.load(path, weights_only=True)
    for change, message in [
        ({"format": "hepgen.caloman"}, "expected 'hepgen.epic'"),
        ({"version": 99}, "version 99"),
        ({"config": {**payload["config"], "hidden": 7}}, "damaged"),
    ]:
        bad = tmp_path / "bad.pt"
        torch.save({**payload, **change}, bad)
        with pytest.raises(ValueError, match=message):
            load_checkpoint(bad)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(FileNotFoundError):
        load_checkpoint(tmp_path / "missing.pt")


def test_config_errors():
    with pytest.raises(ValueError, match="model must be one of"):
        EPiCConfig(model="epic-gan")
    with pytest.raises(ValueError, match="signal rates"):
        EPiCConfig(min_signal_rate=0.9, max_signal_rate=0.5)
    particles, jets = toy_jets(16)
    with pytest.raises(ValueError, match="particle slots"):
        train_epic(particles, jets, EPiCConfig(particles=30, hidden=8, layers=1))


def test_cosine_schedule_ends():
    s = CosineSchedule(0.999, 0.02)
    assert s.rates(0.0)[0] == pytest.approx(0.999) and s.rates(1.0)[0] == pytest.approx(0.02)
    sig, noise = s.rates(torch.rand(10))
    torch.testing.assert_close(sig**2 + noise**2, torch.ones(10))
