"""How a suite tells its caller which case it is on (``hepgen bench`` shows it as a bar).

Every suite's ``run(..., progress=None)`` calls ``progress(index, total, label)`` as case
``index`` of ``total`` starts, e.g. ``(3, 6, "B=100000 D=18 K=8 inverse")``; the count is
known before the first case, so a caller can show how far a long suite has got.
"""

from __future__ import annotations

from collections.abc import Callable

CaseProgress = Callable[[int, int, str], None]


class CaseCounter:
    """Counts a suite's cases for ``progress``; ``start(label)`` as each case begins."""

    def __init__(self, progress: CaseProgress | None, total: int):
        self.progress, self.total, self.done = progress, total, 0

    def start(self, label: str) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total, label)
