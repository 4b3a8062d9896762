#!/usr/bin/env bash
# again.sh: the simulator starts an exchange again at once when either side had more, as
# the node does (sos_exchange_delta_ack): a batch cut at SOS_BATCH_MAX records (MORE) while
# 600 nodes join, and a bucket too large for one answer covered in pieces (a 300-node join
# at SOS_TEST_DIGEST_MAX=8). Each run converges with every invariant held, and counts
# exchanges started again at once (exchanges.again). Runs are deterministic: seeds fixed.
#   tests/sim/again.sh [--bin DIR]
set -uo pipefail
cd "$(dirname "$0")/../.."
bin=build
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin="$2"; shift ;;
    *) echo "usage: tests/sim/again.sh [--bin DIR]" >&2; exit 2 ;;
  esac
  shift
done
sossim="$bin/sossim"
[ -x "$sossim" ] || { echo "again.sh: no $sossim (build first)" >&2; exit 2; }
failed=0
check() { # the DIGEST_ACK cap ("": the default), the run
  # shellcheck disable=SC2086
  out=$(SOS_TEST_DIGEST_MAX="$1" "$sossim" $2 2>&1)
  rc=$?
  again=$(awk '/^exchanges.again/ {print $2}' <<<"$out")
  rounds=$(awk '/^join.rounds_full_membership/ {print $2}' <<<"$out")
  echo "SOS_TEST_DIGEST_MAX=$1 sossim $2: exit $rc, exchanges started again at once $again, full membership after $rounds rounds"
  if [ "$rc" != 0 ] || [ -z "$again" ] || [ "$again" -le 0 ] || [ -z "$rounds" ] ||
     [ "$rounds" -lt 0 ]; then
    failed=1
    echo "FAILED: SOS_TEST_DIGEST_MAX=$1 sossim $2"
    grep -E "^(FAIL|replay)" <<<"$out"
  fi
}
check "" "join --nodes 600 --cheap-crypto --seed 1"
check 8 "join --nodes 300 --cheap-crypto --seed 1"
exit $failed
