#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
# For developers: after committing changes in $PATCHED (on top of the tag
# qemurs-base), write them back to qemu-patches/ as numbered format-patch
# files and rewrite the series file.
source "$(dirname "$0")/common.sh"

out=$REPO_ROOT/qemu-patches
rm -f "$out"/[0-9][0-9][0-9][0-9]-*.patch
git -C "$PATCHED" format-patch -q --no-signature --zero-commit -N -o "$out" qemurs-base..HEAD
{
    echo "# SPDX-License-Identifier: GPL-2.0-or-later"
    echo "# Applied in order by scripts/apply-series.sh (git am) on QEMU $QEMU_VERSION."
    (cd "$out" && ls [0-9][0-9][0-9][0-9]-*.patch)
} >"$out/series"
# The tree now matches the series: record that, so no re-apply is needed.
want=$(series_hash)
echo "$want" >"$PATCHED/.qemurs-series"
cat "$out/series"
