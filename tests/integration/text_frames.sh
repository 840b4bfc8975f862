#!/usr/bin/env bash
# text_frames.sh: the seed's statements as text frames sent with the real nngcat to a
# real secretd, replies checked field by field with jq; the same statements through
# secretctl sql --json (the Execute rpc of libsecretd) give the same JSON; persistent
# secrets survive a restart and temporary ones do not.
set -u
. "$(dirname "$0")/lib.sh"

start_server || exit 1

# --- the seed flow -------------------------------------------------------------------
r=$(nng_text "CREATE SECRET (TYPE OPENAI, API_KEY 'sk-SEEDLEAK-1');")
check_json "create openai" "$r" '. == {"status":"OK","name":"__default_openai","storage":"memory"}'

r=$(nng_text "CREATE PERSISTENT SECRET (TYPE OLLAMA, API_URL '127.0.0.1:11434');")
check_json "create ollama" "$r" '. == {"status":"OK","name":"__default_ollama","storage":"sqlcipher"}'

r=$(nng_text "CREATE SECRET (TYPE AZURE_LLM, API_KEY 'k-SEEDLEAK-2', RESOURCE_NAME 'r', API_VERSION 'v');")
check_json "create azure" "$r" '. == {"status":"OK","name":"__default_azure","storage":"memory"}'

r=$(nng_text "FROM duckdb_secrets();")
check_json "list: three rows" "$r" '.status == "OK" and (.rows | length) == 3'
check_json "list: exact keys" "$r" '[.rows[] | keys] | all(. == ["name","persistent","provider","scope","secret_string","storage","type"])'
check_json "list: azure row" "$r" '.rows[0] == {"name":"__default_azure","type":"azure_llm","provider":"config","persistent":false,"storage":"memory","scope":["azure_llm://"],"secret_string":"name=__default_azure;type=azure_llm;provider=config;serializable=true;scope=azure_llm://;api_key=redacted;api_version=v;resource_name=r"}'
check_json "list: ollama row" "$r" '.rows[1] == {"name":"__default_ollama","type":"ollama","provider":"config","persistent":true,"storage":"sqlcipher","scope":["ollama://"],"secret_string":"name=__default_ollama;type=ollama;provider=config;serializable=true;scope=ollama://;api_url=redacted"}'
check_json "list: openai row" "$r" '.rows[2] == {"name":"__default_openai","type":"openai","provider":"config","persistent":false,"storage":"memory","scope":["openai://"],"secret_string":"name=__default_openai;type=openai;provider=config;serializable=true;scope=openai://;api_key=redacted"}'
check "list: no value in a redacted listing" bash -c '! grep -q SEEDLEAK <<<"$1"' _ "$r"

r=$(nng_text "SELECT * FROM duckdb_secrets(redact := false)")
check_json "unredacted list (same uid: admin)" "$r" '.rows[2].secret_string | endswith("api_key=sk-SEEDLEAK-1")'

r=$(nng_text "FROM which_secret('openai://gpt-4o', 'openai')")
check_json "which_secret" "$r" '. == {"status":"OK","rows":[{"name":"__default_openai","persistent":"TEMPORARY","storage":"memory"}]}'
r=$(nng_text "FROM which_secret('s3://x', 'openai')")
check_json "which_secret: no match" "$r" '. == {"status":"OK","rows":[]}'

r=$(nng_text "GET SECRET __default_ollama")
check_json "get" "$r" '. == {"status":"OK","secret":{"name":"__default_ollama","type":"ollama","provider":"config","persistent":true,"storage":"sqlcipher","scope":["ollama://"],"fields":{"api_url":"127.0.0.1:11434"}}}'

