#!/usr/bin/env bash
# install_test.sh: `meson install` into a temporary prefix puts every file in its
# conventional place, and a client builds and runs against the installed tree alone.
#
# A fresh build directory (plain buildtype, no sanitizers, whatever build runs the test) is
# configured with --prefix in a temp dir; only the targets that are installed are built.
# Then: secretd in sbin, secretctl in bin, libsecretd.so with its soname links, secretd.h,
# secretd.pc, the .proto under share/secretd/proto, both man pages (found by man through
# MANPATH), secretd.service (ExecStart in the prefix; systemd-analyze verify when present),
# the sysusers.d entry and the bash completion. examples/worker.c is compiled with nothing
# but `pkg-config --cflags --libs secretd` (and an rpath to its libdir), and run against the
# installed secretd, seeded with the installed secretctl.
# usage: install_test.sh SOURCE_ROOT
set -u
src=$1
checks=0 failures=0
T=$(mktemp -d /tmp/secretd-install-XXXXXX)
chmod 700 "$T"
SPID=
cleanup() {
  [ -n "$SPID" ] && kill -KILL "$SPID" 2>/dev/null
  [ -n "${SECRETD_KEEP_TEST_DIRS:-}" ] || rm -rf "$T"
}
trap cleanup EXIT
fail() { failures=$((failures + 1)); echo "FAIL: $*" >&2; }
check() { local what=$1; shift; checks=$((checks + 1)); "$@" || fail "$what"; }
P=$T/prefix

# --- configure, build what is installed, install -------------------------------------
if ! meson setup "$T/build" "$src" --prefix "$P" --buildtype=plain >"$T/setup.log" 2>&1; then
  tail -30 "$T/setup.log"; echo "meson setup failed"; exit 1
