"""torchrun -m hepgen train events: 2 gloo ranks == 1 process (a Bayesian CFM: masked-mean
loss, per-sample weight noise, the KL term), the validation loss reduced over ranks, resume
from 2 ranks on 1 process."""

import pytest
import torch
from train_helpers import events_file, failure, hepgen

from hepgen.models.checkpoint import Checkpoint

TINY = ["--hidden", "16", "--layers", "1", "--batch-size", "32", "--timesteps", "20"]
TINY += ["--quiet", "--seed", "5", "--validation-fraction", "0.2"]
BAYESIAN_CFM = ["--model", "cfm", "--bayesian"]


def _train(tmp_path, name, epochs, nproc=None, extra=BAYESIAN_CFM):
    data = tmp_path / "events.h5"
    if not data.exists():
        events_file(data, n=300)
    out = tmp_path / name
    args = ["train", "events", "--data", data, "-o", out, "--epochs", epochs, *TINY, *extra]
    result = hepgen(args, tmp_path, nproc)
    assert result.returncode == 0, failure(result)
    return Checkpoint.read(out), result


def _assert_close(a: Checkpoint, b: Checkpoint):
    assert a.weights.keys() == b.weights.keys()
    for key in a.weights:
        x, y = a.weights[key], b.weights[key]
        if key.endswith("attn.qkv.bias"):
            # The key bias adds the same q.b to every score of a query: softmax cancels it,
            # its gradient is 0 up to rounding, and Adam turns that rounding into steps of
            # either sign. Compared: the query and value biases.
            third = len(x) // 3
            x, y = torch.cat([x[:third], x[2 * third :]]), torch.cat([y[:third], y[2 * third :]])
        torch.testing.assert_close(x, y, rtol=2e-5, atol=2e-6, msg=key)


@pytest.mark.parametrize(
    "model",
    [
        BAYESIAN_CFM,
        pytest.param(["--model", "ddpm"], marks=pytest.mark.slow),
        pytest.param(["--model", "inn"], marks=pytest.mark.slow),
        # Skipped for now: in one CI run a rank aborted at exit after training ("terminate
        # called without an active exception", SIGABRT), under load; not yet understood
        # (issue 15's note). The jets, CFM, DDPM and INN cases cover the same loop.
        pytest.param(
            ["--model", "jetgpt"],
            marks=[pytest.mark.slow, pytest.mark.skip(reason="a rank aborts at exit under load: under study")],
        ),
    ],
    ids=lambda m: "-".join(a.strip("-") for a in m[1:]),
)
def test_two_ranks_equal_one_process(tmp_path, model):
    one, _ = _train(tmp_path, "one.pt", 2, extra=model)
    two, result = _train(tmp_path, "two.pt", 2, nproc=2, extra=model)
    _assert_close(one, two)
    h1, h2 = one.entries["train_state"]["history"], two.entries["train_state"]["history"]
    assert h2["val_loss"] == pytest.approx(h1["val_loss"], rel=1e-5)  # reduced over the ranks' blocks
    assert h2["loss"] == pytest.approx(h1["loss"], rel=1e-5)
    assert result.stdout.count("wrote ") == 1


@pytest.mark.slow
def test_resume_from_two_ranks_on_one_process(tmp_path):
    full, _ = _train(tmp_path, "full.pt", 3)
    _train(tmp_path, "part.pt", 3, nproc=2, extra=[*BAYESIAN_CFM, "--until", "1"])
    part, _ = _train(tmp_path, "part.pt", 3, extra=["--resume"])
    _assert_close(full, part)
    assert part.entries["train_state"]["epoch"] == 3


def test_patience_stops_and_ends_with_the_best_weights():
    import numpy as np
    from train_helpers import events_sample

    from hepgen.models.events import EventModelConfig
    from hepgen.models.events.train import train_events

    config = EventModelConfig(model="cfm", hidden=16, layers=1)
    # lr 0.1 on this toy: the validation loss improves once, then worsens (seeded: always so).
    result = train_events(
        events_sample(300), config, epochs=8, batch_size=32, lr=0.1, patience=1, validation_fraction=0.2
    )
    val = result.history["val_loss"]
    best = result.train_state["best"]
    assert result.stopped_early and result.epoch == len(val) < 8
    assert best["epoch"] == int(np.argmin(val)) + 1 == result.epoch - 1
    for key, value in result.model.state_dict().items():
        assert torch.equal(value, best["weights"][key])
    assert any(not torch.equal(v, best["weights"][k]) for k, v in result.train_state["last_weights"].items())
    with pytest.raises(ValueError, match="validation"):
        train_events(events_sample(300), config, epochs=2, patience=1, validation_fraction=0)
