"""``hepgen compare KIND``: histograms of truth vs one or more generated files, with
Bayesian ensemble bands and ratio panels, and a precision table.

Each kind's module exposes ``register_compare(kinds)``.
"""

from __future__ import annotations

import importlib

# kind -> module with register_compare(kinds)
COMPARE_KINDS = {"events": "hepgen.models.events.cli"}


def register(subparsers) -> None:
    parser = subparsers.add_parser("compare", help="plot generated samples against truth (events)",
                                   description="Histograms of truth against generated files, with ratio panels "
                                               "and ensemble uncertainty bands, and a precision table.")
    kinds = parser.add_subparsers(dest="kind", metavar="KIND", required=True)
    for module in COMPARE_KINDS.values():
        importlib.import_module(module).register_compare(kinds)
