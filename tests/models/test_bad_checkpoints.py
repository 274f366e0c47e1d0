"""Every checkpoint load path against a corpus of bad checkpoints, crafted pickles included.

Each bad file must be refused with a ValueError naming the file, through every loader:
``Checkpoint.read``, ``hepgen.models.load``, the per-model loaders (current and deprecated)
and the CLI (``--model FILE``, ``--resume``). A crafted pickle whose unpickling would create
a marker file is refused by all of them and the marker never appears (the same bytes do
create it through plain ``pickle``/``torch.load(weights_only=False)``: the test's pickles
are live).

With HEPGEN_BAD_CHECKPOINT_COUNTS=FILE.json the outcomes per loader are written there.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import subprocess
import sys
import warnings
import zipfile
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import h5py
import numpy as np
import pytest
import torch
from jet_toys import toy_jets
from model_toys import calo_toy, jets_toy

import hepgen.models
from hepgen.cli import main
from hepgen.data import EventSample, JetSample
from hepgen.models.caloman import load_checkpoint as caloman_load_checkpoint
from hepgen.models.checkpoint import Checkpoint
from hepgen.models.epic import load as epic_load
from hepgen.models.epic import load_checkpoint as epic_load_checkpoint
from hepgen.models.epic import read_train_state
from hepgen.models.events.checkpoint import load_checkpoint as events_load_checkpoint


class RunsCode:
    """Unpickling this object runs ``exec(code)``: what a crafted checkpoint would do."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return (exec, (self.code,))


def marker_code(marker: Path) -> str:
    return f"open({str(marker)!r}, 'w').close()"


def raw_pickle(marker: Path) -> bytes:
    """A legacy (non-zip) pickle file: a checkpoint-looking dict with a code-running value."""
    return pickle.dumps({"format": "hepgen.epic", "version": 1, "config": RunsCode(marker_code(marker))}, protocol=2)


def zip_with_pickle(good: Path, marker: Path) -> bytes:
    """A real torch zip checkpoint whose data.pkl is replaced by a code-running pickle."""
    payload = pickle.dumps({"format": "hepgen.epic", "version": 1, "state_dict": RunsCode(marker_code(marker))}, 2)
    out = io.BytesIO()
    with zipfile.ZipFile(good) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            dst.writestr(info, payload if info.filename.endswith("/data.pkl") else src.read(info))
    return out.getvalue()


