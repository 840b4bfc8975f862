#!/usr/bin/env bash
# secretctl_export.sh: `secretctl export --duckdb` against a real secretd, byte for byte,
# without DuckDB (so it runs in every build, the sanitizer ones included; tests/duckdb/
# executes the output in real DuckDB). Quotes doubled, backslashes and newlines kept,
# keywords and odd names double-quoted, default names unnamed (__default_azure too), scope
# lists, a name in both storages once (from memory), --type, NAME..., --load, and errors
# that print nothing on stdout and no value on stderr.
set -u
. "$(dirname "$0")/../../tests/integration/lib.sh"

start_server || exit 1
ctl() { "$SECRETCTL_BIN" --addr "$T_URL" "$@"; }
E=$T_DIR/expected
mkdir -m 700 "$E"
printf '%s' "sk-'q'\\b\\\\s" >"$E/k1"
printf 'line1\nline2' >"$E/k2"

ctl create --type openai api_key=@"$E/k1" base_url="https://x/;--" >/dev/null
ctl create --type azure_llm --persistent api_key=@"$E/k2" resource_name=r api_version=v >/dev/null
ctl create --type ollama --name select --scope ollama://a/ --scope "ollama://b'/" api_url=u >/dev/null
ctl create --type ollama --name "We\"ird" api_url=u2 >/dev/null
ctl create --type openai --name 9lives api_key=@"$E/k1" >/dev/null
ctl create --type openai --name twin api_key=mem >/dev/null
ctl create --type openai --name twin --persistent api_key=db >/dev/null
ctl create --type openai --name __default_ollama api_key=k3 >/dev/null

cat >"$E/all" <<'SQL'
CREATE OR REPLACE TEMPORARY SECRET "9lives" (TYPE openai, API_KEY 'sk-''q''\b\\s', SCOPE 'openai://');
CREATE OR REPLACE TEMPORARY SECRET (TYPE azure_llm, API_KEY 'line1
line2', API_VERSION 'v', RESOURCE_NAME 'r', SCOPE 'azure_llm://');
CREATE OR REPLACE TEMPORARY SECRET __default_ollama (TYPE openai, API_KEY 'k3', SCOPE 'openai://');
CREATE OR REPLACE TEMPORARY SECRET (TYPE openai, API_KEY 'sk-''q''\b\\s', BASE_URL 'https://x/;--', SCOPE 'openai://');
CREATE OR REPLACE TEMPORARY SECRET "select" (TYPE ollama, API_URL 'u', SCOPE ('ollama://a/', 'ollama://b''/'));
CREATE OR REPLACE TEMPORARY SECRET twin (TYPE openai, API_KEY 'mem', SCOPE 'openai://');
CREATE OR REPLACE TEMPORARY SECRET "we""ird" (TYPE ollama, API_URL 'u2', SCOPE 'ollama://');
SQL
ctl export --duckdb >"$T_DIR/out" 2>"$T_DIR/err"
check "export exits 0" [ $? -eq 0 ]
check "export --duckdb prints the expected statements" cmp -s "$E/all" "$T_DIR/out"
check "nothing on stderr" [ ! -s "$T_DIR/err" ]

ctl export --duckdb --type azure_llm --load flock >"$T_DIR/out"
printf 'LOAD flock;\n' >"$E/az"
sed -n 2,3p "$E/all" >>"$E/az"
check "--type and --load flock" cmp -s "$E/az" "$T_DIR/out"

ctl export --duckdb --load flockmtl SELECT twin >"$T_DIR/out"
{ printf 'LOAD flockmtl;\n'; sed -n 6,7p "$E/all"; } >"$E/named"
check "NAME... (any case) and --load flockmtl" cmp -s "$E/named" "$T_DIR/out"

ctl export --duckdb select nobody >"$T_DIR/out" 2>"$T_DIR/err"
check "unknown NAME exits 1" [ $? -eq 1 ]
check "unknown NAME prints nothing on stdout" [ ! -s "$T_DIR/out" ]
check "unknown NAME is named" grep -q "no secret named 'nobody'" "$T_DIR/err"
check "no value on stderr" bash -c "! grep -qF -- 'sk-' '$T_DIR/err'"

ctl export >/dev/null 2>&1
check "no --duckdb: usage error (2)" [ $? -eq 2 ]
ctl export --duckdb --load duckdb_extra >/dev/null 2>&1
check "unknown --load: usage error (2)" [ $? -eq 2 ]

# The DuckDB semantics of DROP ... FROM: with FROM, the named storage is the only
# candidate and PERSISTENT is ignored; TEMPORARY with FROM stays an error.
ctl create --type openai --name d1 api_key=x >/dev/null
ctl create --type openai --name d1 --persistent api_key=y >/dev/null
ctl sql "DROP PERSISTENT SECRET d1 FROM memory" >/dev/null
check "DROP PERSISTENT ... FROM memory drops the temporary secret" \
  bash -c "! '$SECRETCTL_BIN' --addr '$T_URL' get d1 --storage memory >/dev/null 2>&1"
check "... and leaves the persistent one" ctl get d1 --storage sqlcipher >/dev/null
ctl sql "DROP TEMPORARY SECRET d1 FROM sqlcipher" >/dev/null 2>"$T_DIR/err"
check "DROP TEMPORARY ... FROM is an error" grep -q "takes no FROM" "$T_DIR/err"

# A reader token is enough.
"$SECRETCTL_BIN" token new --role reader --id exporter --tokens-file "$T_DIR/tokens" >"$T_DIR/tok"
stop_server
start_server --tokens-file "$T_DIR/tokens" || exit 1
ctl create --type ollama --name r1 api_url=u3 >/dev/null
SECRETD_TOKEN=$(cat "$T_DIR/tok") ctl export --duckdb >"$T_DIR/out"
check "reader role exports" grep -q "SECRET r1 (TYPE ollama, API_URL 'u3'" "$T_DIR/out"
stop_server
finish
