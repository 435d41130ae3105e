#!/bin/sh
# Measures revisions side by side, to see what a change buys: builds each
# one (optimised) with this checkout's gsm-bench, then runs each group
# once per revision, one revision after the other, so that all see the
# machine in the same state. Prints the rows of each revision under its
# name.
#
# Usage: tools/bench-compare.sh REV REV [REV...]
# GSM_BENCH_GROUPS: the groups, as gsm-bench --only takes them; by
# default cycles, listing and processes (the figures users see in the
# default mode).
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
gsm_ensure_deps

[ $# -ge 2 ] || { echo "usage: $0 REV REV [REV...]" >&2; exit 2; }
groups=${GSM_BENCH_GROUPS:-cycles listing processes}

top=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/gsm-bench-compare-XXXXXX")
cleanup () {
    for tree in "$work"/rev-*; do
        [ -d "$tree" ] && git -C "$top" worktree remove --force "$tree" 2>/dev/null
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

i=0
for rev in "$@"; do
    i=$((i + 1))
    tree="$work/rev-$i"
    git worktree add --quiet --detach "$tree" "$rev"
    # The same measuring program for every revision.
    cp tools/gsm-bench.c tools/gsm-bench-gi.py tools/gsm-bench-seed.py "$tree/tools/"
    meson setup --buildtype=release "$tree/_build" "$tree" >/dev/null
    ninja -C "$tree/_build" >/dev/null
done

for group in $groups; do
    i=0
    for rev in "$@"; do
        i=$((i + 1))
        tree="$work/rev-$i"
        echo "== $group: $rev ($(git rev-parse --short "$rev"))"
        GI_TYPELIB_PATH="$tree/_build/introspection" \
        LD_LIBRARY_PATH="$tree/_build/src" \
        GSM_BENCH_SRCDIR="$tree/tools" \
        GSM_PROVIDER_EXEC="$tree/_build/src/gsm-provider-exec" \
            "$tree/_build/tools/gsm-bench" --only "$group" | sed 1d
    done
done
