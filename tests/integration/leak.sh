#!/usr/bin/env bash
# leak.sh: no secret value anywhere it should not be. Creates secrets with distinctive
# values, runs every operation and error path through secretctl, secretctl sql and raw
# text frames, then searches every byte the run produced -- the server log, the audit file,
# the database, its WAL and key file, secretctl's stdout/stderr for every command that is
# not meant to show values, and every error message -- for those values: zero hits.
set -u
. "$(dirname "$0")/lib.sh"

OUT="$T_DIR/out"        # everything that must not hold a value
SHOWN="$T_DIR/shown"    # output of commands whose job is to show values (get, ...)
: >"$OUT"; : >"$SHOWN"
AUDIT="$T_DIR/audit.log"
start_server --audit-file "$AUDIT" || exit 1
ctl() { "$SECRETCTL_BIN" --addr "$T_URL" "$@"; }
quiet() { ctl "$@" >>"$OUT" 2>&1; }       # output must be value-free
shown() { ctl "$@" >>"$SHOWN" 2>>"$OUT"; } # stdout may show values, stderr may not

V1=LKV1-openai-9d8e7f
V2=LKV2-ollama-3c4b5a
V3=LKV3-azure-1a2b3c
V4=LKV4-persist-77aa88

printf %s "$V1" | quiet create --type openai api_key=-
printf %s "$V2" | quiet create --type ollama --persistent api_url=-
printf %s "$V3" | quiet create --type azure_llm api_key=- resource_name=r api_version=v
printf %s "$V4" | quiet create --name p4 --type openai --persistent api_key=-
# errors whose requests carry values
printf %s "$V1" | quiet create --type openai api_key=-                 # ALREADY_EXISTS
printf %s "$V1" | quiet create --type openai api_key=- model=x         # unknown field
printf %s "$V1" | quiet create --type nosuch api_key=-                 # unknown type
printf %s "$V1" | quiet create --type openai --provider env api_key=-  # provider
quiet sql "CREATE SECRET (TYPE openai, API_KEY '$V1')"
quiet sql "CREATE SECRET x (TYPE openai, API_KEY '$V1' oops)"
quiet sql "CREATE SECRET x (TYPE openai, API_KEY '$V1', API_KEY '$V2')"
quiet sql "CREATE SECRET x (TYPE openai, API_KEY '${V1}unterminated"
quiet sql "CREATE SECRET x (TYPE openai, API_KEY \"$V1\")"
quiet sql "CREATE SECRET x (TYPE ollama, API_URL '$V2', EXTRA '$V3')"
quiet --json sql "CREATE SECRET x (TYPE openai, API_KEY '$V1' oops)"
# reads that redact
quiet list
quiet --json list
quiet list --type openai
quiet sql "FROM duckdb_secrets()"
quiet --json sql "FROM duckdb_secrets(redact := true)"
quiet sql "FROM which_secret('openai://x', 'openai')"
quiet drop nosuch
quiet sql "DROP SECRET nosuch"
# reads whose job is to show values
shown get __default_openai
shown --json get p4
shown resolve openai://gpt --type openai
shown sql "GET SECRET __default_azure"
shown sql "FROM duckdb_secrets(redact := false)"
# text frames: errors and redacted reads
for stmt in "CREATE SECRET (TYPE openai, API_KEY '$V1')" \
  "CREATE SECRET y (TYPE openai, API_KEY '$V1' , )" "FROM duckdb_secrets()" \
  "GET SECRET nosuch"; do
  nng_text "$stmt" >>"$OUT" 2>&1
done
# drops and a restart
quiet drop __default_openai
quiet drop p4 --persistent
stop_server
start_server --audit-file "$AUDIT" || exit 1
quiet list
stop_server

check "the values were really shown where asked" grep -q "$V1" "$SHOWN"
for v in "$V1" "$V2" "$V3" "$V4"; do
  for f in "$OUT" "$T_LOG" "$AUDIT" "$T_DIR"/data/*; do
    [ -e "$f" ] || continue
    check "no ${v%%-*} value in $(basename "$f")" bash -c '! grep -aqF -- "$1" "$2"' _ "$v" "$f"
  done
done
check "audit trail written" grep -q '"event":"result"' "$AUDIT"
finish
