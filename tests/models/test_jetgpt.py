"""JetGPT: the mixture likelihood against float64 arithmetic, KV-cache sampling against
re-running the prefix, padding that cannot leak into the likelihood, a short fit to a known
distribution, the event pipeline and checkpoints."""

import math

import numpy as np
import pytest
import torch

from hepgen.data.events import MUON_MASS_GEV, EventSample, event_vectors
from hepgen.models.events import EventModelConfig, EventPreprocessing, build_model
from hepgen.models.events.jetgpt import JetGPT, gmm, sort_by_pt
from hepgen.models.events.vectors import MAX_COMPONENTS as MAX_LENGTH
from hepgen.nn.bayesian import bayesian_layers, kl_divergence, resample, weight_draws


def config(hidden=16, layers=2, heads=2, components=3, **kw):
    options = {"heads": heads, "components": components, **kw.pop("options", {})}
    return EventModelConfig(model="jetgpt", hidden=hidden, layers=layers, options=options, **kw)


def sample_vectors(model, n_jets, generator, batch_size=10_000, use_cache=True):
    return model.sample(n_jets, generator, batch_size=batch_size, use_cache=use_cache)


def toy_events(n, seed=0):
    """Pseudo Z+jets events (right layout, plausible ranges, pT-ordered objects)."""
    rng = np.random.default_rng(seed)
    n_jets = rng.choice([1, 2, 3], size=n, p=[0.6, 0.3, 0.1])
    muons = np.zeros((n, 2, 4), np.float32)
    muons[:, :, 0] = np.sort(rng.exponential(20, (n, 2)) + 20, axis=1)[:, ::-1]
    muons[:, :, 1] = rng.normal(0, 1.5, (n, 2))
    muons[:, :, 2] = rng.uniform(-np.pi, np.pi, (n, 2))
    muons[:, :, 3] = MUON_MASS_GEV
    jets = np.zeros((n, 3, 4), np.float32)
    jets[:, :, 0] = np.sort(rng.exponential(30, (n, 3)) + 20.5, axis=1)[:, ::-1]
    jets[:, :, 1] = rng.normal(0, 2, (n, 3))
    jets[:, :, 2] = rng.uniform(-np.pi, np.pi, (n, 3))
    jets[:, :, 3] = rng.exponential(5, (n, 3)) + 0.5
    jets[np.arange(3)[None, :] >= n_jets[:, None]] = 0
    return EventSample(muons, jets, n_jets)


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny networks: one thread is fastest on a busy 2-core machine
    yield
    torch.set_num_threads(threads)


def fitted_model(dtype=torch.float64, seed=0, **kw):
    torch.manual_seed(seed)
    model = build_model(config(**kw))
    assert isinstance(model, JetGPT)
    # Random init gives nearly-uniform, nearly-identical conditionals; larger weights make
    # the conditionals depend strongly on the prefix, which is what the tests need to see.
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(3.0) if p.dim() > 1 else p.add_(0.3 * torch.randn_like(p))
    return model.to(dtype).eval()


# ---- mixture ------------------------------------------------------------------------------


def test_mixture_log_prob_matches_float64_direct_sum():
    g = torch.Generator().manual_seed(1)
    raw = torch.randn(50, 7, 3 * 5, generator=g) * 3
    x = torch.randn(50, 7, generator=g) * 4
    log_w, mu, log_s = gmm.split_head(raw, -7.0)
    ours = gmm.log_prob(x, log_w, mu, log_s).double()
    w, m, s, xd = log_w.double().exp(), mu.double(), log_s.double().exp(), x.double()
    direct = torch.log((w * torch.exp(-0.5 * ((xd[..., None] - m) / s) ** 2) / (s * math.sqrt(2 * math.pi))).sum(-1))
    assert torch.allclose(w.sum(-1), torch.ones(()).double(), atol=1e-6)
    assert torch.allclose(ours, direct, rtol=1e-5, atol=1e-5)
    # Far in a tail the direct sum underflows; the log-sum-exp form stays finite and exact.
    far = gmm.log_prob(torch.tensor([1e3]), torch.zeros(1, 1), torch.zeros(1, 1), torch.zeros(1, 1))
    assert far.item() == pytest.approx(-0.5 * 1e6 - 0.5 * math.log(2 * math.pi), rel=1e-6)


