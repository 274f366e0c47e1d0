"""CaloMan generation on CPU, hepgen against the same model with nflows flows, in *CPU time*
(time.process_time) as well as wall time, interleaved, with the matmul bound.

On a shared machine the wall-clock medians of `hepgen bench calo` move with the other jobs'
load; the process's CPU time does not (much), so this script reports both. With more than
one thread CPU time adds the threads up: compare wall times there, on a quiet machine.

    OMP_NUM_THREADS=1 python benchmarks/calo_cpu_time.py [--batches 1 1000 10000 50000]

Also measured: the GEMM rate of this machine (torch.mm, float32, [B, 512] x [512, 512]) and
the decoder's achieved rate, which bound the large-batch time (see docs/caloman.md).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch

from hepgen.bench.calo import build_model, decoder_flops, generate, measured_flops, nflows_twin


def _time(fn, min_s: float, max_runs: int):
    fn()  # warm-up (and the LU caches)
    wall, cpu = [], []
    start = time.perf_counter()
    while len(wall) < 3 or (time.perf_counter() - start < min_s and len(wall) < max_runs):
        w, c = time.perf_counter(), time.process_time()
        fn()
        cpu.append(time.process_time() - c)
        wall.append(time.perf_counter() - w)
    return float(np.median(wall)), float(np.median(cpu))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 100, 1000, 10_000, 50_000])
    parser.add_argument("--min-time", type=float, default=2.0, help="seconds per case and model (default 2)")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds (default 2; the best is kept)")
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore", UserWarning)  # nflows' LU inverse uses a deprecated torch call
    model = build_model("cpu")
    twin = nflows_twin(model)
    threads = torch.get_num_threads()
    flops = measured_flops(model)
    print(
        f"threads {threads}; matmul FLOPs per shower {flops / 1e6:.3f} M (decoder "
        f"{decoder_flops(model.config) / 1e6:.3f} M)"
    )
    a, b = torch.randn(10_000, 512), torch.randn(512, 512)
    wall, cpu = _time(lambda: torch.mm(a, b), 1.0, 200)
    gemm = 2 * 10_000 * 512 * 512
    print(f"GEMM [10000,512]x[512,512]: {gemm / wall / 1e9:.1f} GFLOP/s wall, {gemm / cpu / 1e9:.1f} GFLOP/s CPU")
    z = torch.randn(10_000, model.config.latent)
    with torch.no_grad():
        wall_d, cpu_d = _time(lambda: model.vae.decode(z), 1.0, 200)
    dec = decoder_flops(model.config) * 10_000
    print(f"decoder at batch 10000: {dec / wall_d / 1e9:.1f} GFLOP/s wall, {dec / cpu_d / 1e9:.1f} GFLOP/s CPU")
    print("| batch | hepgen ms/shower wall | CPU | nflows flows ms/shower wall | CPU | ratio wall | ratio CPU |")
    print("|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    for batch in args.batches:
        energies = 2.0 ** rng.integers(8, 23, size=batch)
        best = {}
        for _ in range(args.rounds):  # interleaved: hepgen, nflows, hepgen, nflows
            for name, m in (("hepgen", model), ("nflows", twin)):
                w, c = _time(lambda: generate(m, energies, batch), args.min_time, 500)
                old = best.get(name, (np.inf, np.inf))
                best[name] = (min(old[0], w), min(old[1], c))
        (hw, hc), (nw, nc) = best["hepgen"], best["nflows"]
        print(
            f"| {batch} | {hw / batch * 1e3:.4g} | {hc / batch * 1e3:.4g} | {nw / batch * 1e3:.4g} | "
            f"{nc / batch * 1e3:.4g} | {nw / hw:.2f}x | {nc / hc:.2f}x |",
            flush=True,
        )
        if batch >= 10_000:
            print(
                f"|   | achieved {flops * batch / hw / 1e9:.1f} GFLOP/s wall, {flops * batch / hc / 1e9:.1f} CPU; "
                f"matmul bound {flops / (gemm / cpu) * 1e3:.4g} ms/shower CPU |  |  |  |  |  |"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
