#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Make $PATCHED: a git tree of $PRISTINE with qemu-patches/series applied by
# `git am` (so every patch must apply, in order, on the pinned tree), plus
# the subprojects/qemurs symlink to meson-glue/.  Re-applies only when the
# series or the source changed; `git reset --hard` rewrites only the files
# that differ, so the QEMU build stays incremental.
source "$(dirname "$0")/common.sh"

series_dir=$REPO_ROOT/qemu-patches
want=$(series_hash)
git_q() { git -C "$PATCHED" -c user.name=qemurs -c user.email=qemurs@localhost \
              -c advice.detachedHead=false "$@"; }

if [ ! -d "$PATCHED/.git" ] ||
   [ "$(cat "$PATCHED/.qemurs-pristine" 2>/dev/null)" != "$(cat "$PRISTINE/.qemurs-source")" ]; then
    say "creating patched tree $PATCHED"
    rm -rf "$PATCHED"
    cp -a "$PRISTINE" "$PATCHED"
    chown -R "$(id -u):$(id -g)" "$PATCHED"  # git refuses trees owned by others
    git_q init -q
    git_q add -A -f .
    git_q commit -q -m "QEMU $(cat "$PATCHED/VERSION") (pristine)"
    git_q tag qemurs-base
    printf '%s\n' /.qemurs-* /subprojects/qemurs >>"$PATCHED/.git/info/exclude"
    cp "$PRISTINE/.qemurs-source" "$PATCHED/.qemurs-pristine"
fi

ln -sfn "$REPO_ROOT/meson-glue" "$PATCHED/subprojects/qemurs"

if [ "$(cat "$PATCHED/.qemurs-series" 2>/dev/null)" != "$want" ]; then
    say "applying qemu-patches/series"
    git_q am --abort >/dev/null 2>&1 || true
    git_q reset -q --hard qemurs-base
    while read -r p; do
        case $p in ''|'#'*) continue ;; esac
        git_q am -q --keep-cr "$series_dir/$p" || die "patch $p does not apply"
        echo "  applied $p" >&2
    done <"$series_dir/series"
    echo "$want" >"$PATCHED/.qemurs-series"
fi
