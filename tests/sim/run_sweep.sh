#!/usr/bin/env bash
# run_sweep.sh: run tools/sossim over every scenario for a range of seeds, with every
# invariant checked (sossim exits 1 on a violation). A failing seed fails the sweep and its
# replay command is printed. Sized for CI (3 to 5 minutes on 2 cores: 80 seeds, 40 nodes, cheap
# signatures); --long runs larger networks and more seeds; --active-view runs every scenario
# with a bounded active view of connections (sossim --active-view).
#   tests/sim/run_sweep.sh [--long] [--active-view] [--seeds N] [--first S] [--nodes N] [--bin DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=build; seeds=80; first=1; nodes=40; long=0; extra=""
while [ $# -gt 0 ]; do
  case "$1" in
    --long) long=1 ;;
    --active-view) extra="--active-view" ;;
    --seeds) seeds="$2"; shift ;;
    --first) first="$2"; shift ;;
    --nodes) nodes="$2"; shift ;;
    --bin) bin="$2"; shift ;;
    *) echo "usage: tests/sim/run_sweep.sh [--long] [--active-view] [--seeds N] [--first S] [--nodes N] [--bin DIR]" >&2
       exit 2 ;;
  esac
  shift
done
if [ "$long" = 1 ]; then
  seeds=$((seeds * 5)); nodes=$((nodes * 5))
fi
sossim="$bin/sossim"
[ -x "$sossim" ] || { echo "run_sweep.sh: no $sossim (build first)" >&2; exit 2; }
# scenario and its options; loss 0.02 is the level up to which no live node may be removed
runs=(
  "join"
  "room"
  "kill"
  "partition --partition-rounds 20"
  "churn --rounds 120"
  "loss --loss 0.02 --rounds 120"
  "loss --loss 0.2 --rounds 60"
  "slow --rounds 120"
  "hostile --rounds 60"
)
failed=0; total=0
start=$(date +%s)
# Determinism: the first seed of every scenario twice, byte for byte.
for r in "${runs[@]}"; do
  # shellcheck disable=SC2086
  a=$("$sossim" $r --nodes "$nodes" --cheap-crypto $extra --seed "$first" 2>&1)
  # shellcheck disable=SC2086
  b=$("$sossim" $r --nodes "$nodes" --cheap-crypto $extra --seed "$first" 2>&1)
  total=$((total + 1))
  if [ "$a" != "$b" ]; then
    failed=$((failed + 1))
    echo "FAILED: sossim $r --nodes $nodes --cheap-crypto $extra --seed $first differs between two runs"
  fi
done
for ((s = first; s < first + seeds; s++)); do
  for r in "${runs[@]}"; do
    total=$((total + 1))
    # shellcheck disable=SC2086
    out=$("$sossim" $r --nodes "$nodes" --cheap-crypto $extra --seed "$s" 2>&1)
    rc=$?
    if [ "$rc" != 0 ]; then
      failed=$((failed + 1))
      echo "FAILED: sossim $r --nodes $nodes --cheap-crypto $extra --seed $s (exit $rc)"
      echo "$out" | grep -E "^(FAIL|replay)" | sed "s|^replay: sossim|replay: $sossim|"
    fi
  done
done
echo "sim sweep: $total runs ($seeds seeds x ${#runs[@]} scenarios, $nodes nodes${extra:+, $extra}), $failed failed, $(( $(date +%s) - start )) s"
[ "$failed" = 0 ]
