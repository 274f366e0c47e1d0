"""CaloMan: preprocessing round trip, shapes and densities, a short physics fit, checkpoints,
and the train → generate command line on tiny sizes."""

import numpy as np
import pytest
import torch

from hepgen.data import CaloGeometry, GFlashSimulator
from hepgen.metrics.separation import common_bins, histogram, separation_power
from hepgen.models.caloman import (
    VERSION,
    CaloMan,
    CaloManConfig,
    Preprocessing,
    load_checkpoint,
    save_checkpoint,
    train_caloman,
)
from hepgen.models.caloman.preprocessing import SHARE_DELTA

ENERGIES = (256.0, 4096.0, 65536.0)
SMALL = dict(latent=8, hidden=(128, 128), flow_hidden=32, flow_blocks=2, layer_flow_layers=3)


@pytest.fixture(scope="module")
def showers():
    return GFlashSimulator().sample(2000, np.random.default_rng(0), ENERGIES)


@pytest.fixture(scope="module")
def trained(showers):
    torch.set_num_threads(1)  # these networks are small: one thread is fastest on a busy machine
    return train_caloman(
        showers.showers, showers.incident_energies, CaloManConfig(**SMALL), epochs=12, batch_size=100, lr=2e-3, seed=0
    )


def test_preprocessing_round_trip(showers):
    x, e = torch.tensor(showers.showers, dtype=torch.float64), torch.tensor(showers.incident_energies).double()
    p = Preprocessing(368, (8, 160, 190, 5, 5)).double().fit(x, e, torch.Generator().manual_seed(0))
    layers = p.layer_energies(x)
    assert torch.allclose(layers.sum(1), x.sum(1))
    assert int(p.remainder_layer) == 2  # the layer with most of the energy
    assert torch.allclose(p.voxels_inverse(p.voxels_forward(x), layers), x, rtol=1e-9, atol=1e-9)
    c = p.energy_to_condition(e)
    assert c.min().item() == pytest.approx(0) and c.max().item() == pytest.approx(1)
    assert torch.allclose(p.condition_to_energy(c), e, rtol=1e-12)
    # Layer values are dequantised: a share moves by at most SHARE_DELTA of E_tot (the remainder
    # layer, 1 - the others, by up to 4 of them); the total is exact.
    back = p.layers_inverse(p.layers_forward(layers, e, torch.Generator().manual_seed(1)), e, clamp=False)
    assert torch.allclose(back.sum(1), layers.sum(1), rtol=1e-9)
    assert ((back - layers).abs() <= 4 * SHARE_DELTA * layers.sum(1, keepdim=True) + 1e-9).all()
    # An empty layer comes back empty.
    assert bool((back[layers == 0] == 0).all()) and bool((layers == 0).any())
    # Standardised per incident energy: mean ~0 and std ~1 at every energy (what the flow sees).
    y = p.layers_forward(layers, e, torch.Generator().manual_seed(1))
    for energy in ENERGIES:
        sel = y[e[:, 0] == energy]
        assert sel.mean(0).abs().max() < 0.2 and ((sel.std(0) - 1).abs() < 0.35).all(), energy
    # The voxel shares are standardised: the VAE sees every voxel on the same scale.
    z = p.voxels_forward(x)
    assert z.mean(0).abs().max() < 1e-8 and ((z.std(0) - 1).abs() < 1e-6).float().mean() > 0.9


def test_preprocessing_rejects_bad_input():
    p = Preprocessing(368, (8, 160, 190, 5, 5))
    with pytest.raises(ValueError, match="showers must be"):
        p.fit(torch.ones(10, 367), torch.ones(10, 1))
    with pytest.raises(ValueError, match="energies must be"):
        p.fit(torch.ones(10, 368), torch.ones(10))
    with pytest.raises(ValueError, match="energies must be positive"):
        p.fit(torch.ones(10, 368), -torch.ones(10, 1))
    with pytest.raises(ValueError, match="layer_sizes"):
        Preprocessing(368, (8, 160))


