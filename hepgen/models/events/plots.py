"""Deprecated: moved to :mod:`hepgen.metrics.events_plots` (evaluation lives in hepgen.metrics)."""

import warnings

from hepgen.metrics.events_plots import COLORS, member_densities, observable_figure, write_plots  # noqa: F401

warnings.warn(
    "hepgen.models.events.plots is deprecated and will be removed in the next release; use hepgen.metrics.events_plots",
    DeprecationWarning,
    stacklevel=2,
)
