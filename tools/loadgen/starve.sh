#!/bin/bash
# starve.sh: does the listener guard stop the listener it checks on a starved machine?
#
# Starts one secretd on ipc, makes nng's threads SCHED_IDLE, and ROUNDS times runs four
# busy loops on the machine's cores for 4 s (nng's threads get next to no CPU; the guard's
# thread keeps normal priority and goes on checking), then times a fresh client's first
# call. At the end: how many calls took over 1 s, and how many times the guard replaced a
# listener (the notify socket's only peer is the guard itself). tests/README.md §2.
#
# usage: tools/loadgen/starve.sh [BUILD_DIR] [ROUNDS]    (default: build, 30)
set -u
B=${1:-build}
N=${2:-30}
for f in "$B/server/secretd" "$B/tools/secretctl"; do
  [ -x "$f" ] || { echo "starve.sh: no $f (build first: meson setup $B && ninja -C $B)" >&2; exit 2; }
done
command -v chrt >/dev/null || { echo "starve.sh: needs chrt (util-linux)" >&2; exit 2; }
D=$(mktemp -d /tmp/starve.XXXXXX)
chmod 700 "$D"
"$B/server/secretd" --listen "ipc://$D/s.sock" --data-dir "$D/data" >"$D/log" 2>&1 &
P=$!
trap 'kill -9 $P 2>/dev/null; rm -rf "$D"' EXIT
for _ in $(seq 100); do [ -S "$D/s.sock" ] && break; sleep 0.1; done
sleep 0.5
for t in /proc/$P/task/*; do
  case "$(cat "$t/comm")" in nng:*) chrt -i -p 0 "$(basename "$t")" ;; esac
done
slow=0
failed=0
for r in $(seq "$N"); do
  hogs=""
  for _ in 1 2 3 4; do (while :; do :; done) & hogs="$hogs $!"; done
  sleep 4
  kill $hogs
  wait $hogs 2>/dev/null
  sleep 0.3
  t0=$(date +%s%N)
  "$B/tools/secretctl" --addr "ipc://$D/s.sock" --timeout 30000 list >/dev/null 2>&1 || failed=$((failed + 1))
  ms=$((($(date +%s%N) - t0) / 1000000))
  [ "$ms" -gt 1000 ] && slow=$((slow + 1))
  echo "round $r: first call of a fresh client in $ms ms"
done
kill -TERM $P
wait $P
echo "calls over 1 s: $slow of $N; failed: $failed"
echo "listener replacements: service $(grep 'stopped accepting' "$D/log" | grep -vc notify.sock)," \
  "notify $(grep 'stopped accepting' "$D/log" | grep -c notify.sock)"