def test_shapes_and_finite_log_probs():
    model = CaloMan(CaloManConfig(**SMALL))
    x, c = torch.randn(7, 368), torch.rand(7, 1)
    mean, log_var = model.vae.encode(x)
    assert mean.shape == log_var.shape == (7, 8) and model.vae.decode(mean).shape == (7, 368)
    total, _recon, kl = model.vae.loss(x, 1e-3)
    assert total.dim() == 0 and torch.isfinite(total) and kl >= 0
    y = torch.randn(7, 5)
    assert model.latent_log_prob(torch.randn(7, 8), c, y).shape == (7,)
    assert torch.isfinite(model.latent_log_prob(torch.randn(7, 8), c, y)).all()
    assert torch.isfinite(model.layer_log_prob(torch.randn(7, 5), c)).all()
    assert CaloMan().vae.latent == 35  # the paper's code's default


def test_config_is_checked():
    with pytest.raises(ValueError, match="latent"):
        CaloManConfig(latent=0)
    with pytest.raises(ValueError, match="layer_sizes"):
        CaloManConfig(layer_sizes=(8, 160))
    with pytest.raises(ValueError, match="hidden"):
        CaloManConfig(hidden=())
    with pytest.raises(TypeError, match="config"):
        CaloMan({"latent": 4})


def test_training_reduces_losses(trained):
    for phase, losses in trained.history.items():
        assert losses[-1] < losses[0] - 0.05 * abs(losses[0]), phase


def _response(showers, energies):
    return showers.sum(1) / np.asarray(energies).reshape(-1)


def test_energy_response_matches_truth(trained, showers):
    """Mean E_dep / E_inc per incident energy within 10% of the GFlash truth after a short fit.

    The mean is set mostly by the preprocessing (layer values standardised per energy), so
    even an untrained flow gets it within a few per cent (1 epoch per phase: 3.1%, 0.7%,
    0.2% off): this is a check of the pipeline's bookkeeping; the checks that need training
    are the separation powers below.
    """
    torch.manual_seed(1)
    for e in ENERGIES:
        generated = trained.model.sample(np.full(500, e), batch_size=128)
        assert generated.shape == (500, 368) and generated.dtype == np.float32
        assert np.isfinite(generated).all() and (generated >= 0).all()
        truth = _response(showers.showers[showers.incident_energies[:, 0] == e], e)
        assert _response(generated, e).mean() == pytest.approx(truth.mean(), rel=0.10), e


def _separations(model, truth):
    """Separation powers per energy of the energies in layers 0, 1, 2 and the x widths of
    layers 1 and 2 (CaloChallenge high-level features) against an independent GFlash sample."""
    geometry = CaloGeometry.photons()
    out = {}
    torch.manual_seed(1)
    for e in ENERGIES:
        t = truth.showers[truth.incident_energies[:, 0] == e]
        g = model.sample(np.full(1500, e), batch_size=500)
        for name, f in (
            ("layer energy", lambda x: geometry.layer_energies(x)[:, :3]),
            ("width", lambda x: geometry.widths(x)[0][:, 1:3]),
        ):
            ft, fg = f(t), f(g)
            for k in range(ft.shape[1]):
                log = (ft[:, k] > 0).mean() > 0.5  # layer 0 is empty in a third of the showers
                edges = common_bins(ft[:, k], 30, log=log)
                out[(e, name, k)] = separation_power(histogram(ft[:, k], edges), histogram(fg[:, k], edges))
    return out


@pytest.fixture(scope="module")
def truth():
    return GFlashSimulator().sample(1500, np.random.default_rng(9), ENERGIES)


def test_layer_energies_and_shapes_match_truth(trained, truth):
    """Calibrated (seed 0, 12 epochs): layer-energy separations 0.02-0.07, widths 0.17-0.29;
    the same model after one epoch per phase: 0.11-0.27 and 0.81-1.0 (control below)."""
    sep = _separations(trained.model, truth)
    assert max(v for (e, name, k), v in sep.items() if name == "layer energy") < 0.11, sep
    assert max(v for (e, name, k), v in sep.items() if name == "width") < 0.45, sep


def test_layer_and_shape_checks_can_fail(showers, truth):
    """The windows above reject an undertrained model (one epoch per phase)."""
    torch.set_num_threads(1)
    weak = train_caloman(
        showers.showers, showers.incident_energies, CaloManConfig(**SMALL), epochs=1, batch_size=100, lr=2e-3, seed=0
    ).model
    sep = _separations(weak, truth)
    assert max(v for (e, name, k), v in sep.items() if name == "layer energy") > 0.11
    assert max(v for (e, name, k), v in sep.items() if name == "width") > 0.45


