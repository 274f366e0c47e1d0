#!/usr/bin/env bash
# Run a peer's own test files with hepgen's drop-in swapped in (see peer_runner.py).
#   benchmarks/dropin/run_peer_tests.sh torchdiffeq /path/to/torchdiffeq-checkout [--json out.json]
#   benchmarks/dropin/run_peer_tests.sh nflows      /path/to/nflows-checkout      [--json out.json]
# The checkout should be at the installed version's commit (torchdiffeq 0.2.5 = a88aac5,
# nflows v0.14); the installed package runs, only the checkout's tests/ is read.
# Exit status 1 if a unit that reached hepgen's function failed.
set -euo pipefail
if [ $# -lt 2 ]; then
  sed -n '2,7p' "$0" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
peer="$1"; checkout="$(cd "$2" && pwd)"; shift 2
# Run from the checkout's parent folder so that no `tests` package of another tree shadows the peer's.
cd "$checkout/.."
exec python "$here/peer_runner.py" "$peer" "$checkout" "$@"
