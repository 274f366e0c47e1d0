"""Deprecated: moved to :mod:`hepgen.metrics.events_observables` (evaluation lives in hepgen.metrics)."""

import warnings

from hepgen.metrics.events_observables import PLOTTED, PRECISION, bins_for, observable_values  # noqa: F401

warnings.warn(
    "hepgen.models.events.observables is deprecated and will be removed in the next release; "
    "use hepgen.metrics.events_observables",
    DeprecationWarning,
    stacklevel=2,
)
