#!/usr/bin/env bash
# tools/loadgen/callgrind.sh: instructions per request of secretd and of the echo server,
# counted by valgrind's callgrind (stable on a noisy machine, unlike wall time).
#
#   tools/loadgen/callgrind.sh [OP [TRANSPORT [CONCURRENCY]]]    default: get ipc 8
#
# Runs tools/bench twice with both servers under callgrind, with N1 and N2 iterations of OP
# per server; set-up and shutdown are the same in both runs, so (Ir(N2) - Ir(N1)) / (N2 - N1)
# is the cost of one iteration alone. Prints that for each server, then secretd's top
# functions by exclusive cost per request. Profiles are kept in $OUT (default /tmp/secretd-cg).
set -euo pipefail
cd "$(dirname "$0")/../.."
op=${1:-get}
transport=${2:-ipc}
conc=${3:-8}
n1=${N1:-2000}
n2=${N2:-12000}
out=${OUT:-/tmp/secretd-cg}
command -v valgrind >/dev/null || { echo "callgrind.sh: valgrind is not installed" >&2; exit 1; }
rm -rf "$out"
mkdir -p "$out"
for n in "$n1" "$n2"; do
	tools/bench --ops "$op" --transport "$transport" --concurrency "$conc" --count "$n" \
		--timeout 120000 \
		--wrap "valgrind --tool=callgrind --callgrind-out-file=$out/$n.%p.out" >/dev/null
done

# Total instructions of the profile of one server ("secretd" or "echo") in run n.
total() {
	local f
	f=$(grep -l "^cmd: .*$1" "$out/$2".*.out | head -1)
	grep -m1 '^totals:' "$f" | awk '{print $2}'
}
for server in secretd-bench-echo server/secretd; do
	t1=$(total "$server" "$n1")
	t2=$(total "$server" "$n2")
	echo "$server: $(( (t2 - t1) / (n2 - n1) )) instructions per $op iteration" \
		"($t1 at $n1, $t2 at $n2)"
done
f=$(grep -l '^cmd: .*server/secretd' "$out/$n2".*.out | head -1)
echo "secretd's top functions at $n2 iterations (exclusive, whole run incl. set-up): $f"
callgrind_annotate --inclusive=no "$f" 2>/dev/null | sed -n '/^Ir/,$p' | head -40
