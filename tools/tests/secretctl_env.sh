#!/usr/bin/env bash
# secretctl_env.sh: secretctl exec and env against a real secretd. exec puts the fields in
# the command's environment under the tools' names (never in argv: /proc/PID/cmdline is
# checked), runs the command in its own place (same pid), and passes its exit status and
# the signals sent to it through; env prints export lines that round-trip through eval,
# also for a value with a single quote. Global options work after the command name.
# Values are compared silently, through files; none is printed.
set -u
. "$(dirname "$0")/../../tests/integration/lib.sh"

start_server || exit 1
ctl() { "$SECRETCTL_BIN" --addr "$T_URL" "$@"; }
unset OPENAI_API_KEY OPENAI_BASE_URL OLLAMA_HOST AZURE_OPENAI_API_KEY AZURE_OPENAI_ENDPOINT \
  OPENAI_API_VERSION SECRETD_ADDR
E=$T_DIR/expected
mkdir -m 700 "$E"
printf '%s' "sk-LEAK'one \$two \"three\"" >"$E/openai_key"
printf '%s' "https://proxy.example/v1" >"$E/base_url"
printf '%s' "az-LEAK-key" >"$E/azure_key"
printf '%s' "http://10.0.0.5:11434" >"$E/ollama"

ctl create --type openai --name work api_key=@"$E/openai_key" base_url=@"$E/base_url" \
  >/dev/null
ctl create --type openai --name bare --scope openai://bare/ api_key=@"$E/azure_key" >/dev/null
ctl create --type azure_llm api_key=@"$E/azure_key" resource_name=myres \
  api_version=2024-02-01 >/dev/null
ctl create --type ollama --persistent api_url=@"$E/ollama" >/dev/null
ctl create --type openai --scope openai://team/ --name team api_key=@"$E/openai_key" >/dev/null

