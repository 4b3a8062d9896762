#!/usr/bin/env bash
# run.sh: build with warnings as errors and run the whole test suite: unit tests, the
# known-answer vectors and the multi-node scenarios (ctest). Options:
#   --asan   also run the suite again under AddressSanitizer + UBSan (tests/run_asan.sh)
#   --fuzz S also run every fuzz target for S seconds (tests/fuzz/run.sh)
#   --valgrind also run a node under valgrind memcheck (tests/run_valgrind.sh)
#   --powercut N also run the power-cut test with N cuts (ctest runs it with 8)
#   --sim    also run the simulator's sweep of seeds over every scenario (tests/sim/run_sweep.sh,
#            about 4 minutes); --sim-long runs the longer sweep
# Environment: SOS_TEST_JOBS, the ctest entries run at once (default 2; the multi-node tests
# wait on conditions, never on times, so they hold on a shared machine; 1 to run them alone).
set -euo pipefail
cd "$(dirname "$0")/.."
asan=0; fuzz=0; valgrind=0; powercut=0; sim=0
while [ $# -gt 0 ]; do
  case "$1" in
    --asan) asan=1 ;;
    --fuzz) fuzz="$2"; shift ;;
    --valgrind) valgrind=1 ;;
    --powercut) powercut="$2"; shift ;;
    --sim) sim=1 ;;
    --sim-long) sim=2 ;;
    *) echo "usage: tests/run.sh [--asan] [--valgrind] [--fuzz SECONDS] [--powercut N] [--sim|--sim-long]" >&2; exit 2 ;;
  esac
  shift
done
cmake -S . -B build-test -DSOS_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build-test -j"$(nproc)"
(cd build-test && ctest --output-on-failure --timeout 900 -j"${SOS_TEST_JOBS:-2}")
if [ "$asan" = 1 ] && [ -x tests/run_asan.sh ]; then
  tests/run_asan.sh -j2
fi
if [ "$valgrind" = 1 ] && [ -x tests/run_valgrind.sh ]; then
  tests/run_valgrind.sh
fi
if [ "$fuzz" != 0 ] && [ -x tests/fuzz/run.sh ]; then
  tests/fuzz/run.sh "$fuzz"
fi
if [ "$powercut" != 0 ]; then
  SOS_BIN=build-test SOS_POWERCUT_SHIM=build-test/powercut_shim.so \
    /usr/bin/python3 tests/powercut/test_powercut.py --cuts "$powercut"
fi
if [ "$sim" != 0 ]; then
  tests/sim/run_sweep.sh --bin build-test $([ "$sim" = 2 ] && echo --long)
fi