def test_mixture_widths_are_bounded_below_and_sampling_inverts_the_weights():
    raw = torch.tensor([[0.0, math.log(3.0), 0.0, 10.0, -100.0, 0.0]])  # K = 2
    log_w, mu, log_s = gmm.split_head(raw, -7.0)
    assert log_s[0, 0].item() == pytest.approx(-7.0, abs=1e-6) and log_s[0, 1].item() == pytest.approx(0.0, abs=1e-3)
    # weights 1/4, 3/4: u < 1/4 picks component 0 (mean 0, sigma e^-7), else component 1 (mean 10).
    u = torch.tensor([0.1, 0.24, 0.26, 0.9])
    x = gmm.sample(log_w.expand(4, 2), mu.expand(4, 2), log_s.expand(4, 2), u, torch.zeros(4))
    assert x.tolist() == pytest.approx([0.0, 0.0, 10.0, 10.0], abs=1e-5)


# ---- KV cache against recomputation ---------------------------------------------------------


@pytest.mark.parametrize("bayesian", [False, True])
def test_kv_cache_sampling_equals_recomputing_the_prefix(bayesian):
    model = fitted_model(bayesian=bayesian)
    if bayesian:
        resample(model, torch.Generator().manual_seed(3))  # one fixed ensemble member
        assert all(layer.fixed for layer in bayesian_layers(model))
    n_jets = torch.tensor([1, 3, 2, 3, 1, 2, 2, 3, 1, 1, 3])
    cached = sample_vectors(model, n_jets, torch.Generator().manual_seed(5), batch_size=4, use_cache=True)
    recomputed = sample_vectors(model, n_jets, torch.Generator().manual_seed(5), batch_size=4, use_cache=False)
    assert torch.allclose(cached, recomputed, rtol=0, atol=1e-10)
    # Non-trivial: the events differ from each other, padding stays zero, another seed differs.
    lengths = 5 + 4 * n_jets
    assert ((torch.arange(MAX_LENGTH) >= lengths[:, None]) <= (cached == 0)).all()
    assert cached[:, :9].std(0).min() > 0.05
    other = sample_vectors(model, n_jets, torch.Generator().manual_seed(6), batch_size=4)
    assert (other - cached).abs().max() > 0.1
    # Batching does not change the events (random numbers are drawn per event up front).
    one_batch = sample_vectors(model, n_jets, torch.Generator().manual_seed(5), batch_size=100)
    assert torch.allclose(one_batch, cached, rtol=0, atol=1e-10)


def test_sampled_components_follow_the_networks_own_conditionals():
    """Each sampled x_t is mu_k + sigma_k z_t for the component the uniform picks, with the
    parameters that the full (training-path) forward gives at the sampled prefix."""
    model = fitted_model()
    n_jets = torch.tensor([2] * 6)
    x = sample_vectors(model, n_jets, torch.Generator().manual_seed(9))[:, :13]
    # sample_vectors draws all uniforms, then all normals, from the generator.
    g = torch.Generator().manual_seed(9)
    u = torch.rand(6, MAX_LENGTH, generator=g, dtype=torch.float64)[:, :13]
    z_true = torch.randn(6, MAX_LENGTH, generator=g, dtype=torch.float64)[:, :13]
    with torch.no_grad():
        (log_w, mu, log_s), _, _ = model.conditionals(x, n_jets)
    cumulative = log_w.exp().cumsum(-1)
    k = (cumulative < u[..., None] * cumulative[..., -1:]).sum(-1, keepdim=True)
    z_back = (x - mu.gather(-1, k).squeeze(-1)) / log_s.gather(-1, k).squeeze(-1).exp()
    assert torch.allclose(z_back, z_true, atol=1e-8)


# ---- padding --------------------------------------------------------------------------------