# same FILE VAR: the variable holds the file's bytes (run inside the exec'ed command).
cat >"$T_DIR/same.sh" <<'SH'
#!/bin/sh
# same.sh FILE VAR [FILE VAR]...: every VAR equals the contents of its FILE.
while [ $# -gt 0 ]; do
  eval "v=\${$2-__unset__}"
  [ "$v" = "$(cat "$1")" ] || exit 1
  shift 2
done
SH
chmod +x "$T_DIR/same.sh"

# --- exec: the names, the values ---------------------------------------------------------
check "exec: openai fields as OPENAI_API_KEY and OPENAI_BASE_URL" \
  ctl exec --secret work -- "$T_DIR/same.sh" "$E/openai_key" OPENAI_API_KEY "$E/base_url" OPENAI_BASE_URL
check "exec: the sh -c form of the check" \
  ctl exec --secret work -- sh -c 'test "$OPENAI_API_KEY" = "$(cat "$1")"' _ "$E/openai_key"
check "exec: OPENAI_BASE_URL unset when base_url is not set" \
  ctl exec --secret bare -- sh -c 'test -z "${OPENAI_BASE_URL+set}" && test -n "$OPENAI_API_KEY"'
check "exec: azure fields" \
  ctl exec --secret __default_azure -- sh -c 'test "$AZURE_OPENAI_API_KEY" = "$(cat "$1")" &&
    test "$AZURE_OPENAI_ENDPOINT" = https://myres.openai.azure.com &&
    test "$OPENAI_API_VERSION" = 2024-02-01' _ "$E/azure_key"
check "exec: ollama api_url as OLLAMA_HOST" \
  ctl exec --secret __default_ollama --storage persistent -- "$T_DIR/same.sh" "$E/ollama" OLLAMA_HOST
check "exec: several secrets at once" \
  ctl exec --secret work --secret __default_azure --secret __default_ollama -- \
  "$T_DIR/same.sh" "$E/openai_key" OPENAI_API_KEY "$E/azure_key" AZURE_OPENAI_API_KEY \
  "$E/ollama" OLLAMA_HOST
check "exec: --type/--path picks the secret as resolve does" \
  ctl exec --type openai --path openai://team/gpt-4o -- sh -c \
  'test "$OPENAI_API_KEY" = "$(cat "$1")" && test -z "${OPENAI_BASE_URL+set}"' _ "$E/openai_key"
check "exec: --env renames a field and drops its default name" \
  ctl exec --secret work --env MY_KEY=api_key -- sh -c \
  'test "$MY_KEY" = "$(cat "$1")" && test -z "${OPENAI_API_KEY+set}" && test -n "$OPENAI_BASE_URL"' \
  _ "$E/openai_key"
check "exec: --env SECRET:FIELD chooses between secrets; endpoint is derived" \
  ctl exec --secret work --secret __default_azure --env K=__default_azure:api_key \
  --env URL=endpoint -- sh -c 'test "$K" = "$(cat "$1")" && test "$URL" = https://myres.openai.azure.com &&
    test -z "${AZURE_OPENAI_ENDPOINT+set}"' _ "$E/azure_key"
check "exec: --prefix gives the generic names" \
  ctl exec --secret work --prefix LLM -- "$T_DIR/same.sh" "$E/openai_key" LLM_API_KEY \
  "$E/base_url" LLM_BASE_URL
check "exec: a variable already in the environment is replaced, others kept" \
  env OPENAI_API_KEY=old KEEP=1 "$SECRETCTL_BIN" --addr "$T_URL" exec --secret work -- \
  sh -c 'test "$OPENAI_API_KEY" = "$(cat "$1")" && test "$KEEP" = 1' _ "$E/openai_key"

# --- exec: never in argv -----------------------------------------------------------------
ctl exec --secret work --secret __default_azure -- sh -c \
  'cat /proc/$$/cmdline >"$1/cmdline"; cat /proc/$$/environ >"$1/environ"' _ "$T_DIR"
check "exec: the value is not in the command's argv (/proc/PID/cmdline)" \
  bash -c '! grep -qF -f "$1/openai_key" "$2/cmdline" && ! grep -qF -f "$1/azure_key" "$2/cmdline"' \
  _ "$E" "$T_DIR"
check "exec: the value is in its environment (/proc/PID/environ)" \
  grep -qF -f "$E/openai_key" "$T_DIR/environ"

# --- exec: same process, exit status, signals -------------------------------------------
ctl exec --secret work -- sh -c 'exit 42'
check "exec: exit status passed through (42)" [ $? -eq 42 ]
{ ctl exec --secret work -- sh -c 'kill -TERM $$'; } 2>/dev/null
check "exec: death by a signal shows as 128+15" [ $? -eq 143 ]
for sig in TERM HUP INT; do
  # A background job of a non-interactive shell starts with SIGINT ignored, and a run
  # under nohup with SIGHUP ignored. An ignored signal stays ignored across exec (the
  # command would rightly ignore it too) and bash cannot undo what it inherited, so env
  # (coreutils >= 9.0) starts secretctl with the three at their defaults.
  env --default-signal=TERM,HUP,INT "$SECRETCTL_BIN" --addr "$T_URL" exec --secret work -- sleep 30 &
  pid=$!
  for _ in $(seq 1 100); do
    [ "$(cat /proc/$pid/comm 2>/dev/null)" = sleep ] && break
    sleep 0.05
  done
  check "exec: the command runs in secretctl's place (pid $pid is sleep)" \
    [ "$(cat /proc/$pid/comm 2>/dev/null)" = sleep ]
  kill -"$sig" "$pid"
  { wait "$pid"; } 2>/dev/null
  rc=$?
  check "exec: SIG$sig sent to secretctl's pid reaches the command (status $rc)" \
    [ "$rc" -eq $((128 + $(kill -l "$sig"))) ]
done
ctl exec --secret work -- /nonexistent/cmd 2>/dev/null
check "exec: a missing command is 127" [ $? -eq 127 ]
ctl exec --secret nosuch -- touch "$T_DIR/ran" 2>"$T_DIR/err"
rc=$?
check "exec: a missing secret is exit 1 and the command does not run" \
  [ "$rc" -eq 1 ] && [ ! -e "$T_DIR/ran" ]
ctl exec --secret work --secret team -- true 2>"$T_DIR/err"
check "exec: two secrets setting one variable is a usage error" [ $? -eq 2 ]
check "exec: that error names the variable, not the value" \
  bash -c 'grep -q OPENAI_API_KEY "$1/err" && ! grep -qF -f "$2/openai_key" "$1/err"' _ "$T_DIR" "$E"
ctl exec --type openai --path s3://nothing -- true 2>/dev/null
check "exec: no secret applies to the path: exit 1" [ $? -eq 1 ]
ctl exec --secret work 2>/dev/null
check "exec: no command: usage error" [ $? -eq 2 ]

# --- env ---------------------------------------------------------------------------------
ctl env work __default_azure >"$T_DIR/env.out"
check "env: exit 0" [ $? -eq 0 ]
check "env: only export lines" bash -c '! grep -vqE "$2" "$1"' _ "$T_DIR/env.out" \
  "^export [A-Z_][A-Z0-9_]*='"
check "env: a value with a single quote round-trips through eval" \
  sh -c 'eval "$(cat "$1")" && "$2/same.sh" "$3/openai_key" OPENAI_API_KEY "$3/base_url" OPENAI_BASE_URL \
    "$3/azure_key" AZURE_OPENAI_API_KEY && test "$AZURE_OPENAI_ENDPOINT" = https://myres.openai.azure.com' \
  _ "$T_DIR/env.out" "$T_DIR" "$E"
check "env: the same through bash" \
  bash -c 'eval "$(cat "$1")" && "$2/same.sh" "$3/openai_key" OPENAI_API_KEY' _ "$T_DIR/env.out" "$T_DIR" "$E"
ctl env --json --type openai --path openai://gpt-4o >"$T_DIR/env.json"
check "env --json: the object" \
  bash -c 'jq -e --rawfile k "$2/openai_key" ".status == \"OK\" and .env.OPENAI_API_KEY == \$k and (.env | keys) == [\"OPENAI_API_KEY\", \"OPENAI_BASE_URL\"]" "$1" >/dev/null' \
  _ "$T_DIR/env.json" "$E"
ctl env --secret __default_ollama --env HOST=api_url >"$T_DIR/env2.out"
check "env: --env in env" grep -qx "export HOST='http://10.0.0.5:11434'" "$T_DIR/env2.out"

# --- global options after the command -------------------------------------------------------
r=$("$SECRETCTL_BIN" list --json --addr "$T_URL")
check_json "list --json --addr after the command" "$r" '.status == "OK" and (.rows | length) == 5'
r=$("$SECRETCTL_BIN" get work --addr "$T_URL" --json --timeout 5000 | jq -c '.secret.name')
check "get NAME --addr --json --timeout after the command" [ "$r" = '"work"' ]
r=$("$SECRETCTL_BIN" sql "FROM which_secret('openai://x', 'openai')" --addr="$T_URL" --json)
check_json "sql STATEMENT --addr=URL --json" "$r" '.rows[0].name == "work"'
check "create --help prints printf %s, not %%s" \
  bash -c '"$1" create --help | grep -qF "printf %s \"\$KEY\"" && ! "$1" create --help | grep -qF "%%"' \
  _ "$SECRETCTL_BIN"

check "no value in the server log" \
  bash -c '! grep -qF -f "$1/openai_key" "$2" && ! grep -qF -f "$1/azure_key" "$2"' _ "$E" "$T_LOG"
stop_server
finish
