#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The meson consumer (tests/meson-consumer/meson.build): `meson setup` in a
# temporary build directory with the qemurs subproject forced (the repo's
# meson-glue, through subprojects/qemurs; an installed qemurs.pc is not
# used), `meson compile` (cargo builds libqemurs.a inside the build
# directory), `meson test` (the C tests of tests/c, TAP).  meson is the
# venv's from scripts/install-deps.sh.  Speaks TAP (tests/lib/tap.sh): one
# test each for setup and compile, one per meson test; ends with
# `meson consumer: N passed, N failed`.
source "$(dirname "$0")/../../scripts/common.sh"
source "$REPO_ROOT/tests/lib/tap.sh"

meson=$VENV/bin/meson
[ -x "$meson" ] || meson=$(command -v meson) ||
    die "meson not found: run scripts/install-deps.sh (it makes $VENV)"
src=$REPO_ROOT/tests/meson-consumer
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT

# quietly CMD...: run CMD; its output becomes diagnostics if it fails.
quietly() {
    if "$@" >"$build/.log" 2>&1; then
        return 0
    fi
    tap_diag "$(tail -n 60 "$build/.log")"
    return 1
}

tap_start
tap_diag "meson $("$meson" --version)"
set +e
if tap_check "meson setup --force-fallback-for=qemurs" \
       quietly "$meson" setup --force-fallback-for=qemurs "$build/b" "$src" &&
   tap_check "meson compile (libqemurs.a by the meson-glue subproject, the C tests, p9serve)" \
       quietly "$meson" compile -C "$build/b"; then
    "$meson" test -C "$build/b" --no-rebuild --print-errorlogs >"$build/.test" 2>&1
    trc=$?
    tap_diag "$(cat "$build/.test")"
    # One TAP test per meson test, from meson's JSON log.
    while IFS=$'\t' read -r result name subtests; do
        if [ "$result" = OK ]; then
            tap_ok "meson test $name ($subtests TAP tests)"
        else
            tap_not_ok "meson test $name: $result"
        fi
    done < <(python3 - "$build/b/meson-logs/testlog.json" <<'PY'
import json, re, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    n = len(re.findall(r'^(?:not )?ok\b', t.get('stdout') or '', re.M))
    print(t['result'], t['name'], n, sep='\t')
PY
    )
    ((trc == 0 || tap_failed > 0)) || tap_not_ok "meson test: exit $trc"
    # The failed checks are in the tests' stdout, which only the log has.
    ((trc == 0)) ||
        tap_diag "$(grep -E '^(not ok|# )' "$build/b/meson-logs/testlog.txt")"
fi
set -e
tap_end "meson consumer"
((tap_failed == 0))
