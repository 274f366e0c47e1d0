#!/usr/bin/env bash
# Apply the repository's lint fixes and formatting in place: ruff (check --fix, then
# format) over the Python code and clang-format over csrc/, kernels/ and tests/cpp/.
# Afterwards, `.ci/run`'s lint step (tools/lint.sh) passes unless a finding needs a
# manual edit; those are listed at the end.
#
# Usage: tools/tidy.sh            (tools from PATH, or the versions pinned in the lint extra:
#                                  pip install -e '.[lint]')
set -euo pipefail
cd "$(dirname "$0")/.."

ruff check --fix .
ruff format .
git ls-files -z 'csrc/*' 'kernels/*' 'tests/cpp/*' \
  | grep -zE '\.(h|hpp|c|cc|cpp|cu|cuh)$' \
  | xargs -0 --no-run-if-empty clang-format -i
echo "tidy: remaining findings (manual edits):"
ruff check --statistics . || true
