#!/usr/bin/env bash
# run_valgrind.sh: valgrind memcheck of a sosnode that starts, gossips with a second node, serves
# and forwards room requests, and stops on SIGTERM: it must show no memory error and no definite leak.
#
# Usage: tests/run_valgrind.sh
# Environment: SOS_VALGRIND_BUILD (build directory, default build-valgrind), SOS_VALGRIND_KEEP=1
# (keep the scratch directory with the logs and valgrind's report).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
build=${SOS_VALGRIND_BUILD:-$root/build-valgrind}
python=/usr/bin/python3
emojis=$(printf '\xf0\x9f\x86\x98\xf0\x9f\x8f\xa0') # room emojis, never sent to a node
emojis_b=$(printf '\xf0\x9f\x94\xa5\xf0\x9f\x8c\x8a')
pin=4711

cmake -S "$root" -B "$build" -DSOS_SANITIZE=OFF -DSOS_FUZZ=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >/dev/null
cmake --build "$build" -j"$(nproc)" --target sosnode sosctl >/dev/null

work=$(mktemp -d "${TMPDIR:-/tmp}/sos-valgrind.XXXXXX")
pid_a="" pid_b="" pid_poll="" ok=0
cleanup() {
  for pid in $pid_poll $pid_b $pid_a; do
    kill -KILL "$pid" 2>/dev/null || true
  done
  if [ "$ok" = 1 ] && [ "${SOS_VALGRIND_KEEP:-0}" != 1 ]; then
    rm -rf "$work"
  else
    echo "run_valgrind: logs kept in $work"
  fi
}
trap cleanup EXIT

fail() {
  echo "run_valgrind: FAILED: $*" >&2
  for f in "$work"/a.log "$work"/b.log; do
    echo "---- end of $f" >&2
    tail -n 20 "$f" >&2 || true
  done
  exit 1
}

free_port() {
  "$python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# jget JSON EXPR: evaluate a Python expression on the parsed document j.
jget() {
  "$python" -c 'import json, sys; j = json.loads(sys.argv[1]); print(eval(sys.argv[2]))' "$1" "$2"
}

ctl() { # ctl ENDPOINT ARGS...: sosctl --json, with a timeout that allows for valgrind's pace
  local node=$1
  shift
  "$build/sosctl" --node "$node" --json --timeout 20000 "$@"
}

# wait_for WHAT SECONDS COMMAND...: until COMMAND succeeds.
wait_for() {
  local what=$1 secs=$2
  shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $deadline ] || fail "timed out after ${secs}s waiting for $what"
    sleep 0.5
  done
}

# Every connection is CURVE, keyed by the node id: nodes are named ID@ENDPOINT (the ids read
# from the data directories before the nodes start), to sosctl as to the genesis flag.
export SOSCTL_KNOWN_NODES=/dev/null
a_listen=tcp://127.0.0.1:$(free_port)
b_listen=tcp://127.0.0.1:$(free_port)
a=$("$build/sosnode" --data "$work/a" --print-id)@$a_listen
b=$("$build/sosnode" --data "$work/b" --print-id)@$b_listen
common=(--gossip-interval 200 --rate-limit off --map-size 64 --log-level info)

echo "== starting node A under valgrind memcheck, node B natively"
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite \
  --errors-for-leak-kinds=definite --error-exitcode=99 --num-callers=40 \
  --log-file="$work/valgrind.log" \
  "$build/sosnode" --data "$work/a" --listen "$a_listen" "${common[@]}" >"$work/a.log" 2>&1 &
pid_a=$!
wait_for "node A to answer status" 180 ctl "$a" status
"$build/sosnode" --data "$work/b" --listen "$b_listen" --genesis "$a" "${common[@]}" >"$work/b.log" 2>&1 &
pid_b=$!
wait_for "node B to answer status" 60 ctl "$b" status

two_workers() {
  [ "$(jget "$(ctl "$1" workers)" 'len(j["workers"])')" = 2 ]
}
wait_for "A and B to list each other" 180 two_workers "$a"
wait_for "B and A to list each other" 180 two_workers "$b"

echo "== a room owned by A, used through A and through B (forwarded)"
out=$(ctl "$a" room create --emojis "$emojis" --pin "$pin" --nickname ana --description "memcheck")
room=$(jget "$out" 'j["room_hash"]')
member_a=$(jget "$out" 'j["member_id"]')
has_room() { ctl "$1" rooms | grep -q "$2"; }
wait_for "B to learn A's room by gossip" 120 has_room "$b" "$room"
member_b=$(jget "$(ctl "$b" room join "$room" --nickname carl)" 'j["member_id"]')
ctl "$a" room send "$room" --member "$member_a" --emojis "$emojis" --pin "$pin" "hello from ana" \
  >/dev/null
ctl "$b" room send "$room" --member "$member_b" --emojis "$emojis" --pin "$pin" "hello from carl" \
  >/dev/null
n=$(jget "$(ctl "$a" room poll "$room" --member "$member_a" --emojis "$emojis" --pin "$pin")" \
  'len(j["messages"])')
[ "$n" = 2 ] || fail "A's room holds $n messages, not 2"

# a long poll waiting in A when the next message arrives
ctl "$a" room poll "$room" --member "$member_a" --emojis "$emojis" --pin "$pin" --since 2 \
  --wait 15000 >"$work/poll.json" &
pid_poll=$!
sleep 2
ctl "$b" room send "$room" --member "$member_b" --emojis "$emojis" --pin "$pin" "third" >/dev/null
wait "$pid_poll" || fail "the long poll failed"
pid_poll=""
n=$(jget "$(cat "$work/poll.json")" 'len(j["messages"])')
[ "$n" = 1 ] || fail "the long poll returned $n messages, not 1"
ctl "$a" room info "$room" >/dev/null
ctl "$b" room leave "$room" --member "$member_b" >/dev/null

echo "== a room owned by B, used through A (forwarded by the node under test)"
out=$(ctl "$b" room create --emojis "$emojis_b" --pin 1234 --nickname bo)
room_b=$(jget "$out" 'j["room_hash"]')
wait_for "A to learn B's room by gossip" 120 has_room "$a" "$room_b"
member=$(jget "$(ctl "$a" room join "$room_b" --nickname al)" 'j["member_id"]')
ctl "$a" room send "$room_b" --member "$member" --emojis "$emojis_b" --pin 1234 "via A" >/dev/null
n=$(jget "$(ctl "$a" room poll "$room_b" --member "$member" --emojis "$emojis_b" --pin 1234)" \
  'len(j["messages"])')
[ "$n" = 1 ] || fail "B's room, polled through A, holds $n messages, not 1"
ctl "$a" room leave "$room_b" --member "$member" >/dev/null
ctl "$a" status >/dev/null

echo "== stopping A with SIGTERM"
kill -TERM "$pid_a"
set +e
wait "$pid_a"
rc=$?
set -e
pid_a=""
grep -E "ERROR SUMMARY|definitely lost|indirectly lost|All heap blocks" "$work/valgrind.log" || true
[ "$rc" != 99 ] || fail "valgrind found errors or definite leaks (see $work/valgrind.log)"
[ "$rc" = 0 ] || fail "node A exited with $rc"
grep -q "ERROR SUMMARY: 0 errors" "$work/valgrind.log" || fail "valgrind reported errors"
kill -TERM "$pid_b"
wait "$pid_b" || true
pid_b=""
ok=1
echo "run_valgrind: no memory error and no definite leak in a node that gossiped and served rooms"
