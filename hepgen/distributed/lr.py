"""The learning rate for a global batch: the rule users choose, stated and applied in one place.

hepgen's ``--batch-size`` is the global batch (all processes together), so running the same
command on more processes changes nothing: the same batches, the same learning rate, the
same result. When the global batch itself is raised (e.g. to keep each GPU's share as
GPUs are added), the learning rate that worked for the reference batch B0 may be scaled:

- ``none``: as given;
- ``linear``: lr x B / B0 (Goyal et al. 2017, for SGD with a warm-up);
- ``sqrt``: lr x sqrt(B / B0) (the rule that keeps Adam's update noise, Malladi et al. 2022).
"""

from __future__ import annotations

import math

RULES = ("none", "linear", "sqrt")


def scaled_learning_rate(lr: float, batch: int, reference: int, rule: str = "none") -> float:
    """``lr`` (tuned for a global batch of ``reference``) for a global batch of ``batch``."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(RULES)}, got {rule!r}")
    for name, value in (("batch", batch), ("reference", reference)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    if not lr > 0:
        raise ValueError(f"lr must be positive, got {lr!r}")
    if rule == "linear":
        return lr * batch / reference
    if rule == "sqrt":
        return lr * math.sqrt(batch / reference)
    return lr
