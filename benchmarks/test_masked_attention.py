"""pytest-benchmark suite for masked attention, on the cases and baseline of hepgen.bench.attention.

    pytest benchmarks/test_masked_attention.py --benchmark-group-by=param:case

Each case is timed for hepgen's default backend and for torch's scaled_dot_product_attention
with the equivalent boolean mask, so the two sit side by side in one run; the decode cases
time a whole sampling loop with the KV cache against recomputing attention over the prefix.
`hepgen bench attention` prints the same comparison as a table with ratios.
"""

import pytest
import torch
import torch.nn.functional as F

import hepgen.ops as ops
from hepgen.bench import attention
from hepgen.nn import KVCache
from hepgen.ops.masked_attention import admissible_keys

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _sync(device):
    if device == "cuda":
        torch.cuda.synchronize()


def _attend(impl, case, mask, device):
    if impl == "hepgen":
        return lambda a, b, c: ops.masked_attention(a, b, c, mask, causal=True)
    attn_mask = admissible_keys(mask, case.length, True, torch.device(device))
    return lambda a, b, c: F.scaled_dot_product_attention(a, b, c, attn_mask=attn_mask)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", attention.CASES, ids=lambda c: c.label.replace(" ", "_"))
@pytest.mark.parametrize("impl", ["hepgen", "sdpa"])
def test_attention_forward(benchmark, device, case, impl):
    q, k, v, mask = attention.make_inputs(case, device)
    attend = _attend(impl, case, mask, device)
    benchmark(lambda: (attend(q, k, v), _sync(device)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", attention.CASES, ids=lambda c: c.label.replace(" ", "_"))
@pytest.mark.parametrize("impl", ["hepgen", "sdpa"])
def test_attention_forward_backward(benchmark, device, case, impl):
    q, k, v, mask = attention.make_inputs(case, device)
    attend = _attend(impl, case, mask, device)
    grad = torch.randn(q.shape, device=device)
    benchmark(lambda: (attention._forward_backward(attend, q, k, v, grad), _sync(device)))


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("case", attention.DECODE_CASES, ids=lambda c: c.label.replace(" ", "_"))
@pytest.mark.parametrize("impl", ["hepgen_kv_cache", "sdpa_recompute"])
def test_sampling_loop(benchmark, device, case, impl):
    q, k, v, _ = attention.make_inputs(case, device)
    if impl == "hepgen_kv_cache":
        cache = KVCache(case.batch, case.heads, case.length, case.head_dim, device=device)
        fn = lambda: attention._sampling_loop_cached(cache, q, k, v)  # noqa: E731
    else:
        fn = lambda: attention._sampling_loop_recompute(  # noqa: E731
            lambda a, b, c: F.scaled_dot_product_attention(a, b, c, is_causal=True), q, k, v
        )
    benchmark(lambda: (fn(), _sync(device)))
