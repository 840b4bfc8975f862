#!/usr/bin/env bash
# live_test.sh: the live protocol fuzzer against a real secretd (suite 'integration').
#
# Starts $SECRETD_BIN in a private temp dir listening on ipc:// and on tcp://127.0.0.1 at a
# free port (tcp needs a token: a tokens file with one admin token, and --insecure), runs
# $LIVEFUZZ_BIN with $LIVEFUZZ_FRAMES frames (default 20000) over both, then stops the server
# with SIGTERM and requires exit status 0. Extra arguments go to livefuzz (e.g. --seed N).
# Under AddressSanitizer the server's quarantine is capped so that its RSS measures the
# server, not the sanitizer.
set -uo pipefail

: "${SECRETD_BIN:?set SECRETD_BIN to the secretd binary}"
: "${LIVEFUZZ_BIN:?set LIVEFUZZ_BIN to the livefuzz binary}"
frames=${LIVEFUZZ_FRAMES:-20000}

dir=$(mktemp -d "${TMPDIR:-/tmp}/secretd-livefuzz.XXXXXX") || exit 1
pid=
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid"; fi
  rm -rf "$dir"
}
trap cleanup EXIT
chmod 700 "$dir" && mkdir -m 700 "$dir/data" || exit 1

# A free loopback port: bind to port 0 and read what the kernel chose.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') || exit 1
token=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
hash=$(printf '%s' "$token" | sha256sum | cut -d' ' -f1)
(umask 077 && printf 'admin livefuzz %s\n' "$hash" >"$dir/tokens") || exit 1

ipc="ipc://$dir/secretd.sock"
tcp="tcp://127.0.0.1:$port"
export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=16"
"$SECRETD_BIN" --listen "$ipc" --listen "$tcp" --insecure --tokens-file "$dir/tokens" \
  --data-dir "$dir/data" --log-level warn 2>"$dir/server.log" &
pid=$!

# Wait until both listeners are up (the ipc socket file appears after the tcp bind).
for _ in $(seq 100); do
  [ -S "$dir/secretd.sock" ] && break
  kill -0 "$pid" 2>/dev/null || { echo "secretd exited at start:"; cat "$dir/server.log"; exit 1; }
  sleep 0.1
done
[ -S "$dir/secretd.sock" ] || { echo "secretd did not start"; cat "$dir/server.log"; exit 1; }

# The token is passed in argv here: a throwaway one made for this run only.
"$LIVEFUZZ_BIN" --url "$ipc" --url "$tcp" --token "$token" --frames "$frames" --pid "$pid" \
  --time-limit 240 "$@"
rc=$?

kill -TERM "$pid"
wait "$pid"
src=$?
pid=
if [ "$src" != 0 ]; then
  echo "secretd exited with status $src after SIGTERM; its log:"
  tail -n 50 "$dir/server.log"
fi
if [ "$rc" != 0 ] || [ "$src" != 0 ]; then
  grep -E 'ERROR|AddressSanitizer|runtime error' "$dir/server.log" | head -20
  exit 1
fi
echo "secretd exited 0 after SIGTERM"
exit 0
