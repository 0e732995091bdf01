#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make check`: every test, on top of what `make` built.  Each stage prints
# its own output; the counts are summed into the closing
# `N passed, N failed` line and any failure makes the exit status non-zero.
source "$(dirname "$0")/common.sh"
set +e
cd "$REPO_ROOT"

passed=0 failed=0
failed_stages=()

# stage NAME CMD...: a check that passes or fails as a whole.
stage() {
    local name=$1; shift
    say "$name"
    if "$@"; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1)); failed_stages+=("$name")
    fi
}

# counted NAME REGEX CMD...: a test runner whose closing line matches REGEX
# with (passed, failed) as the two groups; its counts are added.
counted() {
    local name=$1 re=$2; shift 2
    local log rc
    say "$name"
    log=$(mktemp)
    "$@" 2>&1 | tee "$log"
    rc=${PIPESTATUS[0]}
    local p=0 f=0 seen=0
    while read -r line; do
        if [[ $line =~ $re ]]; then
            p=$((p + BASH_REMATCH[1])); f=$((f + BASH_REMATCH[2])); seen=1
        fi
    done <"$log"
    rm -f "$log"
    passed=$((passed + p)); failed=$((failed + f))
    if ((rc != 0 || seen == 0)); then
        ((f > 0)) || failed=$((failed + 1))
        failed_stages+=("$name (exit $rc)")
    fi
}

check_native_libs() {
    local want got
    want=$(sed -n "s/^qemurs_native_libs = \[\(.*\)\]/\1/p" meson-glue/meson.build | tr -d "',")
    got=$(cargo rustc --quiet --release --locked -p capi --crate-type staticlib -- \
              --print native-static-libs 2>&1 | sed -n 's/.*native-static-libs: //p' | tail -n 1)
    echo "meson-glue: $want"
    echo "rustc:      $got"
    [ "$want" = "$got" ]
}

# Every shell script in the repo (.shellcheckrc: follow what they source);
# the guests' /init scripts are busybox sh.
check_shell() {
    local rc=0 bash_scripts sh_scripts
    shopt -s globstar nullglob
    # Each once (tests/meson-consumer/subprojects/qemurs is meson-glue).
    mapfile -t bash_scripts < <(realpath --relative-to=. \
        scripts/*.sh tests/**/*.sh .ci/run meson-glue/*.sh | sort -u)
    sh_scripts=(tests/guest/init tests/guest-bench/init)
    shopt -u globstar nullglob
    shellcheck --version | sed -n 's/^version: /shellcheck /p'
    shellcheck "${bash_scripts[@]}" || rc=1
    shellcheck -s sh "${sh_scripts[@]}" || rc=1
    echo "shellcheck: $((${#bash_scripts[@]} + ${#sh_scripts[@]})) scripts"
    return $rc
}

stage "cargo fmt --check" cargo fmt --all -- --check
stage "cargo clippy -D warnings" cargo clippy --locked --workspace --all-targets -- -D warnings
stage "cargo doc -D warnings (rustdoc lints)" \
    env RUSTDOCFLAGS="-D warnings" cargo doc --locked --workspace --no-deps
stage "shellcheck" check_shell
stage "header drift (gen-header --check)" cargo run --quiet --locked -p gen-header -- --check
stage "native static libs match meson-glue" check_native_libs
counted "firmware links over configure's dangling link" '^link-firmware: ([0-9]+) passed, ([0-9]+) failed$' \
    tests/scripts/link-firmware-test.sh
counted "cargo test" 'test result: [a-zA-Z]+\. ([0-9]+) passed; ([0-9]+) failed' \
    cargo test --locked --workspace
counted "C tests (ASan/UBSan)" '^c tests: ([0-9]+) passed, ([0-9]+) failed$' \
    tests/c/run.sh
counted "p9serve: the C API over a socket (ASan/UBSan)" '^p9serve workload: ([0-9]+) passed, ([0-9]+) failed$' \
    tests/p9serve/run.sh
counted "make install / uninstall: p9serve on the installed copy" '^install: ([0-9]+) passed, ([0-9]+) failed$' \
    tests/install/run.sh
counted "meson consumer: meson-glue as a subproject, the C tests under meson test" \
    '^meson consumer: ([0-9]+) passed, ([0-9]+) failed$' tests/meson-consumer/run.sh
counted "QEMU tests on the patched build" '^qemu tests: ([0-9]+) passed, ([0-9]+) failed$' \
    tests/qemu/run-qemu-tests.sh "$BUILD_PATCHED"
counted "Linux guest on virtio-9p" '^guest: ([0-9]+) passed, ([0-9]+) failed$' \
    tests/guest/run-guest-test.sh "$BUILD_PATCHED/qemu-system-x86_64"

((${#failed_stages[@]})) && printf 'failed: %s\n' "${failed_stages[@]}"
echo "check: $passed passed, $failed failed"
((failed == 0))
