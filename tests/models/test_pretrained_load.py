"""The shipped models load through hepgen.models.load and give the numbers the older loaders gave."""

import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch

import hepgen.models


def old(call, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return call(*args, **kwargs)


def test_list_pretrained_names_the_shipped_files():
    shipped = hepgen.models.list_pretrained()
    assert sorted(shipped) == ["pretrained-calo", "pretrained-events", "pretrained-jets"]
    for path, description in shipped.values():
        assert path.is_file() and description


def test_calo_same_numbers_as_the_older_loader():
    from hepgen.models.caloman import CaloMan, load_pretrained

    model = hepgen.models.load("pretrained-calo")
    assert isinstance(model, CaloMan) and not model.training
    energies = np.array([1024.0, 4096.0, 65536.0, 4096.0])
    torch.manual_seed(0)
    new = model.sample(condition=energies).showers
    older = old(load_pretrained)[0]  # building a model draws from the global generator: before seeding
    torch.manual_seed(0)
    before = old(older.sample, energies)
    np.testing.assert_array_equal(new, before)
    assert hepgen.models.load("pretrained", kind="showers").provenance == model.provenance


def test_jets_same_numbers_as_the_older_loader():
    from hepgen.models import epic

    model = hepgen.models.load("pretrained-jets")
    assert model.sampler_settings() == {"method": "midpoint", "steps": 100, "rtol": 1e-3, "atol": 1e-3}
    new = model.sample(40, steps=4, generator=torch.Generator().manual_seed(0))
    before = old(epic.load, "pretrained").sample(
        40, steps=4, method="midpoint", generator=torch.Generator().manual_seed(0)
    )
    np.testing.assert_array_equal(new.particles, before.particles)
    np.testing.assert_array_equal(new.jets, before.jets)
    assert type(hepgen.models.load("pretrained", kind="jets")) is type(model)


def test_pretrained_names_are_checked():
    with pytest.raises(ValueError, match="ambiguous"):
        hepgen.models.load("pretrained")
    with pytest.raises(ValueError, match="unknown pretrained model 'pretrained-zjets'"):
        hepgen.models.load("pretrained-zjets")
    with pytest.raises(ValueError, match="generates showers, expected jets"):
        hepgen.models.load("pretrained-calo", kind="jets")
    with pytest.raises(FileNotFoundError, match="no such checkpoint file"):
        hepgen.models.load("no-such-file.pt")
    with pytest.raises(ValueError, match="kind must be one of"):
        hepgen.models.load("pretrained-calo", kind="photons")


def test_importing_the_package_imports_no_torch():
    code = (
        "import sys, hepgen.models, hepgen.models.events, hepgen.data; hepgen.models.list_pretrained(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
