"""The timing harness shared by ``benchmarks/`` (pytest-benchmark) and ``hepgen bench``.

Each suite module has ``run(device, quick, min_time_s, progress=None) -> list[Row]``; every
row times hepgen and its baseline on the same inputs, in the same run, on the same device.
``progress(index, total, label)`` is told as each case starts (:mod:`hepgen.bench.progress`).
"""

SUITES = {
    "pooling": "hepgen.bench.pooling",
    "spline": "hepgen.bench.spline",
    "attention": "hepgen.bench.attention",
    "epic": "hepgen.bench.epic",
    "jets": "hepgen.bench.jets",
    "calo": "hepgen.bench.calo",
    "jetgpt": "hepgen.bench.jetgpt",
}
