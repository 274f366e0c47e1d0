#!/usr/bin/env bash
# One device-machine call: build hepgen against the machine's torch/triton, run the GPU tests
# (CUDA and compiled Triton backends) and the benchmark suites on the GPU, and leave logs and
# results under $OUT (a tarball, since only 8 files come back).
#   usage (device tool, repo root):  bash benchmarks/gpu/session.sh [tests|bench|sanitize|all] [SUITES...]
# `sanitize` (its own call, not part of `all`: build <= 240 s + memcheck <= 180 s + racecheck
# <= 100 s) runs NVIDIA's compute-sanitizer over the CUDA op tests (see the step below).
# Peers that the machine lacks (nflows, zuko) travel as wheels in .whl (see README of the tool).
set -u
what=${1:-all}; shift || true
suites=${*:-pooling spline attention epic calo}
OUT=${OUT:-/tmp/hepgen-gpu-out}; mkdir -p "$OUT/res"
export PYTHONUNBUFFERED=1 CMAKE_BUILD_PARALLEL_LEVEL=16
finish() { tar -C "$OUT" -czf "$OUT/results.tgz" res; }
trap finish EXIT
start=$(date +%s); t() { echo "[+$(( $(date +%s) - start ))s] $*"; }

if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    && export PYTHONPATH=/tmp/site
fi
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv | tee "$OUT/res/gpu.txt"
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__, torch.cuda.get_device_name())" | tee -a "$OUT/res/gpu.txt"

t build
SKBUILD_CMAKE_DEFINE="CMAKE_CUDA_ARCHITECTURES=90" timeout 240 \
  python3 -m pip install --no-build-isolation --no-deps -e . > "$OUT/res/build.log" 2>&1 \
  || { t "build failed"; tail -40 "$OUT/res/build.log"; exit 1; }
t built
python3 -m hepgen info | tee "$OUT/res/info.txt"

if [[ $what == tests || $what == all ]]; then
  t tests
  timeout ${TEST_TIMEOUT:-260} python3 -m pytest tests/ops tests/nn tests/ode tests/flows tests/models -k "cuda or graph" \
    -q -rfE -p no:cacheprovider -n 8 --junitxml "$OUT/res/junit.xml" > "$OUT/res/tests.log" 2>&1
  echo "pytest rc=$?"; grep -E "^(FAILED|ERROR)" "$OUT/res/tests.log" | head -40; tail -3 "$OUT/res/tests.log"
fi
if [[ $what == bench || $what == all ]]; then
  for s in $suites; do
    t "bench $s"
    timeout ${BENCH_TIMEOUT:-120} python3 -m hepgen bench $s --device cuda --save "$OUT/res" > "$OUT/res/bench_$s.log" 2>&1
    echo "bench $s rc=$?"; tail -25 "$OUT/res/bench_$s.log"
  done
fi
if [[ $what == sanitize ]]; then
  # compute-sanitizer over the CUDA backend's op tests: memcheck (out-of-bounds and misaligned
  # device accesses, API errors) over tests/ops, racecheck (shared-memory hazards) over the
  # conformance suite. Only hepgen's kernels are instrumented (--kernel-name kns=hepgen: the
  # mangled names of hepgen::cuda::* contain it), so torch's kernels run at full speed.
  # PYTORCH_NO_CUDA_MEMORY_CACHING=1: every tensor gets its own cudaMalloc, so memcheck sees
  # each tensor's bounds; with torch's caching allocator a read past a tensor lands inside the
  # allocator's block and goes unreported. Logs: res/memcheck.log, res/racecheck.log.
  sanitizer=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null || true)
  if [[ -z $sanitizer ]]; then
    t "sanitize: no compute-sanitizer on this machine (CUDA toolkit's bin/): skipped"
  else
    "$sanitizer" --version | tail -1 | tee "$OUT/res/sanitizer.txt"
    for check in memcheck racecheck; do
      if [[ $check == memcheck ]]; then tests=tests/ops limit=${MEMCHECK_TIMEOUT:-180}
      else tests=tests/ops/conformance limit=${RACECHECK_TIMEOUT:-100}; fi
      t "sanitize: $check over $tests (<= $limit s)"
      PYTORCH_NO_CUDA_MEMORY_CACHING=1 timeout "$limit" "$sanitizer" --tool "$check" --kernel-name kns=hepgen \
        --target-processes all --error-exitcode 99 \
        python3 -m pytest "$tests" -k "cuda and not triton" -q -rfE -p no:cacheprovider \
        > "$OUT/res/$check.log" 2>&1
      echo "$check rc=$? (99: the sanitizer reported errors; 124: time limit)"
      grep -E "========= (ERROR|RACECHECK) SUMMARY|^========= (Invalid|Race|Error)" "$OUT/res/$check.log" | sort | uniq -c | head -20
      tail -2 "$OUT/res/$check.log"
    done
  fi
fi
if [[ -n ${EXTRA:-} ]]; then t "extra: $EXTRA"; timeout ${EXTRA_TIMEOUT:-200} bash -c "$EXTRA" 2>&1 | tee "$OUT/res/extra.log"; fi
t done
