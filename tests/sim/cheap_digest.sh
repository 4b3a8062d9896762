#!/usr/bin/env bash
# cheap_digest.sh: sossim --cheap-digest must lead every node to the same choices as the
# BLAKE2b digest hashes: the same digest line (every delivery, removal and check) for every
# scenario, with and without --active-view. A difference names the run that replays it.
#   tests/sim/cheap_digest.sh [--seeds N] [--nodes N] [--bin DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=build; seeds=2; nodes=30
while [ $# -gt 0 ]; do
  case "$1" in
    --seeds) seeds="$2"; shift ;;
    --nodes) nodes="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    *) echo "usage: tests/sim/cheap_digest.sh [--seeds N] [--nodes N] [--bin DIR]" >&2; exit 2 ;;
  esac
  shift
done
sossim="$bin/sossim"
[ -x "$sossim" ] || { echo "cheap_digest.sh: no $sossim (build first)" >&2; exit 2; }
runs=("join" "room" "kill" "partition --partition-rounds 20" "churn --rounds 60"
      "loss --loss 0.05 --rounds 60" "slow --rounds 60" "hostile --rounds 60")
failed=0; total=0
for ((s = 1; s <= seeds; s++)); do
  for flags in "" "--active-view"; do
    for r in "${runs[@]}"; do
      # shellcheck disable=SC2086
      a=$("$sossim" $r --nodes "$nodes" --cheap-crypto $flags --seed "$s" 2>&1 | grep '^digest ')
      # shellcheck disable=SC2086
      b=$("$sossim" $r --nodes "$nodes" --cheap-crypto --cheap-digest $flags --seed "$s" 2>&1 |
          grep '^digest ')
      total=$((total + 1))
      if [ -z "$a" ] || [ "$a" != "$b" ]; then
        failed=$((failed + 1))
        echo "FAILED: sossim $r --nodes $nodes --cheap-crypto $flags --seed $s: '$a'," \
             "with --cheap-digest '$b'"
      fi
    done
  done
done
echo "cheap_digest: $total runs compared, $failed differ"
[ "$failed" = 0 ]
