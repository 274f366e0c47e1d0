"""Interleaved timing of JetGPT sampling: KV cache vs re-running the prefix, alternating
runs (min of N per mode) so that load changes on a shared machine hit both alike.

    OMP_NUM_THREADS=1 python benchmarks/jetgpt_kv_cache_interleaved.py [N=3]

Same model and events as ``hepgen bench jetgpt`` (fresh weights, 64 wide, 3 blocks; 2x10^4
events of the Z+jets jet-count mix and 5x10^3 3-jet events, batches of 10^4)."""

import json
import os
import sys
import time

import torch

torch.set_num_threads(1)
from hepgen.bench.jetgpt import MIX, _jet_counts, _model  # noqa: E402 (after the thread setting / the sweep, on purpose)

m = _model("cpu")
res = {}
for label, mix, n in (("mix", MIX, 20000), ("3jets", (0, 0, 1.0), 5000)):
    nj = _jet_counts(n, mix)
    t = {True: [], False: []}
    for _rep in range(int(sys.argv[1]) if len(sys.argv) > 1 else 3):
        for uc in (True, False):
            t0 = time.perf_counter()
            m.sample_vectors(nj, torch.Generator().manual_seed(1), batch_size=10000, use_cache=uc)
            t[uc].append(time.perf_counter() - t0)
            print(label, uc, t[uc][-1], os.getloadavg()[0], flush=True)
    res[label] = {
        "n": n,
        "cache_s": t[True],
        "recompute_s": t[False],
        "cache_per_1e5_s": min(t[True]) * 1e5 / n,
        "recompute_per_1e5_s": min(t[False]) * 1e5 / n,
        "speedup_min": min(t[False]) / min(t[True]),
    }
    print(label, res[label], flush=True)
print(json.dumps(res))
