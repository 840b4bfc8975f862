#!/usr/bin/env bash
# secretctl_token.sh: `secretctl token new|list|revoke` make a tokens file that a real
# secretd accepts: a reader token works over tcp after SIGHUP with the reader's rights only,
# and stops working after revoke and SIGHUP. The file is created 0600, a group-writable one
# is refused, revoke keeps owner and mode. `secretctl rekey` rotates the key over ipc.
set -u
. "$(dirname "$0")/../../tests/integration/lib.sh"

ctl() { "$SECRETCTL_BIN" "$@"; }
TOK=$T_DIR/tokens
unset SECRETD_TOKEN SECRETD_ADDR SECRETD_TOKENS_FILE

# --- the file ------------------------------------------------------------------------
ctl token new --role admin --id ops --tokens-file "$TOK" >"$T_DIR/admin.token" 2>"$T_DIR/err"
check "token new: exit 0" [ $? -eq 0 ]
check "token new: the file is created 0600" [ "$(stat -c %a "$TOK")" = 600 ]
check "token new: prints sdt_ and 43 base64url characters" \
  grep -qxE 'sdt_[A-Za-z0-9_-]{43}' "$T_DIR/admin.token"
check "token new: tells the user to send SIGHUP" grep -q SIGHUP "$T_DIR/err"
check "token new: the line is ROLE ID SHA256(token)" \
  [ "$(cat "$TOK")" = "admin ops $(tr -d '\n' <"$T_DIR/admin.token" | sha256sum | cut -d' ' -f1)" ]
check "token new: the token itself is not in the file" \
  bash -c '! grep -qF -f <(tr -d "\n" <"$1") "$2"' _ "$T_DIR/admin.token" "$TOK"
ctl token new --role admin --id ops --tokens-file "$TOK" >/dev/null 2>&1
check "token new: a duplicate id is refused (exit 1)" [ $? -eq 1 ]
ctl token new --role root --tokens-file "$TOK" >/dev/null 2>&1
check "token new: an unknown role is a usage error" [ $? -eq 2 ]
ctl token new --role reader --id 'bad id' --tokens-file "$TOK" >/dev/null 2>&1
check "token new: an id with a blank is a usage error" [ $? -eq 2 ]
printf '# a comment kept by revoke\n' >>"$TOK"
SECRETD_TOKENS_FILE=$TOK ctl token new --role reader >"$T_DIR/anon.token" 2>/dev/null
check "token new: default id and SECRETD_TOKENS_FILE" grep -qE '^reader reader-[0-9a-f]{12} [0-9a-f]{64}$' "$TOK"

# --- secretd accepts the tokens ---------------------------------------------------------
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
TCP=tcp://127.0.0.1:$port
start_server --listen "$TCP" --insecure --tokens-file "$TOK" || exit 1
ctl --addr "$T_URL" create --type openai api_key=x-LEAK >/dev/null
ctl --addr "$T_URL" create --type ollama --persistent api_url=http://h:1 >/dev/null

ctl token new --role reader --id job-1 --tokens-file "$TOK" >"$T_DIR/reader.token" 2>/dev/null
# tcp peer with a token: wait for the SIGHUP reload to take effect.
kill -HUP "$T_PID"
ok=1
for _ in $(seq 1 50); do
  ctl --addr "$TCP" --token-file "$T_DIR/reader.token" get __default_openai >/dev/null 2>&1 && { ok=0; break; }
  sleep 0.1
done
check "reader token works over tcp after SIGHUP" [ $ok -eq 0 ]
r=$(ctl list --json --addr "$TCP" --token-file "$T_DIR/reader.token")
check_json "reader: list (global options after the command)" "$r" '.status == "OK" and (.rows | length) == 2'
r=$(ctl --addr "$TCP" --token-file "$T_DIR/reader.token" --json list --unredacted 2>/dev/null)
check_json "reader: unredacted list is PERMISSION_DENIED" "$r" '.status == "PERMISSION_DENIED"'
r=$(ctl --addr "$TCP" --token-file "$T_DIR/reader.token" --json create --type openai --name n api_key=y 2>/dev/null)
check_json "reader: create is PERMISSION_DENIED" "$r" '.status == "PERMISSION_DENIED"'
r=$(ctl --addr "$TCP" --token-file "$T_DIR/reader.token" --json rekey 2>/dev/null)
check_json "reader: rekey is PERMISSION_DENIED" "$r" '.status == "PERMISSION_DENIED"'
r=$(SECRETD_TOKEN=$(cat "$T_DIR/admin.token") ctl --addr "$TCP" --json list --unredacted)
check_json "admin token (SECRETD_TOKEN): unredacted list" "$r" '.status == "OK"'

ctl token list --tokens-file "$TOK" >"$T_DIR/list.out"
check "token list: header and three tokens" [ "$(wc -l <"$T_DIR/list.out")" -eq 4 ]
check "token list: role and id" grep -qxE 'reader +job-1' "$T_DIR/list.out"
check "token list: no hash" bash -c '! grep -qE "[0-9a-f]{64}" "$1"' _ "$T_DIR/list.out"
r=$(ctl token list --tokens-file "$TOK" --json)
check_json "token list --json" "$r" '.tokens == [{"role":"admin","id":"ops"},{"role":"reader","id":(.tokens[1].id)},{"role":"reader","id":"job-1"}]'

chmod 640 "$TOK"
ctl token revoke job-1 --tokens-file "$TOK" 2>"$T_DIR/err"
check "token revoke: exit 0" [ $? -eq 0 ]
check "token revoke: mode kept (640)" [ "$(stat -c %a "$TOK")" = 640 ]
check "token revoke: the line is gone, the others and the comment stay" \
  bash -c '! grep -q " job-1 " "$1" && grep -q "^admin ops " "$1" && grep -qx "# a comment kept by revoke" "$1"' _ "$TOK"
check "token revoke: no temporary file left" [ "$(ls "$T_DIR" | grep -c '^tokens\.')" -eq 0 ]
ctl token revoke job-1 --tokens-file "$TOK" 2>/dev/null
check "token revoke: an unknown id is exit 1" [ $? -eq 1 ]
kill -HUP "$T_PID"
ok=1
for _ in $(seq 1 50); do
  r=$(ctl --addr "$TCP" --token-file "$T_DIR/reader.token" --json get __default_openai 2>/dev/null)
  [ "$(printf '%s' "$r" | jq -r .status)" = UNAUTHENTICATED ] && { ok=0; break; }
  sleep 0.1
done
check "revoked token is UNAUTHENTICATED after SIGHUP" [ $ok -eq 0 ]

chmod 660 "$TOK"
ctl token new --role reader --tokens-file "$TOK" >/dev/null 2>"$T_DIR/err"
check "token new: a group-writable file is refused" [ $? -eq 1 ]
check "token new: ... with a message saying so" grep -q "writable by group or others" "$T_DIR/err"
chmod 600 "$TOK"

# --- rekey ---------------------------------------------------------------------------------
r=$(ctl --addr "$T_URL" rekey)
check "rekey: prints the key file" [ "$r" = "rotated the database key; key file $T_DIR/data/secretd.key" ]
r=$(ctl rekey --json --addr "$T_URL")
check_json "rekey --json" "$r" '.status == "OK" and (.key_file | endswith("/secretd.key"))'
stop_server
start_server --tokens-file "$TOK" || exit 1
r=$(ctl --addr "$T_URL" --json get __default_ollama)
check_json "after rekey and a restart the persistent secret is readable" "$r" '.secret.fields.api_url == "http://h:1"'
stop_server
finish
