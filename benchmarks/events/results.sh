#!/usr/bin/env bash
# Reproduces the results table of docs/events.md: trains the INN, CFM and DDPM and their
# Bayesian versions on the first N_TRAIN events of DATA, samples each (Bayesian: an ensemble
# of weight draws), and compares with the held-out rest of DATA.
#
#   benchmarks/events/results.sh DATA.h5 OUTDIR [N_TRAIN] [EPOCHS] [EPOCHS_INN]
#
# EPOCHS (default 100) for the CFM and DDPM, EPOCHS_INN (default 30) for the INN, whose
# epochs cost ~5x more here: about the same training time per model.
# Environment: PYTHON (default python), OMP_NUM_THREADS (default 1), N_GEN (events per model
# or member, default 5000), ENSEMBLE (members of the Bayesian models, default 5), JOBS
# (models trained at the same time, default 1; each job's wall-clock time then includes
# the others' competition, its CPU time does not).
set -euo pipefail
DATA=$1
OUT=$2
N_TRAIN=${3:-15000}
EPOCHS=${4:-100}
EPOCHS_INN=${5:-30}
PY=${PYTHON:-python}
N_GEN=${N_GEN:-5000}
ENSEMBLE=${ENSEMBLE:-5}
JOBS=${JOBS:-1}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mkdir -p "$OUT"

# Held-out truth: the events after the first N_TRAIN (those are the training set, --max-samples).
"$PY" - "$DATA" "$OUT/truth.h5" "$N_TRAIN" <<'PYEOF'
import sys
from hepgen.data.events import EventSample, read_events, write_events
s = read_events(sys.argv[1]); n = int(sys.argv[3])
if len(s) <= n:
    sys.exit(f"{sys.argv[1]}: {len(s)} events, need more than N_TRAIN={n} to hold some out")
write_events(sys.argv[2], EventSample(s.muons[n:], s.jets[n:], s.n_jets[n:], s.attrs), force=True)
print(f"truth: {len(s) - n} held-out events")
PYEOF

common=(--data "$DATA" --max-samples "$N_TRAIN" --batch-size 512 --force --quiet)
declare -A SIZE=(
  [inn]="--hidden 64 --layers 6 --epochs $EPOCHS_INN"
  [cfm]="--hidden 128 --layers 4 --epochs $EPOCHS"
  # The paper samples its DDPM through all T = 1000 steps; on this CPU we sample with 100
  # DDIM steps (10x fewer network calls) and say so in the table.
  [ddpm]="--hidden 128 --layers 4 --epochs $EPOCHS --option sampler=ddim --option sample_steps=100"
)
run_one() {  # model, "" or --bayesian
  local model=$1 bayes=$2 name=$1${2:+_bayes} members=1
  [ -n "$bayes" ] && members=$ENSEMBLE
  # shellcheck disable=SC2086
  "$PY" -m hepgen train events --model "$model" $bayes ${SIZE[$model]} "${common[@]}" -o "$OUT/$name.pt"
  "$PY" -m hepgen generate events --model "$OUT/$name.pt" -n "$N_GEN" --ensemble "$members" \
    -o "$OUT/$name.h5" --force --quiet
}
files=() labels=()
for model in inn cfm ddpm; do
  for bayes in "" "--bayesian"; do
    run_one "$model" "$bayes" &
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n || true; done
    files+=("$OUT/$model${bayes:+_bayes}.h5")
    labels+=("$(echo "$model" | tr a-z A-Z)${bayes:+ (Bayesian)}")
  done
done
wait
IFS=, ; label_list="${labels[*]}" ; unset IFS
"$PY" -m hepgen compare events --truth "$OUT/truth.h5" --generated "${files[@]}" --labels "$label_list" \
  -o "$OUT/compare" --quiet
