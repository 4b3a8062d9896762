#!/usr/bin/env bash
# run_sweep.sh: run tools/sossim over every scenario for a range of seeds, with every
# invariant checked (sossim exits 1 on a violation). A failing seed fails the sweep and its
# replay command is printed. Sized for CI (3 to 5 minutes on 2 cores: 80 seeds, 40 nodes, cheap
# signatures; every fourth seed also with a bounded active view of connections, sossim
# --active-view); --long runs larger networks and more seeds; --active-view runs every seed
# with the bounded view only.
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
# The modes: without flags, every seed as sosnode connects today (one connection per worker)
# and every fourth seed also with a bounded active view; --active-view: every seed with it.
if [ -n "$extra" ]; then modes=("$extra"); view_every=0; else modes=(""); view_every=4; fi
# Determinism: the first seed of every scenario twice, byte for byte, in each mode.
for flags in "${modes[@]}" $([ "$view_every" != 0 ] && echo --active-view); do
  for r in "${runs[@]}"; do
    # shellcheck disable=SC2086
    a=$("$sossim" $r --nodes "$nodes" --cheap-crypto $flags --seed "$first" 2>&1)
    # shellcheck disable=SC2086
    b=$("$sossim" $r --nodes "$nodes" --cheap-crypto $flags --seed "$first" 2>&1)
    total=$((total + 1))
    if [ "$a" != "$b" ]; then
      failed=$((failed + 1))
      echo "FAILED: sossim $r --nodes $nodes --cheap-crypto $flags --seed $first differs between two runs"
    fi
  done
done
for ((s = first; s < first + seeds; s++)); do
  these=("${modes[@]}")
  if [ "$view_every" != 0 ] && [ $(( (s - first) % view_every )) = 0 ]; then
    these+=("--active-view")
  fi
  for flags in "${these[@]}"; do
    for r in "${runs[@]}"; do
      total=$((total + 1))
      # shellcheck disable=SC2086
      out=$("$sossim" $r --nodes "$nodes" --cheap-crypto $flags --seed "$s" 2>&1)
      rc=$?
      if [ "$rc" != 0 ]; then
        failed=$((failed + 1))
        echo "FAILED: sossim $r --nodes $nodes --cheap-crypto $flags --seed $s (exit $rc)"
        echo "$out" | grep -E "^(FAIL|replay)" | sed "s|^replay: sossim|replay: $sossim|"
      fi
    done
  done
done
if [ -n "$extra" ]; then note="$extra"; else note="every ${view_every}th seed also --active-view"; fi
echo "sim sweep: $total runs ($seeds seeds x ${#runs[@]} scenarios, $nodes nodes, $note), $failed failed, $(( $(date +%s) - start )) s"
[ "$failed" = 0 ]
