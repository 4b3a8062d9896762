#!/usr/bin/env bash
# run.sh: build the libFuzzer targets with clang, ASan and UBSan (in build-fuzz) and fuzz each
# for SECONDS (default 60) from a scratch copy of its seed corpus; non-zero on a crash or leak.
#
# Usage: tests/fuzz/run.sh [SECONDS] [TARGET...]   (targets: mp envelope record gmsg ...)
# Environment: SOS_FUZZ_BUILD (build directory), SOS_FUZZ_KEEP=1 (keep the scratch directory
# with the corpora grown and the logs). A crash leaves its input in the scratch directory,
# whose path is printed; replay it with build-fuzz/tests/fuzz_TARGET FILE.
set -euo pipefail

seconds=${1:-60}
shift || true
case "$seconds" in
  '' | *[!0-9]*) echo "usage: tests/fuzz/run.sh [SECONDS] [TARGET...]" >&2; exit 2 ;;
esac
root=$(cd "$(dirname "$0")/../.." && pwd)
build=${SOS_FUZZ_BUILD:-$root/build-fuzz}
corpus=$root/tests/fuzz/corpus

if [ $# -gt 0 ]; then
  targets=("$@")
else
  targets=()
  for src in "$root"/tests/fuzz/fuzz_*.c; do
    name=$(basename "$src" .c)
    targets+=("${name#fuzz_}")
  done
fi

echo "== building fuzz targets (clang, ASan + UBSan) in $build"
CC=clang cmake -S "$root" -B "$build" -DCMAKE_C_COMPILER=clang -DSOS_FUZZ=ON -DSOS_SANITIZE=ON \
  -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target "${targets[@]/#/fuzz_}" >/dev/null

scratch=$(mktemp -d "${TMPDIR:-/tmp}/sos-fuzz.XXXXXX")
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:symbolize=1:allocator_may_return_null=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
failed=()
printf '%-10s %12s %10s  %s\n' target executions exec/s result
for t in "${targets[@]}"; do
  bin=$build/tests/fuzz_$t
  work=$scratch/$t
  mkdir -p "$work/corpus" "$work/crashes"
  if [ -d "$corpus/$t" ]; then
    cp "$corpus/$t"/* "$work/corpus/"
  fi
  max_len=65536
  if [ "$t" = envelope ]; then
    max_len=262144 # a gossip frame may carry a body of several records and a full digest
  fi
  set +e
  "$bin" -max_total_time="$seconds" -max_len="$max_len" -timeout=30 -rss_limit_mb=2048 \
    -detect_leaks=1 -print_final_stats=1 -artifact_prefix="$work/crashes/" \
    "$work/corpus" >"$work/log" 2>&1
  rc=$?
  set -e
  execs=$(awk '/^stat::number_of_executed_units:/ {print $2}' "$work/log" | tail -n 1)
  rate=$(awk '/^stat::average_exec_per_sec:/ {print $2}' "$work/log" | tail -n 1)
  result=ok
  if [ "$rc" -ne 0 ] || grep -qE 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error:' "$work/log" ||
     [ -n "$(ls -A "$work/crashes")" ]; then
    result="FAILED (exit $rc)"
    failed+=("$t")
  fi
  printf '%-10s %12s %10s  %s\n' "$t" "${execs:-?}" "${rate:-?}" "$result"
  if [ "$result" != ok ]; then
    echo "---- $t: end of $work/log"
    grep -nE 'ERROR|SUMMARY|runtime error|fuzz check failed|^    #[0-9]' "$work/log" | head -n 40 || true
    ls -l "$work/crashes" || true
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing FAILED for: ${failed[*]} (inputs and logs kept in $scratch)"
  exit 1
fi
if [ "${SOS_FUZZ_KEEP:-0}" = 1 ]; then
  echo "all targets ran ${seconds}s without a crash or leak (scratch kept in $scratch)"
else
  rm -rf "$scratch"
  echo "all targets ran ${seconds}s without a crash or leak"
fi
