"""Timing and peak memory of a callable, the same way on every device.

CPU: wall clock (perf_counter) per call after warm-up; peak memory is the peak of tensor
allocations during one call, from torch's profiler (memory held by the caller beforehand,
e.g. the inputs, is not counted).
GPU: CUDA events around each call after warm-up; peak memory from the caching allocator
(max_memory_allocated above what was allocated before the call).
"""

from __future__ import annotations

import contextlib
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import torch

T = TypeVar("T")


@dataclass(frozen=True)
class Timing:
    median_s: float
    min_s: float
    runs: int
    peak_bytes: int | None  # extra memory during one call; None where it cannot be measured

    @property
    def median_ms(self) -> float:
        return self.median_s * 1e3


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_call(
    fn: Callable[[], object],
    device: torch.device | str = "cpu",
    *,
    warmup: int = 3,
    min_time_s: float = 0.5,
    min_runs: int = 5,
    max_runs: int = 1000,
) -> Timing:
    """Median time of fn() over repeated runs (at least min_runs and min_time_s in total)."""
    device = torch.device(device)
    for _ in range(warmup):
        fn()
    _sync(device)
    times: list[float] = []
    start_all = time.perf_counter()
    while len(times) < max_runs and (len(times) < min_runs or time.perf_counter() - start_all < min_time_s):
        if device.type == "cuda":
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return Timing(statistics.median(times), min(times), len(times), peak_memory(fn, device))


@dataclass(frozen=True)
class Elapsed:
    """Wall-clock and CPU time (all threads of this process) of one call."""

    seconds: float
    cpu_seconds: float


class Stopwatch:
    """Wall-clock and CPU time since it was made, for work that is not one call (a streamed
    run: ``hepgen generate events`` records its sampling time in the file; warm up before).

    CPU time is ``time.process_time``; a GPU's share shows in the wall-clock time only, and
    only if the work waits for its results (returns them on the CPU)."""

    def __init__(self):
        self._start, self._start_cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> Elapsed:
        return Elapsed(time.perf_counter() - self._start, time.process_time() - self._start_cpu)


def timed(fn: Callable[[], T]) -> tuple[T, Elapsed]:
    """``fn()``'s result and the time of that one call (see :class:`Stopwatch`)."""
    watch = Stopwatch()
    result = fn()
    return result, watch.elapsed()


@contextlib.contextmanager
def _stderr_silenced():
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def peak_memory(fn: Callable[[], object], device: torch.device | str = "cpu") -> int | None:
    """Bytes of tensor memory allocated beyond the starting point at the peak of one call."""
    device = torch.device(device)
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    # On the CPU torch keeps no allocator statistics; its profiler records every allocation
    # (as the allocating op's self memory) and every free, in time order.
    from torch.profiler import ProfilerActivity, profile

    with _stderr_silenced():  # the profiler's C++ side prints start/stop lines to fd 2
        with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
            fn()
    running = peak = 0
    for event in sorted(prof.events(), key=lambda e: e.time_range.start):
        running += event.self_cpu_memory_usage
        peak = max(peak, running)
    return peak
