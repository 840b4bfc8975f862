#!/usr/bin/env bash
# completion.sh: the bash completion offers every command of `secretctl --help` and, after
# each command, every flag of `secretctl CMD --help`; it completes types, storages and
# roles, and the command after `exec --`.
# usage: completion.sh SECRETCTL COMPLETION_FILE
set -u
secretctl=$1
# shellcheck disable=SC1090
. "$2"
checks=0 failures=0
fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }

# complete WORDS...: the candidates for the last word (may be empty) of "secretctl WORDS".
complete_words() {
  COMP_WORDS=(secretctl "$@")
  COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
  COMPREPLY=()
  _secretctl secretctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
  printf '%s\n' "${COMPREPLY[@]}"
}
offers() { # what, expected word, words...
  local what=$1 want=$2; shift 2
  checks=$((checks + 1))
  complete_words "$@" | grep -qxF -- "$want" || fail "$what: '$*' does not offer $want"
}

help=$("$secretctl" --help)
commands=$(printf '%s\n' "$help" | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}')
for cmd in $commands; do
  offers "command" "$cmd" ""
  for flag in $("$secretctl" "$cmd" --help | grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
    offers "$cmd flag" "$flag" "$cmd" "--"
  done
done
for flag in $(printf '%s\n' "$help" | sed -n '/^Options:/,/^Commands:/p' |
  grep -oE -- '--[a-z][a-z0-9-]*' | sort -u); do
  offers "global flag" "$flag" "--"
  offers "global flag after a command" "$flag" list "--"
done
offers "type" azure_llm create --type ""
offers "storage" sqlcipher drop x --storage ""
offers "role" reader token new --role ""
offers "token action" revoke token ""
offers "exec command" sh exec --secret s -- s
offers "global option value skipped" list --addr ipc:///x li

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
