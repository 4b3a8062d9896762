#!/usr/bin/env bash
# deps.sh: install what sosnode needs to build and test, from Debian's packages (and the web
# page's crypto library from npm, pinned in web/package-lock.json).
# Usage: tools/deps.sh [--test]   (--test adds what the test suite and fuzzers need)
set -euo pipefail
pkgs=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libsodium-dev libmsgpack-dev
      liblmdb-dev libjansson-dev libmicrohttpd-dev nodejs)
if [ "${1:-}" = "--test" ]; then
  pkgs+=(python3 python3-zmq python3-msgpack python3-nacl clang libclang-rt-14-dev valgrind tcpdump
         iproute2 iptables procps lmdb-utils chromium
         redis-server libhiredis-dev) # sosbench messages --compare redis
  pkgs+=(serf stress-ng) # for sosbench converge --compare serf and --stress
fi
sudo=""
[ "$(id -u)" = 0 ] || sudo=sudo
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq "${pkgs[@]}" >/dev/null
# npm: Debian's package, unless the installed nodejs brings its own (NodeSource's does, and
# conflicts with Debian's npm).
command -v npm >/dev/null || $sudo apt-get install -y -qq npm >/dev/null
# The page's libsodium (the build embeds it) and, for the tests, the browser driver; npm
# keeps its cache of both.
(cd "$(dirname "$0")/../web" && npm ci --no-audit --no-fund --loglevel=error)
if [ "${1:-}" = "--test" ]; then
  (cd "$(dirname "$0")/../tests/http/browser" && npm ci --no-audit --no-fund --loglevel=error)
fi
echo "deps.sh: installed ${#pkgs[@]} packages"
