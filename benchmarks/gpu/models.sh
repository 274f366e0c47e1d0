#!/usr/bin/env bash
# GPU smoke run of the models, after session.sh built hepgen: train and sample each kind on the
# GPU, time it, and run the model benchmark suites. Data travels in .gpudata (git-ignored):
# top30_train.h5 (hepgen data jets --process top --particles 30) and zjets_30k.h5 (hepgen data events).
#   EXTRA="bash benchmarks/gpu/models.sh" bash benchmarks/gpu/session.sh build
set -u
OUT=${OUT:-/tmp/hepgen-gpu-out}; mkdir -p "$OUT/res"; W=/tmp/models; mkdir -p $W
D=.gpudata
step() {  # step NAME SECONDS COMMAND...: run, time, keep the log's tail
  local name=$1 limit=$2; shift 2
  local t0=$(date +%s%N)
  timeout "$limit" "$@" > "$W/$name.log" 2>&1; local rc=$?
  local ms=$(( ($(date +%s%N) - t0) / 1000000 ))
  printf '%-30s rc=%-3s %6d.%03d s\n' "$name" "$rc" $((ms / 1000)) $((ms % 1000)) | tee -a "$OUT/res/models_steps.txt"
  tail -4 "$W/$name.log" | sed 's/\r/\n/g' | tail -3
}
H="python3 -m hepgen"
step generate-jets-50k 120 $H generate jets -n 50000 --batch-size 10000 --device cuda -o $W/jets.h5 --quiet
step train-jets-fm-2ep 120 $H train jets --model epic-fm --data $D/top30_train.h5 --epochs 2 --device cuda -o $W/fm.pt --quiet
step generate-calo-100k 120 $H generate calo -n 100000 --energies all --batch-size 10000 --device cuda -o $W/calo.h5
step train-events-cfm-3ep 120 $H train events --model cfm --data $D/zjets_30k.h5 --epochs 3 --device cuda -o $W/cfm.pt --quiet
step generate-events-cfm-100k 120 $H generate events --model $W/cfm.pt -n 100000 --batch-size 20000 --device cuda -o $W/cfm.h5 --quiet
step train-events-jetgpt-3ep 120 $H train events --model jetgpt --data $D/zjets_30k.h5 --epochs 3 --hidden 64 --layers 3 \
  --option heads=4 --option components=16 --device cuda -o $W/gpt.pt --quiet
step generate-events-jetgpt-100k 120 $H generate events --model $W/gpt.pt -n 100000 --batch-size 20000 --device cuda -o $W/gpt.h5 --quiet
for s in jets calo ${MODEL_SUITES:-}; do
  step bench-$s ${BENCH_LIMIT:-150} $H bench $s --device cuda --save "$OUT/res"
  sed -n '/^| case/,/^recorded/p' "$W/bench-$s.log"
done
