"""Argument checks shared by the ops: run once, in Python, before any kernel.

Each raises TypeError (wrong kind of thing) or ValueError (wrong value or shape) whose
message names the argument and what was expected.
"""

from __future__ import annotations

import math

import torch


def tensor(name: str, value: object) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    return value


def floating(name: str, t: torch.Tensor) -> None:
    if not t.is_floating_point():
        raise TypeError(f"{name} must have a floating dtype (float16, bfloat16, float32, float64), got {t.dtype}")


def rank(name: str, t: torch.Tensor, expected: int, layout: str) -> None:
    if t.dim() != expected:
        raise ValueError(f"{name} must have {expected} dimensions {layout}, got shape {tuple(t.shape)}")


def same_device(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if t.device != ref.device:
        raise ValueError(f"{name} is on {t.device} but {ref_name} is on {ref.device}; put both on one device")


def finite_float(name: str, value: object) -> float:
    if isinstance(value, (torch.SymFloat, torch.SymInt)):
        # A scalar traced symbolically (torch.compile, dynamic=True; a fake op): its value is not
        # known here; the registered op's validate checks it where the op runs, with the value.
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"{name} must be a float, got {type(value).__name__}")
    if torch.compiler.is_compiling():
        return value  # Dynamo may hold it symbolically (as above); no trace-time value check
    if not math.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    return float(value)


def same_dtype(name: str, t: torch.Tensor, ref_name: str, ref: torch.Tensor) -> None:
    if t.dtype != ref.dtype:
        raise TypeError(f"{name} must have {ref_name}'s dtype {ref.dtype}, got {t.dtype}")


def shape(name: str, t: torch.Tensor, expected: tuple, what: str) -> None:
    """`t` has shape `expected`; `what` says where the expected sizes come from."""
    if tuple(t.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {what} = {tuple(expected)}, got {tuple(t.shape)}")


def like(name: str, value: object, ref_name: str, ref: torch.Tensor, expected: tuple, what: str) -> torch.Tensor:
    """A tensor of `ref`'s dtype and device with shape `expected` (a data argument of an op)."""
    t = tensor(name, value)
    same_device(name, t, ref_name, ref)
    same_dtype(name, t, ref_name, ref)
    shape(name, t, expected, what)
    return t


def mask_kind(name: str, t: torch.Tensor) -> None:
    """A mask the public functions convert: bool or floating weights."""
    if t.dtype != torch.bool and not t.is_floating_point():
        raise TypeError(f"{name} must be bool or floating point, got {t.dtype}")


def finite_floats(name: str, values: object) -> list[float]:
    """A sequence of finite floats (e.g. coefficients), each named `name[i]` in an error."""
    if isinstance(values, (str, bytes, torch.Tensor)) or not hasattr(values, "__iter__"):
        raise TypeError(f"{name} must be a sequence of floats, got {type(values).__name__}")
    return [finite_float(f"{name}[{i}]", v) for i, v in enumerate(values)]
