"""Driving the registered ops (torch.ops.hepgen.<name>) and the compiled core's glue with bad
calls: shared by tests/ops/test_registered_ops_{rq_spline,masked_attention}.py.

A bad call is a name, the op, a function making fresh schema arguments, and the error
(TypeError or ValueError) whose message must name the argument. The same arguments are fed
to the compiled core's glue (hepgen.ops.compiled.<op>) in a subprocess: there any Python
exception is fine, but the process must survive (no segfault, no abort).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass

import torch

from hepgen.ops._backends import why_unavailable


@dataclass(frozen=True)
class BadCall:
    name: str
    op: str  # torch.ops.hepgen.<op>
    args: Callable[[], tuple]  # fresh schema arguments (an in-place op may write them)
    error: type
    match: str  # a regular expression the message matches: names the argument
    glue: str | None = None  # hepgen.ops.compiled.<module>.<function> fed the same arguments
    # The glue's defined behaviour instead of an exception (e.g. lengths out of range: no
    # write, NaN); the probe then only requires that the process survives.
    glue_may_return: bool = False

    def __str__(self) -> str:
        return self.name


def cpu_backends(op: str) -> list[str]:
    """The backends that run here on float32 CPU tensors (triton under TRITON_INTERPRET=1)."""
    return [b for b in ("reference", "cpu", "triton") if not why_unavailable(b, torch.device("cpu"), torch.float32, op)]


_PROBE = r"""
import importlib, json, sys, traceback
import torch
sys.path.insert(0, {tests!r})
cases = importlib.import_module({module!r})
for call in cases.BAD_CALLS:
    if call.glue is None:
        continue
    module, fn = call.glue.rsplit(".", 1)
    print(json.dumps({{"start": call.name}}), flush=True)
    try:
        getattr(importlib.import_module(module), fn)(*call.args(), "cpu")
        outcome = {{"name": call.name, "returned": True}}
    except Exception as e:  # any Python exception is a clean refusal here
        outcome = {{"name": call.name, "raised": type(e).__name__, "message": str(e)[:300]}}
    print(json.dumps(outcome), flush=True)
print(json.dumps({{"done": True}}), flush=True)
"""


def probe_glue(module: str, tmp_path) -> list[dict]:
    """Run every BAD_CALLS entry of tests/ops/<module>.py that names a glue function in a fresh
    interpreter; returns the outcomes. Fails (with the call it died in) if the process does."""
    tests = os.path.dirname(os.path.abspath(__file__))
    code = _PROBE.format(tests=tests, module=module)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([tests, os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    lines = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines or "done" not in lines[-1]:
        last = next((line["start"] for line in reversed(lines) if "start" in line), None)
        raise AssertionError(f"the glue probe died (exit {proc.returncode}) in call {last!r}:\n{proc.stderr[-3000:]}")
    return [line for line in lines if "name" in line]
