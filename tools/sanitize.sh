#!/usr/bin/env bash
# The compiled core under AddressSanitizer and UndefinedBehaviorSanitizer (CPU only):
#   1. build hepgen_core and hepgen._C with -DHEPGEN_SANITIZE="address;undefined" into their
#      own build folder (the worktree's hepgen/_C*.so and any installed hepgen are untouched);
#   2. stage a copy of the Python package with that core, under the build folder;
#   3. build the C++ tests (tests/cpp) against the staged core and run them (leak checks on);
#   4. run the op tests (tests/ops, Triton deselected) in Python importing the staged core,
#      then replay their calls into the core with one argument changed (sanitize_mutate.py).
# Every sanitizer report is written to a file under <build>/reports; the summary lists them
# and the script exits 1 if there is any (or if a build or a test fails).
#
# Usage: tools/sanitize.sh [PYTEST ARGS...]      (default: tests/ops -k "not triton"; paths
#                                                 relative to the repository root)
#   PYTHON=...               the interpreter with torch and pytest (default: python3)
#   SANITIZE_BUILD_DIR=...   build folder (default: build/sanitize); rebuilds are incremental
#   SANITIZE_JOBS=N          parallel compile jobs (default: 2)
#   SANITIZE_MUTATE=0        skip the replay of the tests' core calls with changed arguments
#                            (tools/sanitize_mutate.py; SANITIZE_MUTATE_CALLS per entry point, 40)
# Needs gcc or clang with the sanitizer runtimes, cmake >= 3.21, pybind11 (pip install pybind11).
set -uo pipefail
cd "$(dirname "$0")/.."
root=$PWD
python=${PYTHON:-python3}
# A relative path (PYTHON=.venv/bin/python) must survive the cd's below.
case $python in */*) python=$(cd "$(dirname "$python")" && pwd)/$(basename "$python") ;; esac
build=${SANITIZE_BUILD_DIR:-build/sanitize}
mkdir -p "$build" && build=$(cd "$build" && pwd)
stage=$build/stage        # the package as Python imports it: .py files of this tree + sanitized core
reports=$build/reports    # one file per process that reported (ASan/UBSan log_path)
jobs=${SANITIZE_JOBS:-2}
start=$(date +%s)
t() { echo "[sanitize +$(($(date +%s) - start))s] $*"; }
fail() { echo "sanitize: $*" >&2; exit 1; }

pybind11_dir=$("$python" -m pybind11 --cmakedir 2>/dev/null) \
  || fail "pybind11 is not importable by $python (pip install pybind11)"
python_exe=$("$python" -c 'import sys; print(sys.executable)')
# The runtimes the compiler links: Python itself is not instrumented, so they are preloaded
# (ASan must be the first library loaded; it replaces malloc/free for the whole process).
cxx=${CXX:-c++}
libasan=$("$cxx" -print-file-name=libasan.so)
libubsan=$("$cxx" -print-file-name=libubsan.so)
[[ -f $libasan && -f $libubsan ]] || fail "$cxx has no libasan.so/libubsan.so (install the compiler's sanitizer runtimes)"

t "configure + build the sanitized core in $build"
cmake -S . -B "$build" -DHEPGEN_SANITIZE="address;undefined" -DHEPGEN_CUDA=OFF -DCMAKE_BUILD_TYPE=Release \
  -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DPython_EXECUTABLE="$python_exe" -Dpybind11_DIR="$pybind11_dir" \
  >"$build/configure.log" 2>&1 || { tail -30 "$build/configure.log"; fail "configure failed ($build/configure.log)"; }
cmake --build "$build" -j"$jobs" >"$build/build.log" 2>&1 \
  || { tail -40 "$build/build.log"; fail "build failed ($build/build.log)"; }
build_s=$(($(date +%s) - start))
t "built ($build_s s)"

# Stage: this tree's Python package without its own compiled parts, plus the sanitized ones.
rm -rf "$stage" "$reports" && mkdir -p "$stage" "$reports"
tar -C "$root" --exclude='__pycache__' --exclude='hepgen/_C*.so' --exclude='hepgen/lib' --exclude='hepgen/include' \
  -cf - hepgen | tar -C "$stage" -xf -
cmake --install "$build" --prefix "$stage/hepgen" >"$build/install.log" 2>&1 || fail "install into the stage failed"

# torch (CPU build, 2.13) needs nothing more under the preloaded ASan than detect_leaks=0
# (below): its allocator is plain malloc, which ASan intercepts. protect_shadow_gap=0, often
# quoted for torch, is for the CUDA driver's fixed mappings; this build has no CUDA.
# ASan: abort on the first error (its default), report to files. UBSan: a stack with each
# report, and end the process (the build also has -fno-sanitize-recover=undefined).
asan_common="abort_on_error=1:halt_on_error=1:log_path=$reports/asan"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1:log_path=$reports/ubsan"

# ---- C++ tests: programs of our own, so leak detection stays on ------------------------
t "C++ tests (tests/cpp) against the sanitized core"
cpp_build=$build/cpp
cpp_status=0
cmake -S tests/cpp -B "$cpp_build" -Dhepgen_DIR="$stage/hepgen/lib/cmake/hepgen" -DCMAKE_BUILD_TYPE=Release \
  >"$build/cpp-configure.log" 2>&1 && cmake --build "$cpp_build" -j"$jobs" >"$build/cpp-build.log" 2>&1 \
  || { tail -30 "$build/cpp-build.log" "$build/cpp-configure.log" 2>/dev/null; fail "building tests/cpp failed"; }
cpp_ran=0
for program in set_pool_consumer tensor_view_checks; do
  ASAN_OPTIONS="$asan_common:detect_leaks=1" "$cpp_build/$program" >"$build/cpp-$program.log" 2>&1
  rc=$?
  cpp_ran=$((cpp_ran + 1))
  echo "  $program: exit $rc ($(tail -1 "$build/cpp-$program.log"))"
  [[ $rc -eq 0 ]] || cpp_status=1
done

# ---- the op tests in Python, through the sanitized hepgen._C ----------------------------
# detect_leaks=0: CPython and torch keep allocations alive until exit by design (interned
# objects, the operator registry, thread pools); LeakSanitizer would report thousands of
# those and nothing of ours. The C++ tests above do check our code for leaks.
# PYTHONPATH and the working directory are the stage, so `import hepgen` finds the staged
# package before this tree's or an installed one; the guard plugin (below) stops the run if
# it does not, instead of quietly testing an uninstrumented core or skipping compiled tests.
cat >"$stage/hepgen_sanitize_guard.py" <<EOF
import os

def pytest_configure(config):
    from hepgen import _core

    core = _core.compiled()  # RuntimeError (and no run) if the sanitized core does not load
    if not os.path.realpath(core.__file__).startswith(os.path.realpath("$stage") + os.sep):
        raise RuntimeError(f"hepgen._C came from {core.__file__}, not from the sanitized stage $stage")
EOF
# tools/sanitize_mutate.py (a pytest plugin): the tests' own calls into hepgen._C replayed
# with one tensor argument changed at a time; SANITIZE_MUTATE=0 leaves it out.
plugins=(-p hepgen_sanitize_guard)
if [[ ${SANITIZE_MUTATE:-1} != 0 ]]; then
  cp tools/sanitize_mutate.py "$stage/"
  plugins+=(-p sanitize_mutate)
fi
# pytest runs in the stage: test paths given relative to the repository root are made absolute.
pytest_args=()
for arg in "${@:-tests/ops}"; do
  if [[ $arg != /* && $arg != -* && -e $root/${arg%%::*} ]]; then arg=$root/$arg; fi
  pytest_args+=("$arg")
done
[[ $# -gt 0 ]] || pytest_args+=(-k "not triton")  # the Triton interpreter runs no compiled code
t "op tests under ASan/UBSan: pytest ${pytest_args[*]}"
py_start=$(date +%s)
(
  cd "$stage" && \
  LD_PRELOAD="$libasan:$libubsan" ASAN_OPTIONS="$asan_common:detect_leaks=0" PYTHONPATH="$stage" \
    "$python" -m pytest "${plugins[@]}" -p no:cacheprovider -q -rfE "${pytest_args[@]}"
) >"$build/pytest.log" 2>&1
py_status=$?
py_s=$(($(date +%s) - py_start))
tail -3 "$build/pytest.log"

# ---- summary -----------------------------------------------------------------------------
mapfile -t found < <(find "$reports" -type f | sort)
echo
echo "==== sanitizer summary ===="
echo "build: $build_s s; C++ tests: $cpp_ran programs, status $cpp_status; op tests: $py_s s, pytest exit $py_status"
echo "pytest: $(grep -E '^[0-9]+ (passed|failed)|(passed|failed|error).* in [0-9.]+s' "$build/pytest.log" | tail -1)"
grep '^sanitize_mutate:' "$build/pytest.log" || true
echo "sanitizer reports: ${#found[@]} (files under $reports)"
for report in "${found[@]}"; do
  echo "--- $report"
  grep -E 'runtime error|ERROR: (Address|Leak)Sanitizer|SUMMARY:|^    #[0-3] ' "$report" | head -12
done
echo "total: $(($(date +%s) - start)) s"
if [[ ${#found[@]} -gt 0 || $cpp_status -ne 0 || $py_status -ne 0 ]]; then
  echo "sanitize: FAILED (logs: $build/pytest.log, $build/cpp-*.log)" >&2
  exit 1
fi
echo "sanitize: clean"
