"""A fixed-grid sampling loop, optionally captured once in a CUDA graph and replayed.

CUDA-graph capture ran on an NVIDIA H100 (2026-11-23, docs/gpu.md): tests/ode/test_graph.py
passes there (graph replay = eager loop) and skips without CUDA. Capturing needs a loop that
allocates from the capture's pool and never synchronises with the host: the fixed grid's
step sizes are Python floats, the combination kernels take their coefficients by value
(cuda backend) or from tensors cached before capture (triton), and the network must be
capturable too (no .item(), no host-dependent shapes; EPiCNet's cpu-side packing is not
used on CUDA).
"""

from __future__ import annotations

import torch

from hepgen.ode.fixed_grid import Func, _check_grid, integrate_on_grid, method_tableau


class FixedGridSampler:
    """y(t[-1]) from y0 on a fixed grid; with cuda_graph=True the loop is one graph replay."""

    def __init__(
        self,
        func: Func,
        t: torch.Tensor,
        method: str = "midpoint",
        mask: torch.Tensor | None = None,
        cuda_graph: bool = False,
        warmup: int = 2,
    ):
        self.func, self.mask = func, mask
        self.t = _check_grid(t, torch.empty(0))
        self.times = self.t.tolist()  # step sizes as host floats, read once, here
        self.tableau = method_tableau(method)
        self.cuda_graph, self.warmup = cuda_graph, warmup
        self._graph = None
        self._static_in: torch.Tensor | None = None
        self._static_out: torch.Tensor | None = None

    def _loop(self, y0: torch.Tensor) -> torch.Tensor:
        if self.t.device != y0.device or self.t.dtype != y0.dtype:
            self.t = self.t.to(device=y0.device, dtype=y0.dtype)  # before capture: warm-up runs first
        return integrate_on_grid(self.func, y0, self.t, self.times, self.tableau, self.mask)

    def __call__(self, y0: torch.Tensor) -> torch.Tensor:
        if not self.cuda_graph:
            return self._loop(y0)
        if y0.device.type != "cuda":
            raise ValueError(f"cuda_graph=True needs y0 on a CUDA device, got {y0.device}")
        if self._graph is None or self._static_in.shape != y0.shape or self._static_in.dtype != y0.dtype:
            self._capture(y0)
        self._static_in.copy_(y0)
        self._graph.replay()
        return self._static_out.clone()

    def _capture(self, y0: torch.Tensor) -> None:
        self._static_in = y0.clone()
        side = torch.cuda.Stream(device=y0.device)
        side.wait_stream(torch.cuda.current_stream(y0.device))
        with torch.cuda.stream(side):  # warm-up: compile kernels, fill caches, outside capture
            for _ in range(self.warmup):
                self._loop(self._static_in)
        torch.cuda.current_stream(y0.device).wait_stream(side)
        self._graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(self._graph):
            self._static_out = self._loop(self._static_in)
