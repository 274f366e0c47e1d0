"""hepgen's custom ops, each with reference, cpu, triton and cuda backends.

Layout: ``hepgen/ops/<op>.py`` declares the op once (:class:`hepgen.ops._declare.Op`: schema,
checks, reference, fake, backward, backends) and defines its public function;
``hepgen/ops/reference/<op>.py`` is its spec in plain PyTorch; ``hepgen/ops/compiled/<op>.py``
its compiled-core glue; ``hepgen/triton/<op>.py`` its Triton kernels. See
:mod:`hepgen.ops._backends` for how a backend is chosen and forced.
"""

from hepgen.ops._backends import BACKEND_NAMES, registered_ops, use_backend, why_unavailable
from hepgen.ops.epic_local import epic_local, epic_local_reference
from hepgen.ops.masked_attention import masked_attention, masked_attention_decode
from hepgen.ops.ode_combine import ode_combine, ode_combine_reference
from hepgen.ops.rq_spline import rq_spline, rq_spline_reference
from hepgen.ops.set_pool import set_pool, set_pool_reference

__all__ = [
    "BACKEND_NAMES",
    "epic_local",
    "epic_local_reference",
    "masked_attention",
    "masked_attention_decode",
    "ode_combine",
    "ode_combine_reference",
    "registered_ops",
    "rq_spline",
    "rq_spline_reference",
    "set_pool",
    "set_pool_reference",
    "use_backend",
    "why_unavailable",
]
