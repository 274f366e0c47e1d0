"""``hepgen train KIND``: fit a generator to a data file and write a checkpoint.

Each kind's module exposes ``register_train(kinds)``; adding jets or events is one line here.
"""

from __future__ import annotations

import importlib

# kind -> module with register_train(kinds)
TRAIN_KINDS = {"calo": "hepgen.models.caloman.cli", "events": "hepgen.models.events.cli"}


def register(subparsers) -> None:
    parser = subparsers.add_parser("train", help="train a generator (calo: CaloMan; events: JetGPT, DDPM, CFM, INN) and save a checkpoint",
                                   description="Train a generative model on a data file; write one checkpoint file.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for module in TRAIN_KINDS.values():
        importlib.import_module(module).register_train(kinds)