def test_padding_does_not_reach_the_likelihood():
    model = fitted_model()
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, MAX_LENGTH, generator=g, dtype=torch.float64)
    n_jets = torch.tensor([1, 3, 1, 2])
    lp = model.log_prob(x, n_jets)
    # Rubbish (huge values, NaN) in the padding of the 1- and 2-jet events changes nothing.
    y = x.clone()
    y[0, 9:], y[2, 9:] = 1e6, float("nan")
    y[3, 13:] = -1e6
    assert torch.equal(model.log_prob(y, n_jets), lp)
    # ... and each event's likelihood is that of the event alone, unpadded.
    for i, n in enumerate(n_jets.tolist()):
        alone = model.log_prob(x[i : i + 1, : 5 + 4 * n], n_jets[i : i + 1])
        assert alone.item() == pytest.approx(lp[i].item(), abs=1e-10)
    # Gradients: padded inputs get none, and they stay finite.
    y.requires_grad_(True)
    model.log_prob(y, n_jets).sum().backward()
    assert torch.isfinite(y.grad).all() and (y.grad[0, 9:] == 0).all() and (y.grad[3, 13:] == 0).all()
    # Changing a real component does change the likelihood (the check above can fail).
    z = x.clone()
    z[0, 8] += 0.5
    assert model.log_prob(z, n_jets)[0] != lp[0]


def test_bad_inputs_are_named():
    model = fitted_model(dtype=torch.float32)
    with pytest.raises(ValueError, match="n_jets: expected values 1, 2 or 3"):
        model.log_prob(torch.zeros(2, 9), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="x: expected a float tensor"):
        model.log_prob(torch.zeros(2, 18), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="x: 9 columns do not hold events with up to 2 jets"):
        model.log_prob(torch.zeros(2, 9), torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="n_jets: expected a 1-D integer tensor"):
        model.log_prob(torch.zeros(2, 9), torch.tensor([1.0, 1.0]))
    with pytest.raises(ValueError, match=r"x: expected shape \(2, 17\)"):
        model.loss(torch.zeros(2, 9), torch.tensor([1, 1]))
    with pytest.raises(ValueError, match=r"hidden \(10\) must be a multiple of options heads \(4\)"):
        build_model(config(hidden=10, heads=4))
    with pytest.raises(ValueError, match="bayesian_blocks must be an int in 0..layers"):
        build_model(config(layers=2, options={"bayesian_blocks": 3}))
    with pytest.raises(ValueError, match="JetGPT does not know \\['width'\\]"):
        build_model(config(options={"width": 3}))
    with pytest.raises(ValueError, match="batch_size"):
        model.sample(torch.tensor([1]), batch_size=0)


# ---- learning a known distribution ----------------------------------------------------------


