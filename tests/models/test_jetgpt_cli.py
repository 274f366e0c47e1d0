"""JetGPT through the shared event pipeline: the EventGenerator contract, and
`hepgen train events --model jetgpt [--bayesian]` -> `hepgen generate events` on tiny sizes."""

import numpy as np
import pytest
import torch
from events_toys import (
    z_file,  # tests/models is on sys.path (pytest rootdir-relative import)
)

import hepgen.models
from hepgen.cli import main
from hepgen.data.events import read_events
from hepgen.models.events import EventModelConfig, build_model
from hepgen.models.events.jetgpt import JetGPT
from hepgen.models.events.vectors import component_mask
from hepgen.nn.bayesian import bayesian_layers, kl_divergence


@pytest.mark.parametrize("bayesian", [False, True])
def test_contract_loss_gradients_and_padded_samples(bayesian):
    torch.manual_seed(0)
    net = build_model(
        EventModelConfig(model="jetgpt", bayesian=bayesian, hidden=16, layers=2, options={"heads": 2, "components": 3})
    )
    n_jets = torch.tensor([1, 2, 3, 1, 3])
    x = torch.randn(5, 17) * component_mask(n_jets)
    loss = net.train().loss(x, n_jets)
    assert loss.dim() == 0 and torch.isfinite(loss)
    (loss + kl_divergence(net)).backward()
    assert all(p.grad is not None for p in net.parameters())
    assert bool(bayesian_layers(net)) == bayesian
    sample = net.eval().sample_vectors(n_jets, generator=torch.Generator().manual_seed(1))
    assert sample.shape == (5, 17) and torch.isfinite(sample).all()
    assert torch.all(sample[component_mask(n_jets) == 0] == 0)
    assert torch.equal(sample, net.sample_vectors(n_jets, generator=torch.Generator().manual_seed(1)))


def test_cli_train_and_generate_jetgpt(tmp_path, capsys):
    torch.set_num_threads(1)
    data = z_file(tmp_path / "train.h5", 400, seed=0)
    common = [
        "--data",
        str(data),
        "--epochs",
        "1",
        "--hidden",
        "16",
        "--layers",
        "2",
        "--batch-size",
        "128",
        "--option",
        "heads=2",
        "--option",
        "components=3",
        "--quiet",
    ]
    ckpt, bckpt = tmp_path / "gpt.pt", tmp_path / "bgpt.pt"
    assert main(["train", "events", "--model", "jetgpt", *common, "-o", str(ckpt)]) == 0
    assert main(["train", "events", "--model", "jetgpt", "--bayesian", *common, "-o", str(bckpt)]) == 0
    model = hepgen.models.load(ckpt)
    assert isinstance(model, JetGPT) and model.options.components == 3 and not bayesian_layers(model)
    gen, bgen = tmp_path / "gpt.h5", tmp_path / "bgpt.h5"
    assert main(["generate", "events", "--model", str(ckpt), "-n", "150", "-o", str(gen), "--quiet"]) == 0
    assert (
        main(["generate", "events", "--model", str(bckpt), "-n", "100", "--ensemble", "2", "-o", str(bgen), "--quiet"])
        == 0
    )
    events = read_events(gen)
    assert len(events) == 150 and set(np.unique(events.n_jets)) <= {1, 2, 3}
    real = np.arange(3)[None] < events.n_jets[:, None]
    assert np.all(events.jets[:, :, 0][real] > 20 - 0.01) and np.all(events.jets[~real] == 0)
    sample = read_events(bgen)
    members = sample.members
    assert len(sample) == 200 and np.bincount(members).tolist() == [100, 100]
    assert not np.allclose(sample.muons[members == 0], sample.muons[members == 1])
    # A bad JetGPT option is one line naming it, before any data is read; nothing written.
    capsys.readouterr()
    assert (
        main(["train", "events", "--model", "jetgpt", *common, "--option", "width=3", "-o", str(tmp_path / "x.pt")])
        == 1
    )
    assert "JetGPT does not know ['width']" in capsys.readouterr().err and not (tmp_path / "x.pt").exists()
