"""GPU only: masked_attention per backend (triton with several tile shapes, cuda) against SDPA.

Decides the GPU default and the Triton tile heuristic; prints one table.
    python benchmarks/gpu/attention_backends.py
"""

from __future__ import annotations

import importlib
import itertools

import torch
import torch.nn.functional as F
from triton.testing import do_bench

from hepgen import ops

kernels = importlib.import_module("hepgen.triton.masked_attention")
SHAPES = [(1024, 4, 17, 32), (4096, 8, 17, 16), (1024, 8, 33, 64), (1024, 4, 64, 32), (256, 4, 150, 32)]
default_blocks = kernels._blocks


def timed(fn):
    return do_bench(fn, warmup=25, rep=100, return_mode="median")


def cases(B, H, L, D):
    g = torch.Generator(device="cuda").manual_seed(0)
    q, k, v = (torch.randn(B, H, L, D, device="cuda", generator=g, requires_grad=True) for _ in range(3))
    mask = torch.rand(B, L, device="cuda", generator=g) < 0.8
    mask[:, 0] = True
    w = torch.randn(B, H, L, D, device="cuda", generator=g)
    causal_and_pad = mask[:, None, None, :] & torch.ones(L, L, dtype=torch.bool, device="cuda").tril()

    def sdpa_f():
        return F.scaled_dot_product_attention(q, k, v, attn_mask=causal_and_pad)

    def ours_f():
        return ops.masked_attention(q, k, v, mask, causal=True)

    return q, k, v, w, sdpa_f, ours_f


def fwd_bwd(f, q, k, v, w):
    def run():
        out = f()
        torch.autograd.grad(out, (q, k, v), w)

    return run


rows = []
for B, H, L, D in SHAPES:
    q, k, v, w, sdpa_f, ours_f = cases(B, H, L, D)
    with torch.no_grad():
        t_sdpa = timed(sdpa_f)
    t_sdpa_b = timed(fwd_bwd(sdpa_f, q, k, v, w))
    variants = [("cuda", None)]
    for bm, bn, nw in itertools.product((16, 32, 64), (16, 32, 64), (4,)):
        variants.append(("triton", (bm, bn, nw)))
    for backend, blk in variants:
        if blk is not None:
            bm, bn, nw = blk
            kernels._blocks = lambda L_, D_, bm=bm, bn=bn, nw=nw: (bm, bn, max(16, 1 << (D_ - 1).bit_length()), nw)
        else:
            kernels._blocks = default_blocks
        try:
            with ops.use_backend(backend):
                with torch.no_grad():
                    t_f = timed(ours_f)
                t_b = timed(fwd_bwd(ours_f, q, k, v, w))
        except Exception as err:  # a tile that does not fit: note and go on
            rows.append((f"B={B} H={H} L={L} D={D}", backend, blk, None, None, t_sdpa, t_sdpa_b, type(err).__name__))
            continue
        rows.append((f"B={B} H={H} L={L} D={D}", backend, blk, t_f, t_b, t_sdpa, t_sdpa_b, ""))
    kernels._blocks = default_blocks
    with ops.use_backend("triton"), torch.no_grad():
        t_def = timed(ours_f)
    print(
        f"B={B} H={H} L={L} D={D}: sdpa fwd {t_sdpa:.4f} ms fwd+bwd {t_sdpa_b:.4f} ms; "
        f"triton default blocks {default_blocks(L, D)} fwd {t_def:.4f} ms",
        flush=True,
    )

print("| case | backend | (BM, BN, warps) | fwd ms | fwd+bwd ms | SDPA fwd | SDPA fwd+bwd | fwd x | fwd+bwd x |")
print("|---|---|---|---|---|---|---|---|---|")
for case in dict.fromkeys(r[0] for r in rows):
    mine = [r for r in rows if r[0] == case and r[3] is not None]
    best_f = min(mine, key=lambda r: r[3])
    best_b = min(mine, key=lambda r: r[4])
    cud = [r for r in mine if r[1] == "cuda"]
    picks = [("best fwd", best_f), ("best fwd+bwd", best_b)] + [("", r) for r in cud]
    for label, r in picks:
        print(
            f"| {case} | {r[1]} {label} | {r[2]} | {r[3]:.4f} | {r[4]:.4f} | {r[5]:.4f} | {r[6]:.4f} | "
            f"{r[5] / r[3]:.2f} | {r[6] / r[4]:.2f} |"
        )
import json  # noqa: E402
import os  # noqa: E402 (after the thread setting / the sweep, on purpose)

out = os.environ.get("OUT")
if out:
    with open(os.path.join(out, "res", "attention_backends.json"), "w") as f:
        json.dump(rows, f)
