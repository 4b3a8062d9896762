#!/usr/bin/env bash
# deps.sh: install what sosnode needs to build and test, from Debian's packages.
# Usage: tools/deps.sh [--test]   (--test adds what the test suite and fuzzers need)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libsodium-dev libmsgpack-dev
      liblmdb-dev libjansson-dev)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(python3 python3-zmq python3-msgpack python3-nacl clang libclang-rt-14-dev valgrind
         iproute2 iptables procps lmdb-utils
         redis-server libhiredis-dev) # sosbench messages --compare redis
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
echo "deps.sh: installed ${#pkgs[@]} packages"
