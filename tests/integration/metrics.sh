#!/usr/bin/env bash
# metrics.sh: secretd --metrics-listen scraped with a real HTTP client (curl): /healthz,
# /readyz (and 503 on a read-only database), /metrics in Prometheus' text format, checked
# line by line here (awk) and strictly by `secretctl stats` (types declared, histograms
# cumulative, +Inf equal to _count), figures equal to the calls made, no secret name or
# value in them; the parser refuses malformed scrapes; off by default.
set -u
. "$(dirname "$0")/lib.sh"
CTL() { "$SECRETCTL_BIN" --addr "$T_URL" "$@"; }

# A free port: the kernel's choice for a socket we close at once.
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
M="http://127.0.0.1:$port"

# --- off by default -------------------------------------------------------------------
start_server || exit 1
check "no metrics listener without the flag" bash -c "! curl -s -o /dev/null '$M/healthz'"
stop_server

start_server --metrics-listen "$M" || exit 1
code() { curl -s -o /dev/null -w '%{http_code}' "$M$1"; }
check "/healthz answers 200" [ "$(code /healthz)" = 200 ]
check "/readyz answers 200" [ "$(code /readyz)" = 200 ]
check "/readyz says ready" [ "$(curl -s "$M/readyz")" = ready ]
check "an unknown path is 404" [ "$(code /nothing)" = 404 ]

# --- calls whose figures we know ------------------------------------------------------
for i in 1 2 3; do
  printf %s "v-METRICSLEAK-$i" | CTL create --type openai --name "mleak$i" --persistent api_key=- >/dev/null
done
for i in 4 5; do
  printf %s "v-METRICSLEAK-$i" | CTL create --type openai --name "mleak$i" api_key=- >/dev/null
done
CTL get mleak1 >/dev/null
CTL get mleak-none >/dev/null 2>&1
CTL drop mleak3 --persistent >/dev/null
# start_server's readiness probes are text frames too: count from here.
exec_before=$(curl -s "$M/metrics" | awk '$1 == "secretd_requests_total{method=\"Execute\",status=\"OK\"}" {print $2}')
nng_text "GET SECRET mleak4" >/dev/null

headers=$(curl -s -D - -o "$T_DIR/scrape" "$M/metrics")
check "Content-Type is the text format 0.0.4" grep -qi '^content-type: text/plain; version=0.0.4' <<<"$headers"
check "scrape is not empty" [ -s "$T_DIR/scrape" ]

# Every line is a HELP/TYPE comment or a sample `name{label="v",...} value` (awk's own
# reading of the format, independent of secretctl's parser).
bad=$(awk '
  /^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* / { next }
  /^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="[^"\\]*",?)*\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|\+Inf|-Inf|NaN)$/ { next }
  { print NR": "$0 }' "$T_DIR/scrape")
check "every line is a comment or a sample" [ -z "$bad" ]
[ -z "$bad" ] || printf '%s\n' "$bad" | head -5 >&2
check "TYPE lines name the types" bash -c "grep '^# TYPE' '$T_DIR/scrape' | awk '{print \$4}' | grep -qvE '^(counter|gauge|histogram)$' && exit 1 || exit 0"

sample() { # NAME{LABELS}: its value in the scrape
  awk -v k="$1" '$1 == k {print $2}' "$T_DIR/scrape"
}
check "Create OK counted 5 times" [ "$(sample 'secretd_requests_total{method="Create",status="OK"}')" = 5 ]
check "Get OK counted once" [ "$(sample 'secretd_requests_total{method="Get",status="OK"}')" = 1 ]
check "Get NOT_FOUND counted once" [ "$(sample 'secretd_requests_total{method="Get",status="NOT_FOUND"}')" = 1 ]
check "Drop OK counted once" [ "$(sample 'secretd_requests_total{method="Drop",status="OK"}')" = 1 ]
check "the text frame counted as Execute" [ "$(sample 'secretd_requests_total{method="Execute",status="OK"}')" = $((${exec_before:-0} + 1)) ]
check "Create latency histogram counts 5" [ "$(sample 'secretd_request_duration_seconds_count{method="Create"}')" = 5 ]
check "Create +Inf bucket is 5" [ "$(sample 'secretd_request_duration_seconds_bucket{method="Create",le="+Inf"}')" = 5 ]
check "2 persistent secrets" [ "$(sample 'secretd_secrets{storage="sqlcipher"}')" = 2 ]
check "2 temporary secrets" [ "$(sample 'secretd_secrets{storage="memory"}')" = 2 ]
check "4 persistent writes in the group commits" [ "$(sample 'secretd_group_commit_size_sum')" = 4 ]
groups=$(sample 'secretd_group_commit_size_count')
check "1 to 4 group commits" [ "${groups:-0}" -ge 1 -a "${groups:-0}" -le 4 ]
check "every group commit timed" [ "$(sample 'secretd_commit_duration_seconds_count')" = "$groups" ]
check "no commit failed" [ "$(sample 'secretd_group_commits_failed_total')" = 0 ]
check "connected clients is a number" grep -qE '^secretd_connected_clients [0-9]+$' "$T_DIR/scrape"
check "ready gauge is 1" [ "$(sample secretd_ready)" = 1 ]
check "no secret name in the metrics" bash -c "! grep -q mleak '$T_DIR/scrape'"
check "no secret value in the metrics" bash -c "! grep -q METRICSLEAK '$T_DIR/scrape'"

