#!/usr/bin/env bash
# Apply the repository's lint fixes and formatting in place: ruff (check --fix, then
# format) over the Python code and clang-format over csrc/, kernels/ and tests/cpp/.
# Afterwards `.ci/run`'s lint step (tools/lint.sh) passes, unless a finding needs a manual
# edit: those are counted per rule at the end, and the script then exits 1.
#
# Usage: tools/tidy.sh            (tools from PATH, or the versions pinned in the lint extra:
#                                  pip install -e '.[lint]')
set -euo pipefail
cd "$(dirname "$0")/.."

ruff check --fix --exit-zero --quiet .
ruff format .
git ls-files -z 'csrc/*' 'kernels/*' 'tests/cpp/*' \
  | grep -zE '\.(h|hpp|c|cc|cpp|cu|cuh)$' \
  | xargs -0 --no-run-if-empty clang-format -i
# What is left needs a manual edit (ruff format does not split long strings or comments).
if ! ruff check --quiet --statistics .; then
  echo "tidy: the findings above need manual edits (ruff check . shows where)" >&2
  exit 1
fi
echo "tidy: ruff and clang-format clean"