# --- errors ---------------------------------------------------------------------------
r=$(nng_text "CREATE SECRET (TYPE OPENAI, API_KEY 'x')")
check_json "duplicate create" "$r" '. == {"status":"ALREADY_EXISTS","reason":"ALREADY_EXISTS","message":"Temporary secret with name '"'"'__default_openai'"'"' already exists!"}'
r=$(nng_text "CREATE SECRET s (TYPE OPENAI API_KEY 'x')")
check_json "syntax error has offset" "$r" '.status == "INVALID_ARGUMENT" and .reason == "SYNTAX" and (.message | test("offset [0-9]+"))'
r=$(nng_text "CREATE SECRET (TYPE OPENAI, BASE_URL 'u')")
check_json "missing field" "$r" '.status == "INVALID_ARGUMENT" and .message == "Missing required field: '"'"'api_key'"'"'"'
r=$(nng_text "DROP SECRET nosuch")
check_json "drop missing" "$r" '. == {"status":"NOT_FOUND","reason":"NOT_FOUND","message":"Failed to remove non-existent secret with name '"'"'nosuch'"'"'"}'
# etcd is the persistent storage of a cluster node only: named here, a clear error.
r=$(nng_text "CREATE PERSISTENT SECRET s IN etcd (TYPE OPENAI, API_KEY 'x')")
check_json "IN etcd on one machine" "$r" '.status == "INVALID_ARGUMENT" and .reason == "INVALID_STORAGE" and (.message | test("unknown storage \"etcd\" \\(offset 30\\): this server keeps persistent secrets in sqlcipher; etcd is the storage of a cluster node"))'
r=$(nng_text "DROP SECRET s FROM ETCD")
check_json "FROM etcd on one machine" "$r" '.status == "INVALID_ARGUMENT" and .reason == "INVALID_STORAGE"'
r=$(nng_text "GET SECRET s FROM etcd")
check_json "GET FROM etcd on one machine" "$r" '.status == "INVALID_ARGUMENT" and .reason == "INVALID_STORAGE"'
r=$(printf 'FROM duckdb_secrets()\xff' | "$NNGCAT" --req --dial "$T_URL" --file - --raw --recv-timeout 5)
check_json "invalid UTF-8" "$r" '.status == "INVALID_ARGUMENT" and .reason == "BAD_TEXT"'
r=$(head -c 70000 /dev/zero | tr '\0' 'x' | "$NNGCAT" --req --dial "$T_URL" --file - --raw --recv-timeout 5)
check_json "oversized text" "$r" '.status == "RESOURCE_EXHAUSTED" and .reason == "FRAME_TOO_LARGE"'
r=$(printf 'AUTH nosuchtoken\nFROM duckdb_secrets()' | "$NNGCAT" --req --dial "$T_URL" --file - --raw --recv-timeout 5)
check_json "wrong token" "$r" '.status == "UNAUTHENTICATED"'

# --- both storages, drop forms ----------------------------------------------------------
nng_text "CREATE PERSISTENT SECRET __default_openai (TYPE OPENAI, API_KEY 'p')" >/dev/null
r=$(nng_text "DROP SECRET __default_openai")
check_json "ambiguous drop" "$r" '.status == "FAILED_PRECONDITION" and .reason == "AMBIGUOUS"'
r=$(nng_text "DROP TEMPORARY SECRET __default_openai;")
check_json "drop temporary" "$r" '. == {"status":"OK","name":"__default_openai","storage":"memory"}'
r=$(nng_text "DROP PERSISTENT SECRET __default_openai;")
check_json "drop persistent" "$r" '. == {"status":"OK","name":"__default_openai","storage":"sqlcipher"}'
r=$(nng_text "DROP SECRET IF EXISTS __default_openai")
check_json "drop if exists" "$r" '. == {"status":"OK","name":"__default_openai","storage":null}'

# --- the same statement three ways ------------------------------------------------------
nng_text "CREATE SECRET (TYPE OPENAI, API_KEY 'three-ways')" >/dev/null
for stmt in "FROM duckdb_secrets()" "FROM which_secret('openai://m', 'openai')" \
  "GET SECRET __default_azure" "DROP SECRET nosuch" "CREATE SECRET (TYPE nope)"; do
  a=$(nng_text "$stmt" | jq -cS .)
  b=$("$SECRETCTL_BIN" --addr "$T_URL" --json sql "$stmt" 2>/dev/null | jq -cS .)
  check "same JSON from nngcat and secretctl sql: $stmt" [ "$a" = "$b" ]
done

# --- restart ------------------------------------------------------------------------------
stop_server
start_server || exit 1
r=$(nng_text "FROM duckdb_secrets()")
check_json "after restart only the persistent secret" "$r" '[.rows[].name] == ["__default_ollama"]'
r=$(nng_text "DROP PERSISTENT SECRET __default_ollama")
check_json "drop persistent after restart" "$r" '.status == "OK"'
stop_server
start_server || exit 1
r=$(nng_text "FROM duckdb_secrets()")
check_json "dropped persistent stays dropped" "$r" '.rows == []'
stop_server

check "no value in the server log" bash -c '! grep -q SEEDLEAK "$1"' _ "$T_LOG"
for f in "$T_DIR"/data/*; do
  check "no value in $(basename "$f")" bash -c '! grep -q SEEDLEAK "$1"' _ "$f"
done
finish
