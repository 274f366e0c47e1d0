"""pytest plugin for tools/sanitize.sh: the op tests' own calls into hepgen._C, replayed with
one tensor argument changed at a time, under ASan/UBSan.

The op tests call the compiled core with valid arguments (through hepgen.ops). This plugin
records the first calls of every CPU entry point of hepgen._C (PER_FUNCTION of each), and when
the tests are done replays each with one tensor replaced by a variant: a size one smaller or
larger in each dimension, every other element, transposed strides, an expanded (stride-0)
view, an offset into a larger buffer, rank one less or more, no rows, another dtype, int64
contents moved (offsets, lengths: +-1, +-1000, +-2^40, -2^62), one NaN/inf/largest value.
The core must refuse each variant with ValueError/TypeError or compute on it in bounds: the
sanitizers report any read or write outside the tensors, and anything else (another
exception, a crash) fails the run. Results are not compared: that is what the op tests and
the Hypothesis fuzz tests (tests/ops/fuzz) do; this checks memory safety at the C++ boundary
with arguments that are wrong in one way only, which is where an unchecked index slips by.

Not a generator of its own: the inputs are the tests' calls; the variants are a fixed list.
"""

from __future__ import annotations

import collections
import os

import pytest
import torch

PER_FUNCTION = int(os.environ.get("SANITIZE_MUTATE_CALLS", "40"))
_recorded: dict[str, list[tuple]] = collections.defaultdict(list)
_core_functions: dict[str, object] = {}


def _copy(arg):
    if isinstance(arg, torch.Tensor):
        return arg.detach().clone()
    if isinstance(arg, (list, tuple)) and arg and all(isinstance(a, torch.Tensor) for a in arg):
        return [a.detach().clone() for a in arg]
    return arg


def pytest_configure(config):
    from hepgen import _core

    core = _core.compiled()
    for name in dir(core):
        function = getattr(core, name)
        if name.startswith(("_", "cuda")) or name == "build_info" or not callable(function):
            continue  # CUDA entry points cannot run here; build_info takes nothing

        def recording(*args, _function=function, _name=name):
            if len(_recorded[_name]) < PER_FUNCTION:
                _recorded[_name].append(tuple(_copy(a) for a in args))
            return _function(*args)

        _core_functions[name] = function
        setattr(core, name, recording)


def _filled(shape, like: torch.Tensor) -> torch.Tensor:
    if like.dtype.is_floating_point:
        return torch.randn(shape, dtype=like.dtype)
    return torch.zeros(shape, dtype=like.dtype)


def _variants(t: torch.Tensor):
    """(label, tensor): t changed in one way."""
    shape = list(t.shape)
    for d in range(t.dim()):
        if shape[d] > 0:
            yield f"dim {d} one smaller", _filled(shape[:d] + [shape[d] - 1] + shape[d + 1 :], t)
        yield f"dim {d} one larger", _filled(shape[:d] + [shape[d] + 1] + shape[d + 1 :], t)
        if shape[d] >= 2:
            wide = torch.zeros(shape[:d] + [2 * shape[d]] + shape[d + 1 :], dtype=t.dtype)
            every_other = wide[(slice(None),) * d + (slice(None, None, 2),)]
            every_other.copy_(t)
            yield f"dim {d} every other element", every_other
    if t.dim() >= 2:
        yield "column-major strides", t.transpose(-1, -2).contiguous().transpose(-1, -2)
        yield "last two dims swapped", t.transpose(-1, -2)
    if t.dim() >= 1 and t.numel() > 0:
        yield "expanded from one row", t[:1].expand_as(t)
        yield "no rows", t.new_zeros((0, *shape[1:]))
    buffer = torch.zeros(t.numel() + 3, dtype=t.dtype)
    offset = buffer[3:].view(t.shape)
    offset.copy_(t)
    yield "offset into a buffer", offset
    if t.dim() >= 2:
        yield "rank one less", t.flatten(0, 1)
    elif t.dim() == 1 and t.numel() == 1:
        yield "rank one less", t.reshape(())
    yield "rank one more", t.unsqueeze(0)
    for dtype in (torch.float32, torch.float64, torch.float16, torch.int64, torch.uint8, torch.bool):
        if dtype != t.dtype:
            yield f"dtype {dtype}", t.to(dtype)
    if t.numel() == 0:
        return
    flat_positions = sorted({0, t.numel() // 2, t.numel() - 1})
    if t.dtype == torch.int64:
        for delta in (1, -1, 1000, -1000, 2**40, -(2**62)):
            for i in flat_positions:
                moved = t.contiguous().clone()
                moved.view(-1)[i] += delta
                yield f"element {i} {delta:+d}", moved
    if t.dtype.is_floating_point:
        largest = torch.finfo(t.dtype).max
        for value in (float("nan"), float("inf"), -float("inf"), largest, -largest):
            changed = t.contiguous().clone()
            changed.view(-1)[0] = value
            yield f"element 0 = {value}", changed


def _calls():
    """(function name, label, args) for every variant of every recorded call."""
    for name, calls in sorted(_recorded.items()):
        for args in calls:
            for i, arg in enumerate(args):
                tensors = [(None, arg)] if isinstance(arg, torch.Tensor) else []
                if isinstance(arg, list) and arg and isinstance(arg[0], torch.Tensor):
                    tensors = list(enumerate(arg))
                for j, t in tensors:
                    for label, variant in _variants(t):
                        changed = [_copy(a) for a in args]
                        if j is None:
                            changed[i] = variant
                        else:
                            changed[i][j] = variant
                        yield name, f"argument {i}{'' if j is None else f'[{j}]'}: {label}", changed


def pytest_sessionfinish(session, exitstatus):
    counts = collections.Counter()
    unexpected = []
    for name, label, args in _calls():
        counts["calls"] += 1
        try:
            _core_functions[name](*args)
            counts["accepted"] += 1
        except (ValueError, TypeError):
            counts["refused"] += 1
        except Exception as err:  # every other outcome is reported, not hidden
            unexpected.append(f"{name}, {label}: {type(err).__name__}: {err}")
    recorded = {name: len(calls) for name, calls in sorted(_recorded.items())}
    print(
        f"\nsanitize_mutate: {sum(recorded.values())} recorded calls of {len(recorded)} entry points, "
        f"{counts['calls']} changed calls: {counts['accepted']} accepted, {counts['refused']} refused, "
        f"{len(unexpected)} other outcomes"
    )
    for line in unexpected[:20]:
        print("sanitize_mutate: other outcome:", line)
    if unexpected or not recorded:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
