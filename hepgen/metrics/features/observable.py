"""An observable: one number per sample, histogrammed in the report."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Observable:
    """Values (N,) of one observable; NaN where it is undefined (a third jet in a 2-jet event).

    ``name`` is file-name safe; ``label`` is the axis label; ``log`` asks for logarithmic
    bins; ``discrete`` for one bin per integer.
    """

    name: str
    label: str
    values: np.ndarray
    log: bool = False
    discrete: bool = False

    def defined(self, rows=None) -> tuple[np.ndarray, np.ndarray]:
        """(values, positions) of the finite values, among ``rows`` if given."""
        values = self.values if rows is None else self.values[rows]
        keep = np.isfinite(values)
        return values[keep], np.flatnonzero(keep)
