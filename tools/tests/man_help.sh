#!/usr/bin/env bash
# man_help.sh: the man pages agree with --help. Every flag that `secretd --help` shows is
# defined in secretd(8) and every flag defined there is in --help; the same for
# secretctl(1): its global options, and for each command the flags of `secretctl CMD
# --help` against the man page's section for CMD. The SECRETD_* variables of each --help
# are in its man page. The generated roff renders without groff warnings.
# usage: man_help.sh SECRETD SECRETCTL MAN_SRC_DIR SECRETD_ROFF SECRETCTL_ROFF
set -u
secretd=$1 secretctl=$2 src=$3 roff_d=$4 roff_c=$5
checks=0 failures=0

fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }
check_same() { # what, set-a-name, set-a, set-b-name, set-b (newline-separated, sorted)
  checks=$((checks + 1))
  local only_a only_b
  only_a=$(comm -23 <(printf '%s\n' "$3") <(printf '%s\n' "$5") | grep -v '^$')
  only_b=$(comm -13 <(printf '%s\n' "$3") <(printf '%s\n' "$5") | grep -v '^$')
  [ -z "$only_a" ] || fail "$1: in $2 only: $(echo $only_a)"
  [ -z "$only_b" ] || fail "$1: in $4 only: $(echo $only_b)"
}
check_subset() { # what, a-name, a, b-name, b: every line of a is in b
  checks=$((checks + 1))
  local missing
  missing=$(comm -23 <(printf '%s\n' "$3") <(printf '%s\n' "$5") | grep -v '^$')
  [ -z "$missing" ] || fail "$1: in $2 but not in $4: $(echo $missing)"
}
flags() { grep -oE -- '(^|[^A-Za-z0-9_-])--?[a-z][a-z0-9-]*' | grep -oE -- '--?[a-z][a-z0-9-]*' |
  grep -vE '^-[a-z][a-z]' | sort -u; }
# Flags an scdoc page defines: the terms of its definition lists, lines starting with *-.
defined() { grep -E '^\*-' | flags; }
envvars() { grep -oE 'SECRETD_[A-Z_]+' | grep -v '_$' | sort -u; }
# The text of section "## NAME" of an scdoc page, up to the next heading.
section() { awk -v h="## $2" '$0 == h {on = 1; next} /^#/ {on = 0} on' "$1"; }

# --- secretd -------------------------------------------------------------------------
help_d=$("$secretd" --help) || fail "secretd --help failed"
check_same "secretd flags" "--help" "$(printf '%s\n' "$help_d" | flags)" \
  "secretd.8.scd" "$(defined <"$src/secretd.8.scd")"
check_subset "secretd variables" "--help" "$(printf '%s\n' "$help_d" | envvars)" \
  "secretd.8.scd" "$(envvars <"$src/secretd.8.scd")"
check_subset "secretd variables" "secretd.8.scd" "$(envvars <"$src/secretd.8.scd")" \
  "--help" "$(printf '%s\n' "$help_d" | envvars)"

# --- secretctl -----------------------------------------------------------------------
help_c=$("$secretctl" --help) || fail "secretctl --help failed"
global_help=$(printf '%s\n' "$help_c" | sed -n '/^Options:/,/^Commands:/p' | flags)
global_man=$(sed -n '/^# GLOBAL OPTIONS/,/^# COMMANDS/p' "$src/secretctl.1.scd" | defined)
check_same "secretctl global flags" "--help" "$global_help" "secretctl.1.scd" "$global_man"

commands=$(printf '%s\n' "$help_c" | sed -n '/^Commands:/,/^$/p' | awk 'NR > 1 && NF {print $1}' |
  sort -u)
man_commands=$(grep -E '^## ' "$src/secretctl.1.scd" | awk '{print $2}' | sort -u)
check_same "secretctl commands" "--help" "$commands" "secretctl.1.scd" "$man_commands"
all_help=$global_help
for cmd in $commands; do
  h=$("$secretctl" "$cmd" --help) || { fail "secretctl $cmd --help failed"; continue; }
  hf=$(printf '%s\n' "$h" | flags | grep -vxE -- '--help|-h')
  all_help=$(printf '%s\n%s\n' "$all_help" "$hf" | sort -u)
  sec=$(section "$src/secretctl.1.scd" "$cmd")
  check_subset "secretctl $cmd flags" "'$cmd --help'" "$hf" "its man section" \
    "$(printf '%s\n' "$sec" | flags)"
  check_subset "secretctl $cmd flags" "its man section (defined)" \
    "$(printf '%s\n' "$sec" | defined)" "'$cmd --help' and global options" \
    "$(printf '%s\n%s\n' "$hf" "$global_help" | sort -u)"
  check_subset "secretctl $cmd variables" "'$cmd --help'" "$(printf '%s\n' "$h" | envvars)" \
    "secretctl.1.scd" "$(envvars <"$src/secretctl.1.scd")"
done
check_subset "secretctl variables" "--help" "$(printf '%s\n' "$help_c" | envvars)" \
  "secretctl.1.scd" "$(envvars <"$src/secretctl.1.scd")"
check_subset "secretctl flags" "secretctl.1.scd (defined)" \
  "$(defined <"$src/secretctl.1.scd")" "some --help" "$all_help"

# --- the generated roff --------------------------------------------------------------
for r in "$roff_d" "$roff_c"; do
  checks=$((checks + 1))
  [ -s "$r" ] || { fail "$r is missing or empty"; continue; }
  if command -v man >/dev/null; then
    checks=$((checks + 1))
    warnings=$(MANWIDTH=100 man --warnings -l "$r" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "man -l $r warns: $warnings"
    checks=$((checks + 1))
    MANWIDTH=100 man -l "$r" 2>/dev/null | grep -q '^EXIT STATUS' || fail "$r has no EXIT STATUS"
  fi
done

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
