"""What this installation contains and which backend each op uses (``hepgen info`` prints it).

Everything reported is read off the running installation: the compiled core's own build
record, torch's view of the GPUs, and the ops' backend tables.
"""

from __future__ import annotations

import importlib.metadata
import platform


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def collect() -> dict:
    """The facts `hepgen info` prints, as a dict (also used in benchmark records)."""
    import torch

    import hepgen
    import hepgen.ops as ops
    from hepgen import _core

    core = _core.build_info()
    gpus = []
    if torch.cuda.is_available():
        for i in range(torch.cuda.device_count()):
            p = torch.cuda.get_device_properties(i)
            gpus.append(
                {"name": p.name, "capability": f"{p.major}.{p.minor}", "memory_gib": round(p.total_memory / 2**30, 1)}
            )
    module = _core.compiled_or_none()
    info = {
        "hepgen": hepgen.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "torch": torch.__version__,
        "triton": _version("triton"),
        "torch_threads": torch.get_num_threads(),
        "core": {
            "built": module is not None,
            "why_not": _core.why_not_compiled(),
            "path": getattr(module, "__file__", None),
            "compiler": core.get("compiler"),
            "openmp": core.get("openmp", False),
            "openmp_threads": core.get("openmp_max_threads", 0),
            "cuda": core.get("cuda", False),
            "cuda_archs": [a for a in core.get("cuda_archs", "").split(",") if a],
            "cuda_devices_seen_by_core": module.cuda_device_count() if module is not None else 0,
        },
        "gpus": gpus,
        "ops": {},
    }
    devices = [torch.device("cpu")] + ([torch.device("cuda")] if gpus else [])
    for name, table in sorted(ops.registered_ops().items()):
        info["ops"][name] = {
            dev.type: {
                "available": table.available(dev, torch.float32),
                "chosen": table.choose(dev, torch.float32),
                "unavailable": {
                    b: table.why_not(b, dev, torch.float32) for b in table.impls if table.why_not(b, dev, torch.float32)
                },
            }
            for dev in devices
        }
    return info


def format_text(info: dict) -> str:
    core = info["core"]
    lines = [
        f"hepgen {info['hepgen']}  (python {info['python']}, torch {info['torch']}, "
        f"triton {info['triton'] or 'not installed'})",
        "",
        "compiled core",
    ]
    if not core["built"]:
        lines.append(f"  not available: {core['why_not']}")
    else:
        lines += [
            f"  module:   {core['path']}",
            f"  compiler: {core['compiler']}",
            "  OpenMP:   "
            + (f"yes, {core['openmp_threads']} threads" if core["openmp"] else "no (single-threaded CPU kernels)"),
            "  CUDA:     "
            + (
                f"kernels compiled for sm_{', sm_'.join(core['cuda_archs'])}"
                if core["cuda"]
                else "not compiled (CPU-only build)"
            ),
        ]
    if info["gpus"]:
        for i, gpu in enumerate(info["gpus"]):
            lines.append(
                f"  GPU {i}:    {gpu['name']} (compute capability {gpu['capability']}, {gpu['memory_gib']} GiB)"
            )
    else:
        lines.append("  GPU:      none visible to torch")
    lines += ["", "ops (float32; * = chosen by default)"]
    for name, per_device in info["ops"].items():
        for device, entry in per_device.items():
            shown = " ".join(b + ("*" if b == entry["chosen"] else "") for b in entry["available"])
            lines.append(f"  {name:<14} {device:<5} {shown}")
            for backend, why in entry["unavailable"].items():
                lines.append(f"  {'':<14} {'':<5}   {backend}: {why}")
    return "\n".join(lines)
