# SPDX-License-Identifier: GPL-2.0-or-later
# shellcheck shell=bash
# TAP (version 13) for the shell test runners.  Sourced, not run.
#
#   tap_start                    the `TAP version 13` line
#   tap_ok DESC / tap_not_ok DESC
#                                a test line, numbered in this stream
#   tap_check DESC CMD...        ok if CMD succeeds, else not ok
#   tap_diag TEXT...             each line of TEXT as a `# ...` diagnostic
#   tap_relay_tap NAME <STREAM   a TAP stream (a C test binary's, NAME), its
#                                tests renumbered into this one; sets
#                                tap_relayed_*
#   tap_relay_lines NAME <STREAM `ok   DESC` / `FAIL DESC` lines (the Rust
#                                clients'), likewise; sets tap_relayed_*
#   tap_end LABEL                the plan `1..N`, then the closing
#                                `LABEL: N passed, N failed` line that
#                                scripts/check.sh parses (not a TAP line:
#                                TAP consumers ignore it)
# The counts are tap_n (tests so far), tap_passed and tap_failed.

tap_n=0 tap_passed=0 tap_failed=0

tap_start() { echo "TAP version 13"; }

# A description must not hold a bare `#` (it would start a directive).
tap__line() { # ok|not ok, description
    tap_n=$((tap_n + 1))
    echo "$1 $tap_n - ${2//#/\\#}"
}

tap_ok() { tap__line ok "$*"; tap_passed=$((tap_passed + 1)); }

tap_not_ok() { tap__line "not ok" "$*"; tap_failed=$((tap_failed + 1)); }

tap_diag() {
    local line
    while IFS= read -r line; do
        echo "# $line"
    done <<<"$*"
}

tap_check() {
    local desc=$1; shift
    if "$@"; then tap_ok "$desc"; else tap_not_ok "$desc"; fi
}

# tap_relay_tap NAME: relay the TAP stream on stdin, NAME's.  Its
# `Bail out!` becomes a failed test (the other streams still run).  Sets
# tap_relayed_plan (its plan; -1: none), tap_relayed_passed and
# tap_relayed_failed, for the caller to check the plan against.
# shellcheck disable=SC2034 # tap_relayed_plan is read by the caller
tap_relay_tap() {
    local name=$1 line re_test='^(ok|not ok)( [0-9]+)?( - | )?(.*)$'
    tap_relayed_plan=-1 tap_relayed_passed=0 tap_relayed_failed=0
    while IFS= read -r line; do
        if [[ $line =~ ^TAP\ version\ [0-9]+$ ]]; then
            continue
        elif [[ $line =~ ^1\.\.([0-9]+) ]]; then
            tap_relayed_plan=${BASH_REMATCH[1]}
        elif [[ $line =~ $re_test ]]; then
            if [ "${BASH_REMATCH[1]}" = ok ]; then
                tap_ok "${BASH_REMATCH[4]}"
                tap_relayed_passed=$((tap_relayed_passed + 1))
            else
                tap_not_ok "${BASH_REMATCH[4]}"
                tap_relayed_failed=$((tap_relayed_failed + 1))
            fi
        elif [[ $line =~ ^Bail\ out!\ ?(.*)$ ]]; then
            tap_not_ok "$name: bailed out: ${BASH_REMATCH[1]}"
            tap_relayed_failed=$((tap_relayed_failed + 1))
        elif [[ $line == \#* ]]; then
            echo "$line"
        else
            echo "# $line"
        fi
    done
}

# tap_relay_lines NAME: read `ok   DESC`, `FAIL DESC` lines on stdin; any
# other line becomes a diagnostic.  Sets tap_relayed_passed,
# tap_relayed_failed.
tap_relay_lines() {
    local name=$1 line
    tap_relayed_passed=0 tap_relayed_failed=0
    while IFS= read -r line; do
        if [[ $line =~ ^ok\ +(.*)$ ]]; then
            tap_ok "$name: ${BASH_REMATCH[1]}"
            tap_relayed_passed=$((tap_relayed_passed + 1))
        elif [[ $line =~ ^FAIL\ +(.*)$ ]]; then
            tap_not_ok "$name: ${BASH_REMATCH[1]}"
            tap_relayed_failed=$((tap_relayed_failed + 1))
        else
            echo "# $line"
        fi
    done
}

tap_end() {
    echo "1..$tap_n"
    echo "$1: $tap_passed passed, $tap_failed failed"
}
