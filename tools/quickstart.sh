#!/usr/bin/env bash
# quickstart.sh: install the dependencies, build sosnode, start a local 3-node network on
# 127.0.0.1:7701-7703 (HTTP and the page on 8701-8703) and show it with sosctl. Stop it
# with: tools/quickstart.sh stop
set -euo pipefail
cd "$(dirname "$0")/.."
run=${SOS_RUN_DIR:-$PWD/run}
if [ "${1:-}" = "stop" ]; then
  for pid in "$run"/*.pid; do [ -e "$pid" ] && kill "$(cat "$pid")" 2>/dev/null || true; done
  rm -f "$run"/*.pid
  echo "stopped"
  exit 0
fi
tools/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
mkdir -p "$run"
# Every connection is CURVE, keyed by the node id: the genesis is given with its id, which
# --print-id reads (or makes) before the node first starts.
declare -A id
for i in 1 2 3; do id[$i]=$(build/sosnode --data "$run/node$i" --print-id); done
genesis=${id[1]}@tcp://127.0.0.1:7701
for i in 1 2 3; do
  args=(--data "$run/node$i" --listen tcp://127.0.0.1:770$i --gossip-interval 1000
        --http 127.0.0.1:870$i)
  [ "$i" = 1 ] || args+=(--genesis "$genesis")
  if [ -e "$run/node$i.pid" ] && kill -0 "$(cat "$run/node$i.pid")" 2>/dev/null; then
    continue
  fi
  nohup build/sosnode "${args[@]}" >"$run/node$i.log" 2>&1 &
  echo $! >"$run/node$i.pid"
done
echo "waiting for the 3 nodes to find each other..."
for _ in $(seq 1 60); do
  n=$(build/sosctl --node "${id[3]}@tcp://127.0.0.1:7703" --json workers 2>/dev/null |
      grep -o node_id | wc -l || true)
  [ "$n" -ge 3 ] && break
  sleep 0.5
done
# sosctl remembers each node's id once it has answered (known_nodes): after this, a bare
# --node tcp://127.0.0.1:770N is enough.
for i in 1 2; do build/sosctl --node "${id[$i]}@tcp://127.0.0.1:770$i" status >/dev/null || true; done
build/sosctl --node "${id[3]}@tcp://127.0.0.1:7703" workers
echo
echo "The page (chat, and each node's state):"
for i in 1 2 3; do echo "  http://127.0.0.1:870$i/"; done
echo "Point the seed's web app at one of them, or its desktop client with SOS_RELAY_HOST=127.0.0.1:8701."
echo
echo "Node ids: 1 ${id[1]}"
echo "          2 ${id[2]}"
echo "          3 ${id[3]}"
echo "Logs and data are in $run. Try:"
echo "  build/sosctl --node tcp://127.0.0.1:7701 room create --emojis '🆘🏠' --pin 1234"
echo "Stop the network with: tools/quickstart.sh stop"