fi
mapfile -t targets < <(meson introspect "$T/build" --targets |
  python3 -c 'import json, os, sys
b = os.path.realpath(sys.argv[1])
for t in json.load(sys.stdin):
    if t.get("installed"):
        for f in t["filename"]:
            print(os.path.relpath(os.path.realpath(f), b))' "$T/build")
if ! ninja -C "$T/build" "${targets[@]}" >"$T/build.log" 2>&1; then
  tail -30 "$T/build.log"; echo "build failed"; exit 1
fi
if ! meson install -C "$T/build" --no-rebuild >"$T/install.log" 2>&1; then
  tail -30 "$T/install.log"; echo "meson install failed"; exit 1
fi

# --- the layout ------------------------------------------------------------------------
pc=$(find "$P" -name secretd.pc | head -1)
libdir=$(dirname "$(dirname "$pc")")
# The library's file carries the project's version (client/meson.build), whatever it is.
version=$(meson introspect "$T/build" --projectinfo | python3 -c 'import json, sys; print(json.load(sys.stdin)["version"])')
lib=libsecretd.so.$version
check "secretd.pc installed (under lib*/pkgconfig)" [ -n "$pc" ]
check "secretd in sbin" [ -x "$P/sbin/secretd" ]
check "secretctl in bin" [ -x "$P/bin/secretctl" ]
check "$lib in $libdir" [ -f "$libdir/$lib" ]
check "libsecretd.so.0 -> $lib" [ "$(readlink "$libdir/libsecretd.so.0")" = "$lib" ]
check "libsecretd.so (for -lsecretd) links to the soname" [ "$(readlink "$libdir/libsecretd.so")" = libsecretd.so.0 ]
check "SONAME is libsecretd.so.0" bash -c 'readelf -d "$1" | grep -q "SONAME.*\[libsecretd.so.0\]"' _ "$libdir/$lib"
check "only secretd_* symbols are exported" bash -c \
  '[ -z "$(nm -D --defined-only "$1" | awk "{print \$3}" | grep -v "^secretd_" | grep -v "^SECRETD_[0-9]")" ]' \
  _ "$libdir/$lib"
check "secretd.h in include" [ -f "$P/include/secretd.h" ]
check "secretd_version.h (which secretd.h includes) in include" [ -f "$P/include/secretd_version.h" ]
check "no generated protobuf header installed" [ -z "$(find "$P" -name '*.pb-c.h')" ]
check "the .proto under share/secretd/proto" [ -f "$P/share/secretd/proto/secretd/v1/secretd.proto" ]
check "secretd(8)" [ -s "$P/share/man/man8/secretd.8" ]
check "secretctl(1)" [ -s "$P/share/man/man1/secretctl.1" ]
if command -v man >/dev/null; then
  check "man finds secretd(8) through MANPATH" [ "$(MANPATH=$P/share/man man -w 8 secretd)" = "$P/share/man/man8/secretd.8" ]
  check "man finds secretctl(1) through MANPATH" [ "$(MANPATH=$P/share/man man -w 1 secretctl)" = "$P/share/man/man1/secretctl.1" ]
fi
unit=$P/lib/systemd/system/secretd.service
check "secretd.service under lib/systemd/system" [ -f "$unit" ]
check "ExecStart is the installed secretd" grep -qx "ExecStart=$P/sbin/secretd" "$unit"
check "sysusers.d entry" grep -q '^u secretd ' "$P/lib/sysusers.d/secretd.conf"
if command -v systemd-analyze >/dev/null; then
  out=$(MANPATH=$P/share/man systemd-analyze verify "$unit" 2>&1)
  check "systemd-analyze verify on the installed unit (Documentation= found too): $out" [ -z "$out" ]
fi
comp=$P/share/bash-completion/completions/secretctl
check "bash completion installed" [ -f "$comp" ]
check "bash completion registers secretctl" bash -c '. "$1"; complete -p secretctl | grep -q _secretctl' _ "$comp"

# --- a client built against the installed pkg-config file alone -----------------------
export PKG_CONFIG_PATH=$(dirname "$pc")
unset PKG_CONFIG_LIBDIR
cflags=$(pkg-config --cflags secretd) && libs=$(pkg-config --libs secretd)
check "pkg-config knows secretd" [ $? -eq 0 ]
check "pkg-config points into the prefix, not the source tree" \
  bash -c '[[ "$1 $2" != *"$3"* ]] && [[ "$1 $2" == *"$4"* ]]' _ "$cflags" "$libs" "$src" "$P"
# shellcheck disable=SC2086
if ! cc -std=c11 -Wall -Wextra -Werror $cflags "$src/examples/worker.c" -o "$T/worker" $libs \
  -Wl,-rpath,"$(pkg-config --variable=libdir secretd)" 2>"$T/cc.log"; then
  cat "$T/cc.log"; fail "worker.c does not compile against the installed tree"
fi
check "the worker loads the installed libsecretd" \
  bash -c 'env -u LD_LIBRARY_PATH ldd "$1" | grep -q "libsecretd.so.0 => $2/libsecretd.so.0"' _ "$T/worker" "$libdir"

# --- run it against the installed secretd ---------------------------------------------------
URL=ipc://$T/secretd.sock
"$P/sbin/secretd" --listen "$URL" --data-dir "$T/data" >"$T/server.log" 2>&1 &
SPID=$!
ctl() { LD_LIBRARY_PATH=$libdir "$P/bin/secretctl" --addr "$URL" "$@"; }
for _ in $(seq 1 100); do
  ctl list >/dev/null 2>&1 && break
  sleep 0.1
done
printf '%s' 'sk-INSTALLED-1' | ctl create --type openai api_key=- >/dev/null
check "installed secretctl created a secret" [ $? -eq 0 ]
out=$(env -u LD_LIBRARY_PATH SECRETD_ADDR=$URL "$T/worker" openai://gpt-4o)
check "installed worker ran: $out" \
  [ "$out" = "worker: openai://gpt-4o uses secret __default_openai (memory), an api_key of 14 bytes, base_url (default)" ]
kill -TERM "$SPID"
wait "$SPID"
check "installed secretd exits 0 on SIGTERM" [ $? -eq 0 ]
SPID=

echo "$checks checks, $failures failed"
[ "$failures" -eq 0 ]
