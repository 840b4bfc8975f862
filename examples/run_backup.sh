#!/usr/bin/env bash
# run_backup.sh: examples/backup.sh (the README's backup recipe) copies the database of a
# running secretd while a writer keeps creating persistent secrets; a second secretd
# started on the copy with the same key reads every secret the copy holds, and at least
# every one acknowledged before the backup began.
set -u
. "$(dirname "$0")/../tests/integration/lib.sh"
backup=$(dirname "$0")/backup.sh

start_server || exit 1
ctl() { "$SECRETCTL_BIN" "$@"; }
for i in $(seq 1 20); do
  ctl --addr "$T_URL" create --type ollama --persistent --name "before_$i" api_url="http://h$i" >/dev/null
done
# A writer running during the backup.
( for i in $(seq 1 200); do
    ctl --addr "$T_URL" create --type ollama --persistent --name "during_$i" api_url="http://d$i" >/dev/null || exit 1
  done ) &
writer=$!
sleep 0.2
"$backup" "$T_DIR/data" "$T_DIR/copy.db" >"$T_DIR/backup.out" 2>&1
check "backup.sh: exit 0 while secretd runs and writes" [ $? -eq 0 ] || cat "$T_DIR/backup.out"
wait "$writer"
check "the writer was never refused" [ $? -eq 0 ]
check "the copy is 0600" [ "$(stat -c %a "$T_DIR/copy.db")" = 600 ]
check "the copy is encrypted (no SQLite header)" bash -c '! head -c 16 "$1" | grep -q "SQLite format"' _ "$T_DIR/copy.db"
stop_server

mkdir -m 700 "$T_DIR/restore"
cp "$T_DIR/copy.db" "$T_DIR/restore/secrets.db"
cp "$T_DIR/data/secretd.key" "$T_DIR/restore/secretd.key"
chmod 600 "$T_DIR/restore/"*
RURL=ipc://$T_DIR/restore.sock
"$SECRETD_BIN" --listen "$RURL" --data-dir "$T_DIR/restore" >>"$T_LOG" 2>&1 &
T_PID=$!
for _ in $(seq 1 100); do
  ctl --addr "$RURL" list >/dev/null 2>&1 && break
  sleep 0.1
done
r=$(ctl --addr "$RURL" --json list)
check_json "restored: every secret written before the backup" "$r" \
  '[.rows[].name | select(startswith("before_"))] | length == 20'
n=$(printf '%s' "$r" | jq '[.rows[].name | select(startswith("during_"))] | length')
echo "restored: $n of 200 concurrent writes were in the snapshot"
r=$(ctl --addr "$RURL" --json get before_7)
check_json "restored: values intact" "$r" '.secret.fields.api_url == "http://h7"'
stop_server
finish
