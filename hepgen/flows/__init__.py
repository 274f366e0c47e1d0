"""Normalizing flows on hepgen's kernels: conditional coupling and masked autoregressive
rational-quadratic spline flows (nflows-compatible layers and weights)."""

from hepgen.flows.flow import Flow, autoregressive_spline_flow, coupling_spline_flow
from hepgen.flows.nets import MADE, ResidualNet
from hepgen.flows.spline import MaskedRQSAutoregressiveTransform, RQSCouplingTransform, alternating_mask
from hepgen.flows.transforms import CompositeTransform, LULinear, RandomPermutation, Transform

__all__ = [
    "MADE",
    "CompositeTransform",
    "Flow",
    "LULinear",
    "MaskedRQSAutoregressiveTransform",
    "RQSCouplingTransform",
    "RandomPermutation",
    "ResidualNet",
    "Transform",
    "alternating_mask",
    "autoregressive_spline_flow",
    "coupling_spline_flow",
]
