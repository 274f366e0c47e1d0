"""``hepgen generate KIND``: sample a trained generator's checkpoint into a data file.

Each kind's module exposes ``register_generate(kinds)``.
"""

from __future__ import annotations

import importlib

# kind -> module with register_generate(kinds)
GENERATE_KINDS = {"calo": "hepgen.models.caloman.cli", "events": "hepgen.models.events.cli"}


def register(subparsers) -> None:
    parser = subparsers.add_parser("generate", help="sample a trained generator into a data file",
                                   description="Generate samples from a checkpoint written by `hepgen train`.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for module in GENERATE_KINDS.values():
        importlib.import_module(module).register_generate(kinds)
