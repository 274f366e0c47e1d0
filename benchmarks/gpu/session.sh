#!/usr/bin/env bash
# One device-machine call: build hepgen against the machine's torch/triton, run the GPU tests
# (CUDA and compiled Triton backends) and the benchmark suites on the GPU, and leave logs and
# results under $OUT (a tarball, since only 8 files come back).
#   usage (device tool, repo root):  bash benchmarks/gpu/session.sh [tests|bench|all] [SUITES...]
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
if [[ -n ${EXTRA:-} ]]; then t "extra: $EXTRA"; timeout ${EXTRA_TIMEOUT:-200} bash -c "$EXTRA" 2>&1 | tee "$OUT/res/extra.log"; fi
t done