def torch_bytes(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def good_payload(path: Path) -> dict:
    return torch.load(path, weights_only=True)


def changed(path: Path, **changes) -> bytes:
    payload = good_payload(path)
    for key, value in changes.items():
        if value is None:
            payload.pop(key)
        else:
            payload[key] = value
    return torch_bytes(payload)


def torchscript(tmp: Path) -> bytes:
    path = tmp / "scripted.pt"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch.jit.script is deprecated; its files remain
        torch.jit.script(torch.nn.Linear(2, 2)).save(str(path))
    return path.read_bytes()


def hdf5_file(tmp: Path) -> bytes:
    path = tmp / "data.h5"
    with h5py.File(path, "w") as f:
        f["showers"] = np.zeros((2, 3))
    return path.read_bytes()


def plain_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("readme.txt", "not a checkpoint")
    return out.getvalue()


def wrong_weights(path: Path) -> bytes:
    payload = good_payload(path)
    name = next(iter(payload["state_dict"]))
    payload["state_dict"][name] = torch.zeros(1, 2, 3)
    return torch_bytes(payload)


def corpus(good: Path, calo: Path, marker: Path, tmp: Path) -> dict[str, tuple[bytes, str]]:
    """name -> (file content, regex of the refusal) for a jets loader; ``good`` a small EPiC
    checkpoint, ``calo`` a CaloMan one (another kind)."""
    raw = good.read_bytes()
    damaged = r"not a readable hepgen checkpoint"
    out = {
        "zero bytes": (b"", damaged),
        "text": (b"format: hepgen.epic\nversion: 1\n", damaged),
        "png": (b"\x89PNG\r\n\x1a\n" + bytes(200), damaged),
        "hdf5": (hdf5_file(tmp), damaged),
        "zip, not torch": (plain_zip(), damaged),
        "torchscript": (torchscript(tmp), damaged),
        "crafted pickle (legacy file)": (raw_pickle(marker), damaged),
        "crafted pickle (in a torch zip)": (zip_with_pickle(good, marker), damaged),
        "a tensor": (torch_bytes(torch.zeros(3)), r"not a hepgen checkpoint \(no 'format' tag; found Tensor"),
        "dict without format": (torch_bytes({"weights": torch.zeros(2)}), r"no 'format' tag"),
        "unknown format": (
            changed(good, format="hepgen.future"),
            r"unknown checkpoint format|'hepgen.future' checkpoint",
        ),
        "future version": (changed(good, version=99), r"version 99 was written by a newer hepgen"),
        "old version": (changed(good, version=0), r"version 0 is no longer read"),
        "version not int": (changed(good, version="1"), r"version '1' is not an int"),
        "config not a dict": (changed(good, config=[1, 2]), r"damaged hepgen.epic checkpoint"),
        "no weights": (changed(good, state_dict=None), r"damaged hepgen.epic checkpoint"),
        "weights of the wrong shape": (wrong_weights(good), r"damaged hepgen.epic checkpoint"),
        "another kind (CaloMan)": (calo.read_bytes(), r"hepgen.caloman|generates showers, expected jets"),
    }
    for cut in (1, 64, 1 / 4, 1 / 2, 3 / 4, -22, -1):
        end = int(cut * len(raw)) if isinstance(cut, float) else cut
        out[f"truncated at {cut}"] = (raw[:end], damaged)
    return out


def quietly(load):
    """``load`` with the deprecation warnings of the older loaders silenced."""

    def call(path):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return load(path)

    return call


# Loaders of a jets checkpoint, and what in the corpus each rightly accepts: the readers of
# the checkpoint's structure accept weights that do not fit a model (they build none), and
# the loaders of any kind or of CaloMan accept the CaloMan checkpoint.
LOADERS = {
    "Checkpoint.read": lambda path: Checkpoint.read(path),
    "Checkpoint.read(expect_format)": lambda path: Checkpoint.read(path, "hepgen.epic"),
    "hepgen.models.load": lambda path: hepgen.models.load(path),
    "hepgen.models.load(kind=jets)": lambda path: hepgen.models.load(path, kind="jets"),
    "epic.read_train_state": read_train_state,
    "epic.load_checkpoint (deprecated)": quietly(epic_load_checkpoint),
    "epic.load (deprecated)": quietly(epic_load),
    "caloman.load_checkpoint (deprecated)": quietly(caloman_load_checkpoint),
    "events.checkpoint.load_checkpoint (deprecated)": quietly(events_load_checkpoint),
}
WRONG_SHAPE, CALO = "weights of the wrong shape", "another kind (CaloMan)"
ACCEPTS = {
    "Checkpoint.read": {WRONG_SHAPE, CALO},
    "Checkpoint.read(expect_format)": {WRONG_SHAPE},
    "epic.read_train_state": {WRONG_SHAPE},
    "hepgen.models.load": {CALO},
    "caloman.load_checkpoint (deprecated)": {CALO},
}
# Loaders of another kind: a jets checkpoint is refused for its format tag before the
# defect under test, so any refusal naming the file is right.
OTHER_KIND = {"caloman.load_checkpoint (deprecated)", "events.checkpoint.load_checkpoint (deprecated)"}

COUNTS: dict[str, Counter] = {}


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    root = tmp_path_factory.mktemp("ckpt")
    good = jets_toy().save(root / "jets.pt")
    calo = calo_toy().save(root / "calo.pt")
    marker = root / "MARKER"
    files = {}
    for name, (content, expect) in corpus(good, calo, marker, root).items():
        path = root / (re.sub(r"\W+", "_", name) + ".pt")
        path.write_bytes(content)
        files[name] = (path, expect)
    return SimpleNamespace(good=good, calo=calo, marker=marker, files=files)


def test_crafted_pickles_are_live(checkpoints, tmp_path):
    """The test's pickles do run code when loaded without weights_only: the refusals below
    are the loaders' doing."""
    marker = tmp_path / "live"
    good = checkpoints.good
    pickle.loads(raw_pickle(marker))
    assert marker.exists()
    marker.unlink()
    (tmp_path / "evil.pt").write_bytes(zip_with_pickle(good, marker))
    torch.load(tmp_path / "evil.pt", weights_only=False)
    assert marker.exists()


@pytest.mark.parametrize("loader", sorted(LOADERS))
def test_every_loader_refuses_every_bad_checkpoint(loader, checkpoints):
    good, marker, files = checkpoints.good, checkpoints.marker, checkpoints.files
    load = LOADERS[loader]
    if loader not in OTHER_KIND:
        load(good)  # the good file loads: the refusals below are about the defects
    seen = COUNTS.setdefault(loader, Counter())
    for name, (path, expect) in files.items():
        try:
            load(path)
        except ValueError as err:
            ok = str(path) in str(err) and (loader in OTHER_KIND or re.search(expect, str(err)))
            seen["refused" if ok else "unclear"] += 1
            assert ok, f"{loader} on {name}: {err}"
        except Exception as err:
            seen["crash"] += 1
            pytest.fail(f"{loader} on {name}: {type(err).__name__}: {err}")
        else:
            seen["accepted"] += 1
            assert name in ACCEPTS.get(loader, ()), f"{loader} accepted {name}"
        assert not marker.exists(), f"{loader} on {name} ran the pickle's code"


def test_cli_model_and_resume_paths_refuse_in_one_line(checkpoints, tmp_path, capsys):
    calo, marker, files = checkpoints.calo, checkpoints.marker, checkpoints.files
    evil = files["crafted pickle (in a torch zip)"][0]
    legacy = files["crafted pickle (legacy file)"][0]
    data = tmp_path / "jets.h5"
    JetSample(*toy_jets()).write(data)
    commands = [
        ["generate", "jets", "--model", str(evil), "-n", "4", "-o", str(tmp_path / "a.h5")],
        ["generate", "calo", "--model", str(legacy), "-n", "4", "-o", str(tmp_path / "b.h5")],
        ["generate", "events", "--model", str(evil), "-n", "4", "-o", str(tmp_path / "c.h5")],
        ["generate", "jets", "--model", str(calo), "-n", "4", "-o", str(tmp_path / "d.h5")],
        ["generate", "jets", "--model", str(files["truncated at 0.5"][0]), "-n", "4", "-o", str(tmp_path / "e.h5")],
    ]
    for command in commands:
        assert main([*command, "--quiet"]) == 1, command
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and command[3] in err[0], (command, err)
    # --resume reads the checkpoint at --output: a crafted one is refused and left as it was.
    resumed = tmp_path / "resume.pt"
    resumed.write_bytes(evil.read_bytes())
    command = ["train", "jets", "--data", str(data), "-o", str(resumed), "--resume", "--epochs", "2", "--quiet"]
    assert main(command) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(resumed) in err[0], err
    assert resumed.read_bytes() == evil.read_bytes()
    assert not marker.exists()
    assert not any((tmp_path / name).exists() for name in ("a.h5", "b.h5", "c.h5", "d.h5", "e.h5"))


def test_cli_process_refuses_a_crafted_pickle_in_one_line(checkpoints, tmp_path):
    marker, files = checkpoints.marker, checkpoints.files
    evil = files["crafted pickle (in a torch zip)"][0]
    root = str(Path(__file__).parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
    run = subprocess.run(
        [sys.executable, "-m", "hepgen", "generate", "jets", "--model", str(evil), "-n", "4", "-o", "out.h5"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 1 and len(lines) == 1 and str(evil) in lines[0], run.stderr
    assert "not a readable hepgen checkpoint" in lines[0]
    assert not marker.exists() and not (tmp_path / "out.h5").exists()


def test_events_run_info_never_runs_a_checkpoint_named_by_a_data_file(checkpoints, tmp_path):
    """A data file's 'model' attribute names a checkpoint that run_info reads: a crafted
    one costs only the training columns."""
    from hepgen.models.events.files import run_info

    marker, files = checkpoints.marker, checkpoints.files
    data = tmp_path / "events.h5"
    n_jets = np.array([1, 2])
    EventSample(np.ones((2, 2, 4)) * 30, np.ones((2, 3, 4)) * 30, n_jets).write(
        data, attrs={"model": str(files["crafted pickle (legacy file)"][0])}
    )
    assert "train_seconds" not in run_info(data)
    assert not marker.exists()


def teardown_module(module):
    target = os.environ.get("HEPGEN_BAD_CHECKPOINT_COUNTS")
    if target:
        Path(target).write_text(json.dumps({k: dict(v) for k, v in COUNTS.items()}, indent=1, sort_keys=True))