def test_sampling_is_chunked_and_checked(trained):
    model = trained.model
    torch.manual_seed(3)
    a = model.sample(np.full(10, 4096.0), batch_size=3)  # chunks of 3, 3, 3, 1
    torch.manual_seed(3)
    b = model.sample(np.full(10, 4096.0), batch_size=3)
    assert np.array_equal(a, b) and a.shape == (10, 368)
    assert model.sample(np.zeros(0) + 1.0)[:0].shape == (0, 368)
    with pytest.raises(ValueError, match="training range"):
        model.sample([1e7])
    with pytest.raises(ValueError, match="finite and positive"):
        model.sample([-1.0])
    with pytest.raises(ValueError, match="batch_size"):
        model.sample([4096.0], batch_size=0)
    with pytest.raises(ValueError, match="energies must be"):
        model.sample(np.ones((2, 2)))
    with pytest.raises(RuntimeError, match="untrained"):
        CaloMan(CaloManConfig(**SMALL)).sample([4096.0])


def test_sample_showers_is_the_sampling_pass_without_bookkeeping(trained):
    model = trained.model.eval()
    energies = np.array([1024.0, 4096.0, 8192.0])
    fast = model.sample_showers(energies, torch.Generator().manual_seed(5))
    assert torch.is_tensor(fast) and fast.shape == (3, 368)
    full = model.sample(condition=energies, generator=torch.Generator().manual_seed(5))
    np.testing.assert_array_equal(fast.float().numpy(), full.showers)
    with pytest.raises(ValueError, match="training range"):
        model.sample_showers([1e7])
    model.train()
    try:
        with pytest.raises(RuntimeError, match="eval mode"):
            model.sample_showers(energies)
    finally:
        model.eval()


def test_train_rejects_bad_input(showers):
    with pytest.raises(ValueError, match="showers must be"):
        train_caloman(showers.showers[:, :10], showers.incident_energies, CaloManConfig(**SMALL), epochs=1)
    with pytest.raises(ValueError, match="epochs"):
        train_caloman(showers.showers, showers.incident_energies, CaloManConfig(**SMALL), epochs=0)
    with pytest.raises(ValueError, match="too few"):
        train_caloman(showers.showers[:5], showers.incident_energies[:5], CaloManConfig(**SMALL), epochs=1)
    with pytest.raises(ValueError, match="rows"):
        train_caloman(showers.showers, showers.incident_energies[:5], CaloManConfig(**SMALL), epochs=1)


def test_checkpoint_round_trip(trained, tmp_path):
    path = save_checkpoint(trained.model, tmp_path / "m.pt", extra={"note": "test"})
    model, extra = load_checkpoint(path)
    assert extra == {"note": "test"} and model.config == trained.model.config
    for (k, v), (k2, v2) in zip(trained.model.state_dict().items(), model.state_dict().items()):
        assert k == k2 and torch.equal(v, v2), k
    torch.manual_seed(5)
    a = trained.model.sample(np.full(4, 256.0))
    torch.manual_seed(5)
    assert np.array_equal(a, model.sample(np.full(4, 256.0)))
    with pytest.raises(FileExistsError):
        save_checkpoint(trained.model, path)
    assert not (tmp_path / "m.pt.partial").exists()


def test_checkpoint_rejects_other_files(trained, tmp_path):
    other = tmp_path / "other.pt"
    torch.save({"format": "hepgen.epic_fm", "version": 1}, other)
    with pytest.raises(ValueError, match=r"other\.pt.*'hepgen\.epic_fm'.*expected 'hepgen\.caloman'"):
        load_checkpoint(other)
    torch.save({"model": torch.zeros(3)}, other)
    with pytest.raises(ValueError, match=r"other\.pt: not a hepgen checkpoint.*'model'"):
        load_checkpoint(other)
    path = save_checkpoint(trained.model, tmp_path / "m.pt")
    payload = torch.load(path, weights_only=True)
    payload["version"] = 99
    torch.save(payload, other)
    with pytest.raises(ValueError, match=r"other\.pt: .*version 99"):
        load_checkpoint(other)
    payload["version"] = VERSION
    del payload["state_dict"]["latent_mean"]
    torch.save(payload, other)
    with pytest.raises(ValueError, match=r"other\.pt: damaged"):
        load_checkpoint(other)
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"text\.pt: not a readable"):
        load_checkpoint(tmp_path / "text.pt")
    with pytest.raises(FileNotFoundError, match="missing"):
        load_checkpoint(tmp_path / "missing.pt")
