#!/usr/bin/env bash
# run_worker.sh: the C worker example against a real secretd: it resolves its provider's
# secret (temporary, then a more specific persistent one), reports it without printing the
# key, and fails cleanly when nothing applies or the server is not there.
set -u
. "$(dirname "$0")/../tests/integration/lib.sh"
: "${WORKER_BIN:?WORKER_BIN must point at the worker example}"

start_server || exit 1
printf '%s' 'sk-WORKERLEAK-1' | "$SECRETCTL_BIN" --addr "$T_URL" create --type openai api_key=- >/dev/null
printf '%s' 'sk-WORKERLEAK-22' | "$SECRETCTL_BIN" --addr "$T_URL" create --type openai \
  --persistent --name team_b --scope openai://team-b/ api_key=- base_url=https://proxy.example/v1 >/dev/null

out=$(SECRETD_ADDR=$T_URL "$WORKER_BIN" openai://gpt-4o)
check "worker: exit 0" [ $? -eq 0 ]
check "worker: default secret ($out)" \
  [ "$out" = "worker: openai://gpt-4o uses secret __default_openai (memory), an api_key of 15 bytes, base_url (default)" ]
out=$(SECRETD_ADDR=$T_URL "$WORKER_BIN" openai://team-b/gpt-4o)
check "worker: the longest scope wins ($out)" \
  [ "$out" = "worker: openai://team-b/gpt-4o uses secret team_b (sqlcipher), an api_key of 16 bytes, base_url https://proxy.example/v1" ]
err=$(SECRETD_ADDR=$T_URL "$WORKER_BIN" s3://bucket 2>&1 >/dev/null)
check "worker: nothing applies: exit 1" [ $? -eq 1 ]
check "worker: ... and says so" [ "$err" = "worker: no openai secret applies to s3://bucket" ]
SECRETD_ADDR=ipc://$T_DIR/nosuch.sock "$WORKER_BIN" >/dev/null 2>&1
check "worker: no server: exit 1" [ $? -eq 1 ]
check "worker: never prints a key" bash -c '! SECRETD_ADDR=$1 "$2" openai://team-b/x 2>&1 | grep -q WORKERLEAK' \
  _ "$T_URL" "$WORKER_BIN"
stop_server
finish
