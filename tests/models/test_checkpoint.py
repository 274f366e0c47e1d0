"""hepgen.models.checkpoint.Checkpoint: the round trip, the on-disk layout every release has
written, and every refusal (with the path in the message)."""

import os

import pytest
import torch
from model_toys import jets_toy

import hepgen.models
from hepgen.models.checkpoint import Checkpoint, provenance
from hepgen.models.registry import PRETRAINED


def small_checkpoint(**changes) -> Checkpoint:
    fields = dict(
        format="hepgen.epic",
        version=1,
        config={"a": 1},
        weights={"w": torch.arange(3.0)},
        provenance={"data": "toy"},
        entries={"train_state": {"epoch": 2}},
    )
    return Checkpoint(**{**fields, **changes})


def test_round_trip_keeps_everything(tmp_path):
    ckpt = small_checkpoint()
    path = ckpt.write(tmp_path / "c.pt")
    assert not (tmp_path / "c.pt.partial").exists()
    back = Checkpoint.read(path)
    assert back.source == path
    assert (back.format, back.version, back.config, back.entries) == (ckpt.format, 1, {"a": 1}, ckpt.entries)
    assert torch.equal(back.weights["w"], ckpt.weights["w"])
    assert back.provenance["data"] == "toy" and back.provenance["hepgen_version"] == hepgen.__version__


def test_on_disk_layout_is_the_older_one(tmp_path):
    path = small_checkpoint().write(tmp_path / "c.pt")
    payload = torch.load(path, weights_only=True)
    assert sorted(payload) == sorted(
        ["format", "version", "hepgen_version", "config", "state_dict", "extra", "train_state"]
    )
    assert payload["extra"] == {"data": "toy"}
    # A file as the older writer made it reads unchanged.
    model = jets_toy()
    old = {
        "format": "hepgen.epic",
        "version": 1,
        "hepgen_version": "0.0.9",
        "config": model.config.to_dict(),
        "state_dict": model.state_dict(),
        "extra": {"data": "old.h5"},
    }
    torch.save(old, tmp_path / "old.pt")
    loaded = hepgen.models.load(tmp_path / "old.pt")
    assert loaded.provenance == {"data": "old.h5", "hepgen_version": "0.0.9"}


def _same(a, b) -> bool:
    """Nested dicts/lists of tensors and plain values, compared exactly."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return isinstance(b, (list, tuple)) and len(a) == len(b) and all(map(_same, a, b))
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b)
    return a == b


@pytest.mark.parametrize("name", sorted(PRETRAINED))
def test_shipped_checkpoints_read_and_rewrite_unchanged(name, tmp_path):
    path = PRETRAINED[name][0]
    ckpt = Checkpoint.read(path)
    again = Checkpoint.read(ckpt.write(tmp_path / "copy.pt"))
    original = torch.load(path, weights_only=True)
    # A model's own entries (the events models' preprocessing) survive the round trip too.
    own = {
        k: v
        for k, v in original.items()
        if k not in ("format", "version", "hepgen_version", "config", "state_dict", "extra")
    }
    assert again.config == original["config"] and _same(again.entries, own)
    assert all(torch.equal(again.weights[k], v) for k, v in original["state_dict"].items())
    assert {k: v for k, v in again.provenance.items() if k != "hepgen_version"} == original["extra"]


def test_write_refuses_to_overwrite(tmp_path):
    path = small_checkpoint().write(tmp_path / "c.pt")
    with pytest.raises(FileExistsError, match="c.pt exists"):
        small_checkpoint().write(path)
    small_checkpoint(config={"a": 2}).write(path, force=True)
    assert Checkpoint.read(path).config == {"a": 2}
    with pytest.raises(FileNotFoundError, match="does not exist"):
        small_checkpoint().write(tmp_path / "no" / "c.pt")


def test_bad_fields_are_refused():
    with pytest.raises(ValueError, match="version"):
        small_checkpoint(version=0)
    with pytest.raises(ValueError, match="weights"):
        small_checkpoint(weights={"w": [1, 2]})
    with pytest.raises(ValueError, match="reserved"):
        small_checkpoint(entries={"state_dict": {}})


def _write(path, payload):
    torch.save(payload, path)
    return path


def test_every_refusal_names_the_file(tmp_path):
    good = small_checkpoint().write(tmp_path / "good.pt")
    data = good.read_bytes()
    (tmp_path / "truncated.pt").write_bytes(data[: len(data) // 2])
    (tmp_path / "random.pt").write_bytes(os.urandom(4096))
    payload = torch.load(good, weights_only=True)
    cases = {
        "missing.pt": (FileNotFoundError, "no such checkpoint file"),
        "truncated.pt": (ValueError, "not a readable hepgen checkpoint"),
        "random.pt": (ValueError, "not a readable hepgen checkpoint"),
        _write(tmp_path / "plain.pt", {"weight": torch.ones(2)}).name: (ValueError, "no 'format' tag"),
        _write(tmp_path / "list.pt", [1, 2]).name: (ValueError, "no 'format' tag"),
        _write(tmp_path / "newer.pt", {**payload, "version": 99}).name: (ValueError, "newer hepgen"),
        _write(tmp_path / "older.pt", {**payload, "format": "hepgen.caloman", "version": 1}).name: (
            ValueError,
            "no longer read",
        ),
        _write(tmp_path / "unknown.pt", {**payload, "format": "other.thing"}).name: (
            ValueError,
            "unknown checkpoint format",
        ),
        _write(tmp_path / "damaged.pt", {**payload, "state_dict": {"w": "text"}}).name: (ValueError, "damaged"),
        _write(tmp_path / "badversion.pt", {**payload, "version": "1"}).name: (ValueError, "damaged"),
    }
    for name, (error, message) in cases.items():
        with pytest.raises(error, match=message) as info:
            Checkpoint.read(tmp_path / name)
        assert str(tmp_path / name) in str(info.value), name
    with pytest.raises(ValueError, match=r"a 'hepgen.epic' checkpoint, expected 'hepgen.caloman' \(CaloMan showers\)"):
        Checkpoint.read(good, expect_format="hepgen.caloman")


def test_content_that_does_not_build_the_model_is_damaged(tmp_path):
    model = jets_toy()
    ckpt = model.to_checkpoint()
    ckpt.weights["net.extra"] = torch.ones(1)
    path = ckpt.write(tmp_path / "extra.pt")
    with pytest.raises(ValueError, match=f"{path}: damaged hepgen.epic checkpoint"):
        hepgen.models.load(path)
    bad_config = model.to_checkpoint()
    bad_config.config["hidden"] = -1
    with pytest.raises(ValueError, match="damaged hepgen.epic checkpoint.*hidden"):
        hepgen.models.load(bad_config.write(tmp_path / "config.pt"))


def test_provenance_says_when():
    p = provenance("train.h5", seed=3)
    assert p["data"] == "train.h5" and p["seed"] == 3 and p["created"].endswith("+00:00")