# --- secretctl stats: the strict parser, table and JSON -------------------------------
check "secretctl stats accepts the scrape" bash -c "\"$SECRETCTL_BIN\" stats --file \"$T_DIR/scrape\" >/dev/null"
table=$(CTL stats --metrics-url "$M")
check "stats table has the Create row" grep -qE '^secretd_requests_total\{method=Create,status=OK\} +[0-9]+$' <<<"$table"
json=$(CTL --json stats --metrics-url "$M")
check_json "stats --json: the persistent count" "$json" \
  '[.samples[] | select(.name == "secretd_secrets" and .labels.storage == "sqlcipher") | .value] == [2]'
check_json "stats --json: +Inf as a string" "$json" \
  '[.samples[] | select(.labels.le == "+Inf")] | length > 0'
check "stats JSON has no value" bash -c '! grep -q METRICSLEAK <<<"$1"' _ "$json"
check "SECRETD_METRICS_URL is read" bash -c "SECRETD_METRICS_URL=$M \"$SECRETCTL_BIN\" stats >/dev/null"

bad_scrape() { # DESCRIPTION TEXT: secretctl stats must refuse TEXT
  printf '%s' "$2" >"$T_DIR/bad"
  checks=$((checks + 1))
  if CTL stats --file "$T_DIR/bad" >/dev/null 2>&1; then
    failures=$((failures + 1)); echo "FAIL: parser accepted: $1" >&2
  fi
}
bad_scrape "sample without TYPE" $'x_total 1\n'
bad_scrape "unknown type" $'# TYPE x_total countr\nx_total 1\n'
bad_scrape "bad value" $'# TYPE x gauge\nx one\n'
bad_scrape "unterminated labels" $'# TYPE x gauge\nx{a="b" 1\n'
bad_scrape "bad escape" $'# TYPE x gauge\nx{a="\\q"} 1\n'
bad_scrape "no final newline" $'# TYPE x gauge\nx 1'
bad_scrape "buckets not cumulative" $'# TYPE h histogram\nh_bucket{le="1"} 5\nh_bucket{le="+Inf"} 3\nh_sum 1\nh_count 3\n'
bad_scrape "+Inf differs from _count" $'# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 3\nh_sum 1\nh_count 4\n'
bad_scrape "no +Inf bucket" $'# TYPE h histogram\nh_bucket{le="1"} 1\nh_sum 1\nh_count 1\n'
printf '# TYPE h histogram\nh_bucket{le="1"} 1\nh_bucket{le="+Inf"} 3\nh_sum 1.5\nh_count 3\n# TYPE g gauge\ng{a="x\\"y"} -2.5e3 1700000000\n' >"$T_DIR/good"
check "parser accepts a well-formed scrape" bash -c "\"$SECRETCTL_BIN\" stats --file \"$T_DIR/good\" >/dev/null"
stop_server

# --- /readyz on a database that cannot be written ------------------------------------
chmod 0400 "$T_DIR/data/secrets.db"
start_server --metrics-listen "$M" || exit 1
check "read-only database: /healthz still 200" [ "$(code /healthz)" = 200 ]
check "read-only database: /readyz 503" [ "$(code /readyz)" = 503 ]
curl -s -o "$T_DIR/scrape" "$M/metrics"
check "read-only database: ready gauge 0" [ "$(sample secretd_ready)" = 0 ]
stop_server
chmod 0600 "$T_DIR/data/secrets.db"

finish
