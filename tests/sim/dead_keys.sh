#!/usr/bin/env bash
# dead_keys.sh: worker probation under a flood of fresh keys naming endpoints where nothing
# answers (sossim hostile --dead-keys), on 40 nodes at --max-workers 64: below the 4 N that
# the fixed quarter of the first rule needed for a join. The join converges, every invariant
# holds, the honest nodes' probation cap falls during the attack, and probation refuses keys.
# Runs are deterministic, so the seeds are fixed.
#   tests/sim/dead_keys.sh [--bin DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=build
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift ;;
    *) echo "usage: tests/sim/dead_keys.sh [--bin DIR]" >&2; exit 2 ;;
  esac
  shift
done
sossim="$bin/sossim"
[ -x "$sossim" ] || { echo "dead_keys.sh: no $sossim (build first)" >&2; exit 2; }
failed=0
for extra in "--seed 1" "--seed 2" "--seed 1 --active-view"; do
  run="hostile --nodes 40 --cheap-crypto --max-workers 64 --dead-keys 4 --rounds 60 $extra"
  # shellcheck disable=SC2086
  out=$("$sossim" $run 2>&1)
  rc=$?
  before=$(awk '/^hostile.probation_cap_mean_before/ {print $2}' <<<"$out")
  after=$(awk '/^hostile.probation_cap_at_end/ {print $5}' <<<"$out")
  refused=$(awk '/^hostile.probation_refused/ {print $2}' <<<"$out")
  echo "sossim $run: exit $rc, mean cap $before before the attack, $after at its end, $refused refused"
  if [ "$rc" != 0 ] || [ -z "$before" ] || [ -z "$after" ] || [ "$after" -ge "$before" ] ||
     [ "${refused:-0}" -eq 0 ]; then
    failed=$((failed + 1))
    echo "FAILED: sossim $run"
    grep -E "^(FAIL|replay)" <<<"$out" | sed "s|^replay: sossim|replay: $sossim|"
  fi
done
[ "$failed" = 0 ]
