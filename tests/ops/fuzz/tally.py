"""Counts of fuzz examples per op and outcome ("valid": compared with the reference; "refusal":
an invalid call refused with an error naming the argument), for docs/reliability.md.

With HEPGEN_FUZZ_COUNTS=<path>, the counts of this process are added to the JSON file at
<path> when it exits ({op: {outcome: n}}). Hypothesis runs shrinking and replay examples too:
the counts are examples run, which is what the table records. (A private helper of the
rq_spline and masked_attention fuzz tests; the op machinery may give one for all ops.)
"""

from __future__ import annotations

import atexit
import json
import os
from collections import Counter, defaultdict

COUNTS: defaultdict[str, Counter] = defaultdict(Counter)


def tally(op: str, outcome: str) -> None:
    COUNTS[op][outcome] += 1


@atexit.register
def _write() -> None:
    path = os.environ.get("HEPGEN_FUZZ_COUNTS")
    if not path or not COUNTS:
        return
    total: dict = {}
    if os.path.exists(path):
        with open(path) as f:
            total = json.load(f)
    for op, counts in COUNTS.items():
        for outcome, n in counts.items():
            total.setdefault(op, {}).setdefault(outcome, 0)
            total[op][outcome] += n
    with open(path, "w") as f:
        json.dump(total, f, indent=1, sort_keys=True)
