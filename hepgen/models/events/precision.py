"""Deprecated: moved to :mod:`hepgen.metrics.events_precision` (evaluation lives in hepgen.metrics)."""

import warnings

from hepgen.metrics.events_precision import QUANTILE, UNITS, precision, precision_table  # noqa: F401

warnings.warn(
    "hepgen.models.events.precision is deprecated and will be removed in the next release; "
    "use hepgen.metrics.events_precision",
    DeprecationWarning,
    stacklevel=2,
)