def test_a_short_fit_learns_a_known_autoregressive_distribution():
    """x_0 ~ 0.5 N(-1.5, 0.3^2) + 0.5 N(1.5, 0.3^2); x_t = 0.8 x_{t-1} + 0.6 eps (t = 1..8), for
    1-jet events (9 components). The exact NLL is known; the fitted model must approach it
    and its samples must show the bimodality and the 0.8 correlation."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    n = 4000

    def draw(count, gen):
        x = torch.empty(count, 9)
        x[:, 0] = torch.where(torch.rand(count, generator=gen) < 0.5, -1.5, 1.5) + 0.3 * torch.randn(
            count, generator=gen
        )
        for t in range(1, 9):
            x[:, t] = 0.8 * x[:, t - 1] + 0.6 * torch.randn(count, generator=gen)
        return x

    def exact_nll(x):
        lp0 = torch.logsumexp(torch.stack([-0.5 * ((x[:, 0] - m) / 0.3) ** 2 for m in (-1.5, 1.5)]), 0) - math.log(
            2 * 0.3 * math.sqrt(2 * math.pi)
        )
        rest = (-0.5 * ((x[:, 1:] - 0.8 * x[:, :-1]) / 0.6) ** 2 - math.log(0.6 * math.sqrt(2 * math.pi))).sum(1)
        return -(lp0 + rest).mean().item()

    data, test = draw(n, g), draw(2000, g)
    model = build_model(config())
    ones = torch.ones(n, dtype=torch.int64)
    untrained = -model.log_prob(test, torch.ones(2000, dtype=torch.int64)).mean().item()
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    for _step in range(400):
        idx = torch.randint(0, n, (128,), generator=g)
        loss = -model.log_prob(data[idx], ones[idx]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        fitted = -model.log_prob(test, torch.ones(2000, dtype=torch.int64)).mean().item()
    truth = exact_nll(test)
    assert untrained > truth + 3  # the test can fail: an untrained model is far off
    assert fitted < truth + 0.25, (fitted, truth)
    s = sample_vectors(model, torch.ones(3000, dtype=torch.int64), torch.Generator().manual_seed(1))[:, :9]
    assert 0.4 < (s[:, 0] > 0).float().mean() < 0.6
    assert (s[:, 0].abs() - 1.5).abs().median() < 0.3  # two modes, not one blob at 0
    corr = torch.corrcoef(torch.stack([s[:, 4], s[:, 5]]))[0, 1]
    assert abs(corr - 0.8) < 0.1, corr


# ---- events: preprocessing, training, Bayesian ---------------------------------------------


def fit(model, x, n_jets, steps, lr=3e-3, batch_size=128, seed=0):
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    bayesian = bool(bayesian_layers(model))
    losses = []
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, len(x), (batch_size,), generator=g)
        loss = model.loss(x[idx], n_jets[idx])
        objective = loss + kl_divergence(model) / len(x) if bayesian else loss
        opt.zero_grad()
        objective.backward()
        opt.step()
        losses.append(loss.item())
    return model.eval(), losses


def test_events_round_trip_through_jetgpt():
    events = toy_events(1500)
    prep = EventPreprocessing.fit(events)
    x, n_jets = prep.encode(events)
    torch.manual_seed(0)
    model, losses = fit(build_model(config()), x, n_jets, steps=60)
    assert np.mean(losses[-10:]) < np.mean(losses[:10]) - 0.3  # toy features are nearly independent: little to learn
    g = torch.Generator().manual_seed(3)
    n_new = prep.draw_multiplicities(400, np.random.default_rng(3))
    y = model.sample(n_new, g)
    assert y.shape == (400, 17) and torch.isfinite(y).all()
    assert ((torch.arange(17) >= 5 + 4 * n_new[:, None]) <= (y == 0)).all()
    out = prep.decode(y, n_new, np.random.default_rng(0))
    real = np.arange(3)[None, :] < out.n_jets[:, None]
    assert (out.jets[..., 0][real] > 19.99).all() and (np.abs(out.jets[..., 2]) <= np.pi + 1e-5).all()
    # Data are pT-ordered; a model this small leaves some events out of order, which sort_by_pt repairs.
    fixed, changed = sort_by_pt(out)
    assert changed.mean() < 0.5
    assert (fixed.muons[:, 0, 0] >= fixed.muons[:, 1, 0]).all()
    assert (np.diff(np.where(real, fixed.jets[..., 0], -1.0), axis=1) <= 0).all()


def test_sort_by_pt_swaps_whole_objects():
    ev = toy_events(20)
    swapped = EventSample(ev.muons[:, ::-1], ev.jets, ev.n_jets)
    back, changed = sort_by_pt(swapped)
    assert changed.all() and np.array_equal(back.muons, ev.muons)
    np.testing.assert_allclose(event_vectors(back, 1), event_vectors(ev, 1), atol=1e-6)
    _, unchanged = sort_by_pt(ev)
    assert not unchanged.any()


def test_bayesian_jetgpt_has_kl_and_its_members_differ():
    model = build_model(config(bayesian=True, init_log_var=-3.0))
    layers = bayesian_layers(model)
    # Head + last block's MLP are Bayesian, the rest is not.
    assert model.head in layers and len(layers) == 3 and not bayesian_layers(model.blocks[0])
    assert kl_divergence(model).item() > 0
    events = toy_events(600)
    prep = EventPreprocessing.fit(events)
    x, n_jets = prep.encode(events)
    model, _ = fit(model, x, n_jets, steps=20)
    members = [model.sample(n_jets[:200], torch.Generator().manual_seed(4)) for _ in weight_draws(model, 2, seed=0)]
    assert not torch.allclose(members[0], members[1])
    # ... and with the means, sampling is deterministic.
    a = model.sample(n_jets[:50], torch.Generator().manual_seed(4))
    assert torch.equal(a, model.sample(n_jets[:50], torch.Generator().manual_seed(4)))
