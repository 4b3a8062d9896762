#!/usr/bin/env bash
# run_asan.sh: build everything with AddressSanitizer and UndefinedBehaviorSanitizer in
# build-asan and run the whole test suite there (ctest); any sanitizer report fails it.
#
# Usage: tests/run_asan.sh [CTEST ARGS...]   e.g. tests/run_asan.sh -R unit
# Environment: SOS_ASAN_BUILD (build directory, default build-asan), CC (compiler, default gcc).
#
# Unit tests and fuzz corpus replays fail on a report by their exit code. The multi-node
# tests start the sanitized sosnode and sosctl: sosctl fails its command on a report, and
# tests/multinode/sosnet.py stops every node with SIGTERM at the end of a scenario (so that
# LeakSanitizer checks it as it exits) and fails the test if a node's log holds a report.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${SOS_ASAN_BUILD:-$root/build-asan}

# No -Werror here: the sanitizers change gcc's flow analysis and so its warnings; the
# warning gate is the plain build (tests/run.sh).
cmake -S "$root" -B "$build" -DSOS_SANITIZE=ON -DSOS_WERROR=OFF -DSOS_FUZZ=OFF \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)"

# abort_on_error: a report ends the process with SIGABRT, which no caller mistakes for success.
export ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
cd "$build"
ctest --output-on-failure --timeout 900 "$@"
