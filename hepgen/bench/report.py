"""Benchmark results: rows, the printed table, and the record written to disk."""

from __future__ import annotations

import datetime
import json
import os
import re
from dataclasses import asdict, dataclass


@dataclass
class Row:
    """One measured case: hepgen against its baseline, same inputs, same run, same device."""

    suite: str
    case: str  # e.g. "B=1024 N=30 D=128"
    direction: str  # "forward", "forward+backward", ...
    device: str
    ours: str  # e.g. "hepgen (cpu)"
    ours_ms: float
    baseline: str  # e.g. "plain PyTorch"
    baseline_ms: float
    ours_peak_mib: float | None = None
    baseline_peak_mib: float | None = None
    # Elementwise ops: elements per call (the table then shows ns per element) and the bytes
    # hepgen's kernels move per element (to set a GPU time against the bandwidth bound).
    elements: int | None = None
    bytes_per_element: float | None = None
    # Model suites: floating-point operations hepgen's pass does per element (e.g. per shower),
    # so the table shows the achieved GFLOP/s against the device's peak.
    flops_per_element: float | None = None

    @property
    def speedup(self) -> float:
        return self.baseline_ms / self.ours_ms if self.ours_ms > 0 else float("nan")


def _mib(v: float | None) -> str:
    return "-" if v is None else f"{v:.1f}"


def _per_element(ms: float, r: Row) -> str:
    return f"{ms * 1e6 / r.elements:.3g}" if r.elements else "-"


def format_table(rows: list[Row]) -> str:
    head = ["case", "pass", "device", "hepgen", "ms", "peak MiB", "baseline", "ms", "peak MiB", "speedup"]
    body = [
        [
            r.case,
            r.direction,
            r.device,
            r.ours,
            f"{r.ours_ms:.4g}",
            _mib(r.ours_peak_mib),
            r.baseline,
            f"{r.baseline_ms:.4g}",
            _mib(r.baseline_peak_mib),
            f"{r.speedup:.2f}x",
        ]
        for r in rows
    ]
    if any(r.elements for r in rows):  # elementwise suites: ns per element and hepgen's bytes per element
        head[5:5] = ["ns/elem", "B/elem"]
        head[10:10] = ["ns/elem"]
        for b, r in zip(body, rows):
            b[5:5] = [_per_element(r.ours_ms, r), "-" if r.bytes_per_element is None else f"{r.bytes_per_element:g}"]
            b[10:10] = [_per_element(r.baseline_ms, r)]
    if any(r.flops_per_element for r in rows):
        head.append("hepgen GFLOP/s")
        for b, r in zip(body, rows):
            ok = r.flops_per_element and r.elements and r.ours_ms > 0
            b.append(f"{r.flops_per_element * r.elements / (r.ours_ms * 1e6):.3g}" if ok else "-")
    widths = [max(len(h), *(len(b[i]) for b in body)) if body else len(h) for i, h in enumerate(head)]
    fmt = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths)) + " |"  # noqa: E731
    sep = "|" + "|".join("-" * (w + 2) for w in widths) + "|"
    return "\n".join([fmt(head), sep] + [fmt(b) for b in body])


def device_name(device: str) -> str:
    import platform

    import torch

    if device.startswith("cuda"):
        return torch.cuda.get_device_name(torch.device(device))
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{cpu}, {torch.get_num_threads()} threads"


def save(rows: list[Row], directory: str, suite: str, device: str, environment: dict) -> tuple[str, str]:
    """Write <date>_<device>_<suite>.json and .md into directory; returns both paths."""
    os.makedirs(directory, exist_ok=True)
    today = datetime.date.today().isoformat()
    name = device_name(device)
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:60]
    stem = os.path.join(directory, f"{today}_{slug}_{suite}")
    record = {
        "suite": suite,
        "date": today,
        "device": name,
        "environment": environment,
        "rows": [dict(asdict(r), speedup=r.speedup) for r in rows],
    }
    with open(stem + ".json", "w") as f:
        json.dump(record, f, indent=2)
    with open(stem + ".md", "w") as f:
        f.write(f"# {suite} benchmark, {today}, {name}\n\n")
        f.write(
            f"hepgen {environment.get('hepgen')}, torch {environment.get('torch')}, "
            f"triton {environment.get('triton')}; command: `{environment.get('command')}`\n\n"
        )
        f.write(format_table(rows) + "\n")
    return stem + ".json", stem + ".md"
