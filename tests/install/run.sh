#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make install` / `make uninstall` into a temporary DESTDIR: the installed
# qemurs.pc names the prefix, not this checkout; p9serve builds against the
# installed copy with `pkg-config --static --cflags --libs qemurs` alone
# (PKG_CONFIG_LIBDIR and PKG_CONFIG_SYSROOT_DIR point into DESTDIR, so
# nothing else is found), serves a directory to p9-workload and stops
# cleanly; `make uninstall` leaves no file behind.  Speaks TAP
# (tests/lib/tap.sh); ends with `install: N passed, N failed`.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
source "$root/tests/lib/tap.sh"

prefix=/usr/local
tmp=$(mktemp -d)
dest=$tmp/dest
pid=
cleanup() {
    [ -z "$pid" ] || kill -KILL "$pid" 2>/dev/null || true
    rm -rf "$tmp"
}
trap cleanup EXIT

# quietly CMD...: run CMD; its output becomes diagnostics if it fails.
quietly() {
    if "$@" >"$tmp/log" 2>&1; then
        return 0
    fi
    tap_diag "$(cat "$tmp/log")"
    return 1
}

(cd "$root" && cargo build --release --quiet --locked -p p9-client --bin p9-workload)
workload=${CARGO_TARGET_DIR:-$root/target}/release/p9-workload

tap_start
set +e
tap_check "make install DESTDIR=... PREFIX=$prefix" \
    quietly make -C "$root" --no-print-directory install DESTDIR="$dest" PREFIX="$prefix"
files=("$dest$prefix/lib/libqemurs.a" "$dest$prefix/include/qemurs.h"
       "$dest$prefix/lib/pkgconfig/qemurs.pc")
installed() {
    local f
    for f in "${files[@]}"; do
        [ -f "$f" ] || { tap_diag "missing: ${f#"$dest"}"; return 1; }
    done
    cmp -s "$root/include/qemurs.h" "$dest$prefix/include/qemurs.h" ||
        { tap_diag "installed qemurs.h differs from include/qemurs.h"; return 1; }
}
tap_check "the library, the header and qemurs.pc are installed" installed

pc=$dest$prefix/lib/pkgconfig/qemurs.pc
pc_prefix() {
    if ! grep -qx "prefix=$prefix" "$pc" || grep -qF "$root" "$pc"; then
        tap_diag "$(cat "$pc")"
        return 1
    fi
}
tap_check "qemurs.pc names the installed prefix, not the checkout" pc_prefix

export PKG_CONFIG_LIBDIR=$dest$prefix/lib/pkgconfig PKG_CONFIG_SYSROOT_DIR=$dest
unset PKG_CONFIG_PATH
flags=$(pkg-config --static --cflags --libs qemurs)
tap_diag "pkg-config --static --cflags --libs qemurs: $flags"
pc_flags() {
    [[ $flags == *"-I$dest$prefix/include"* && $flags == *"-L$dest$prefix/lib"* &&
       $flags == *-lqemurs* ]] && [[ $flags != *"$root/"* ]]
}
tap_check "pkg-config gives the installed paths only" pc_flags

bin=$tmp/p9serve
# shellcheck disable=SC2086 # pkg-config's output is meant to be split
tap_check "p9serve builds against the installed copy" \
    quietly gcc -std=gnu11 -Wall -Wextra -Werror -O2 -pthread \
        "$root/tests/p9serve/p9serve.c" -o "$bin" $flags

mkdir "$tmp/export"
serve() {
    [ -x "$bin" ] || return 1
    "$bin" --threads 2 --unix "$tmp/sock" "$tmp/export" >"$tmp/out" 2>"$tmp/err" &
    pid=$!
    for _ in $(seq 200); do
        grep -q '^p9serve: listening on ' "$tmp/out" 2>/dev/null && return 0
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.05
    done
    tap_diag "$(cat "$tmp/out" "$tmp/err")"
    return 1
}
if tap_check "the installed build serves a directory on a Unix socket" serve; then
    tap_check "p9-workload passes against it" \
        quietly "$workload" "unix:$tmp/sock" "$tmp/export"
    tap_diag "$(tail -n 1 "$tmp/log")"
    stop() {
        local src
        kill -TERM "$pid"
        timeout 30 tail --pid="$pid" -f /dev/null
        kill -KILL "$pid" 2>/dev/null
        wait "$pid"
        src=$?
        pid=
        ((src == 0)) || { tap_diag "exit $src; stderr: $(cat "$tmp/err")"; return 1; }
    }
    tap_check "p9serve exits cleanly on SIGTERM" stop
fi

tap_check "make uninstall DESTDIR=... PREFIX=$prefix" \
    quietly make -C "$root" --no-print-directory uninstall DESTDIR="$dest" PREFIX="$prefix"
nothing_left() {
    local left
    left=$(find "$dest" ! -type d)
    [ -z "$left" ] || { tap_diag "left behind: $left"; return 1; }
}
tap_check "make uninstall leaves no file behind" nothing_left
set -e
tap_end install
((tap_failed == 0))
