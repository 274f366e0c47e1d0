#!/usr/bin/env bash
# Check, without changing anything, that the code passes ruff's lint rules and is
# formatted by ruff and clang-format (the configuration: pyproject.toml, .clang-format).
# CI runs it after the tests; tools/tidy.sh fixes what can be fixed automatically.
set -euo pipefail
cd "$(dirname "$0")/.."

status=0
echo "+ ruff check ."
ruff check . || status=1
echo "+ ruff format --check ."
ruff format --check . || status=1
echo "+ clang-format --dry-run -Werror (csrc/, kernels/, tests/cpp/)"
git ls-files -z 'csrc/*' 'kernels/*' 'tests/cpp/*' \
  | grep -zE '\.(h|hpp|c|cc|cpp|cu|cuh)$' \
  | xargs -0 --no-run-if-empty clang-format --dry-run -Werror || status=1
if [ "$status" -ne 0 ]; then
  echo "lint: failed; tools/tidy.sh applies the automatic fixes" >&2
fi
exit "$status"
