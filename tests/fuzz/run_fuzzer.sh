#!/usr/bin/env bash
# run_fuzzer.sh: one bounded libFuzzer campaign of one secretd fuzz target.
#
#   run_fuzzer.sh [--merge] FUZZER SECONDS CORPUS_DIR [DICT]
#
# Runs FUZZER for SECONDS from CORPUS_DIR, writing new inputs to a scratch directory so
# that a test never modifies the repository; with --merge the new inputs that add coverage
# are merged into CORPUS_DIR afterwards (-merge=1), as tools/fuzz does. Crash, leak and
# timeout reproducers go to $FUZZ_ARTIFACTS (default ./fuzz-artifacts). Prints the
# libFuzzer log's tail and one summary line:
#   fuzz NAME: execs=N cov=N of N edges ft=N corpus=N new=N seconds=N
# Exit status: libFuzzer's (non-zero when it found something), or 2 on a usage error.
set -uo pipefail

merge=0
if [ "${1:-}" = --merge ]; then merge=1; shift; fi
if [ $# -lt 3 ]; then
  echo "usage: $0 [--merge] FUZZER SECONDS CORPUS_DIR [DICT]" >&2
  exit 2
fi
fuzzer=$1 secs=$2 corpus=$3 dict=${4:-}
name=$(basename "$fuzzer")
artifacts=${FUZZ_ARTIFACTS:-$PWD/fuzz-artifacts}
scratch=$(mktemp -d "${TMPDIR:-/tmp}/secretd-$name.XXXXXX") || exit 2
trap 'rm -rf "$scratch"' EXIT
mkdir -p "$scratch/new" "$artifacts" || exit 2

args=(-max_total_time="$secs" -print_final_stats=1 -rss_limit_mb=2048 -timeout=10
  -max_len=8192 -artifact_prefix="$artifacts/$name-")
[ -n "$dict" ] && args+=(-dict="$dict")
"$fuzzer" "${args[@]}" "$scratch/new" "$corpus" >"$scratch/log" 2>&1
rc=$?
sed '/Recommended dictionary/,/End of recommended dictionary/d' "$scratch/log" |
  grep -v -E '^#[0-9]+\s+(NEW|REDUCE|pulse)' | tail -n 30

# The last status line ("#N DONE cov: X ft: Y corp: Z/..." or the last pulse) and stats.
last=$(grep -E '^#[0-9]+\s' "$scratch/log" | tail -n 1)
execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$scratch/log" | tail -n 1)
cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
corp=$(sed -n 's/.* corp: \([0-9]*\).*/\1/p' <<<"$last")
edges=$(sed -n 's/^INFO: Loaded [0-9]* modules *(\([0-9]*\) inline 8-bit counters).*/\1/p' "$scratch/log" |
  head -n 1)
new=$(find "$scratch/new" -type f | wc -l)
echo "fuzz $name: execs=${execs:-?} cov=${cov:-?} of ${edges:-?} edges ft=${ft:-?}" \
  "corpus=${corp:-?} new=$new seconds=$secs"

if [ "$merge" = 1 ] && [ "$rc" = 0 ] && [ "$new" -gt 0 ]; then
  before=$(find "$corpus" -maxdepth 1 -type f | wc -l)
  "$fuzzer" -merge=1 -max_len=8192 "$corpus" "$scratch/new" >"$scratch/merge.log" 2>&1 || {
    tail -n 20 "$scratch/merge.log"; exit 1; }
  after=$(find "$corpus" -maxdepth 1 -type f | wc -l)
  echo "fuzz $name: merged $((after - before)) new corpus entries into $corpus"
fi
exit "$rc"
