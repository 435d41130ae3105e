#!/bin/sh
# Measures two revisions side by side, to see what a change buys: builds
# each one (optimised) with this checkout's gsm-bench, then runs each
# group once per revision, alternately, so that both see the machine in
# the same state. Prints the rows of each revision under its name.
#
# Usage: tools/bench-compare.sh REV_A REV_B [GROUP...]
# Groups as gsm-bench --only takes them; by default cycles, listing and
# processes (the figures users see in the default mode).
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
gsm_ensure_deps

[ $# -ge 2 ] || { echo "usage: $0 REV_A REV_B [GROUP...]" >&2; exit 2; }
rev_a=$1
rev_b=$2
shift 2
groups=${*:-cycles listing processes}

top=$PWD
work=$(mktemp -d "${TMPDIR:-/tmp}/gsm-bench-compare-XXXXXX")
cleanup () {
    for side in a b; do
        git -C "$top" worktree remove --force "$work/$side" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

for side in a b; do
    if [ $side = a ]; then rev=$rev_a; else rev=$rev_b; fi
    git worktree add --quiet --detach "$work/$side" "$rev"
    # The same measuring program on both sides.
    cp tools/gsm-bench.c tools/gsm-bench-gi.py tools/gsm-bench-seed.py "$work/$side/tools/"
    meson setup --quiet --buildtype=release "$work/$side/_build" "$work/$side" >/dev/null
    ninja -C "$work/$side/_build" >/dev/null
done

for group in $groups; do
    for side in a b; do
        if [ $side = a ]; then rev=$rev_a; else rev=$rev_b; fi
        echo "== $group: $rev ($(git rev-parse --short "$rev"))"
        GI_TYPELIB_PATH="$work/$side/_build/introspection" \
        LD_LIBRARY_PATH="$work/$side/_build/src" \
        GSM_BENCH_SRCDIR="$work/$side/tools" \
        GSM_PROVIDER_EXEC="$work/$side/_build/src/gsm-provider-exec" \
            "$work/$side/_build/tools/gsm-bench" --only "$group" | sed 1d
    done
done
