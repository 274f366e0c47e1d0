"""Every event preprocessing transform round-trips, on numpy arrays and torch tensors."""

import numpy as np
import pytest

from hepgen.data import (
    ArtanhPhi,
    Chain,
    LogTransform,
    RelativePhi,
    Standardize,
    event_preprocessing,
    event_vectors,
)


def columns(rng, n=50):
    """(n, 4): a positive column, a column above 20, a phi column, a free column."""
    return np.stack(
        [
            rng.uniform(0.1, 100, n),
            rng.uniform(20.0, 300, n),
            rng.uniform(-np.pi, np.pi, n),
            rng.normal(size=n),
        ],
        axis=1,
    )


TRANSFORMS = {
    "log": lambda x: LogTransform([0]),
    "log-threshold": lambda x: LogTransform([1], shift=20 - 0.01),
    "artanh-phi": lambda x: ArtanhPhi([2]),
    "standardize": lambda x: Standardize().fit(x),
    "chain": lambda x: Chain(LogTransform([0, 1]), ArtanhPhi([2]), Standardize()).fit(x),
}


@pytest.mark.parametrize("name", TRANSFORMS)
def test_round_trip_numpy(rng, name):
    x = columns(rng)
    transform = TRANSFORMS[name](x)
    y = transform.forward(x)
    assert y.shape == x.shape and np.all(np.isfinite(y))
    assert not np.array_equal(y, x)
    np.testing.assert_allclose(transform.inverse(y), x, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name", TRANSFORMS)
def test_round_trip_torch_float32(rng, name):
    torch = pytest.importorskip("torch")
    x = columns(rng)
    transform = TRANSFORMS[name](x)
    t = torch.tensor(x, dtype=torch.float32)
    y = transform.forward(t)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float32
    np.testing.assert_allclose(y.numpy(), transform.forward(x), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(transform.inverse(y).numpy(), x, rtol=1e-4, atol=1e-4)


def test_inputs_are_not_modified(rng):
    x = columns(rng)
    before = x.copy()
    TRANSFORMS["chain"](x).forward(x)
    np.testing.assert_array_equal(x, before)


def test_standardize_gives_zero_mean_unit_std(rng):
    x = columns(rng, 1000)
    y = Standardize().fit(x).forward(x)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-12)
    np.testing.assert_allclose(y.std(0), 1, atol=1e-12)
    constant = np.ones((5, 2))
    np.testing.assert_array_equal(Standardize().fit(constant).forward(constant), 0)


def test_threshold_shift_values():
    y = LogTransform([0], shift=20 - 0.01).forward(np.array([[20.0], [21.0]]))
    np.testing.assert_allclose(y[:, 0], np.log([0.01, 1.01]))


def test_phi_at_pi_stays_finite():
    y = ArtanhPhi([0]).forward(np.array([[np.pi], [-np.pi]], dtype=np.float32))
    assert np.all(np.isfinite(y)) and y[0, 0] > 5


@pytest.mark.parametrize("n_jets", [1, 2, 3])
def test_relative_phi_round_trip(rng, n_jets):
    x = rng.uniform(-np.pi, np.pi, (30, 6 + 4 * n_jets))
    transform = RelativePhi(n_jets)
    y = transform.forward(x)
    assert y.shape == (30, 5 + 4 * n_jets)
    np.testing.assert_allclose(transform.inverse(y, phi_leading=x[:, 2]), x, atol=1e-12)
    # Rotating the whole event changes nothing.
    rotated = x.copy()
    rotated[:, transform.absolute_phi] = np.mod(rotated[:, transform.absolute_phi] + 1.0 + np.pi, 2 * np.pi) - np.pi
    np.testing.assert_allclose(transform.forward(rotated), y, atol=1e-12)


@pytest.mark.parametrize("n_jets", [1, 2, 3])
def test_standard_event_preprocessing_round_trip(rng, make_events, n_jets):
    vectors = event_vectors(make_events(rng, 300), n_jets).astype(np.float64)
    chain = event_preprocessing(n_jets).fit(vectors)
    y = chain.forward(vectors)
    np.testing.assert_allclose(y.mean(0), 0, atol=1e-10)
    np.testing.assert_allclose(chain.inverse(y), vectors, rtol=1e-9, atol=1e-9)


def test_errors_name_the_problem(rng):
    with pytest.raises(ValueError, match=r"columns \[0\] must exceed 20"):
        LogTransform([0], shift=20).forward(np.array([[19.0]]))
    with pytest.raises(ValueError, match=r"\[-pi, pi\]"):
        ArtanhPhi([0]).forward(np.array([[4.0]]))
    with pytest.raises(ValueError, match="fit"):
        Standardize().forward(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="expected shape"):
        LogTransform([0]).forward(np.ones(3))
    with pytest.raises(TypeError, match="numpy array or torch tensor"):
        LogTransform([0]).forward([[1.0]])
