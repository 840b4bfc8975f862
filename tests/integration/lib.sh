# lib.sh: shared helpers for the shell integration tests (sourced, not run).
# Starts real secretd processes in a private temp dir; every check prints what it
# compared on failure and counts; finish() prints the totals and sets the exit status.
# Never echo a secret value: checks on values compare silently.

: "${SECRETD_BIN:?SECRETD_BIN must point at the secretd binary}"
: "${SECRETCTL_BIN:=secretctl}"
NNGCAT=${NNGCAT:-nngcat}

T_DIR=$(mktemp -d /tmp/secretd-sh-XXXXXX)
chmod 700 "$T_DIR"
T_URL="ipc://$T_DIR/secretd.sock"
T_LOG="$T_DIR/server.log"
T_PID=
checks=0
failures=0

cleanup() {
  [ -n "$T_PID" ] && kill -KILL "$T_PID" 2>/dev/null
  [ -n "${SECRETD_KEEP_TEST_DIRS:-}" ] || rm -rf "$T_DIR"
}
trap cleanup EXIT

# start_server [extra flags...]: start secretd and wait until it answers a text frame.
start_server() {
  "$SECRETD_BIN" --listen "$T_URL" --data-dir "$T_DIR/data" --log-level debug "$@" \
    >>"$T_LOG" 2>&1 &
  T_PID=$!
  for _ in $(seq 1 100); do
    if "$NNGCAT" --req --dial "$T_URL" --data "FROM duckdb_secrets()" --raw \
      --recv-timeout 1 >/dev/null 2>&1; then
      return 0
    fi
    kill -0 "$T_PID" 2>/dev/null || { echo "secretd exited; log:"; tail -20 "$T_LOG"; return 1; }
    sleep 0.1
  done
  echo "secretd did not answer"; return 1
}

# stop_server: SIGTERM, wait, and check a clean exit.
stop_server() {
  kill -TERM "$T_PID"
  wait "$T_PID"; local rc=$?
  T_PID=
  check "secretd exits 0 on SIGTERM" [ "$rc" -eq 0 ]
}

# nng_text STATEMENT: send one text frame with nngcat and print the raw reply.
nng_text() {
  "$NNGCAT" --req --dial "$T_URL" --data "$1" --raw --recv-timeout 5
}

# check DESCRIPTION COMMAND...: run COMMAND, count a failure when it fails.
check() {
  local what=$1; shift
  checks=$((checks + 1))
  if ! "$@"; then
    failures=$((failures + 1))
    echo "FAIL: $what" >&2
  fi
}

# check_json DESCRIPTION JSON JQ-FILTER: the filter must print true for JSON.
check_json() {
  local what=$1 json=$2 filter=$3
  checks=$((checks + 1))
  if [ "$(printf '%s' "$json" | jq -e "$filter" 2>/dev/null)" != "true" ]; then
    failures=$((failures + 1))
    echo "FAIL: $what: jq '$filter' on reply with status $(printf '%s' "$json" | jq -r .status 2>/dev/null)" >&2
  fi
}

finish() {
  echo "$checks checks, $failures failed"
  [ "$failures" -eq 0 ]
}
