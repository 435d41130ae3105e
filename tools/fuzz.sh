#!/bin/sh
# tools/fuzz.sh [SECONDS] [TARGET...]
#
# Builds the libFuzzer targets of tests/fuzz with clang and
# -fsanitize=fuzzer,address,undefined (build directory _build-fuzz, or
# $GSM_FUZZ_BUILDDIR), then runs each target for SECONDS (default 60),
# starting from its corpus in tests/fuzz/corpus. Fails if any target finds
# a crash, a leak, a timeout or a sanitizer report; the input is kept in
# BUILDDIR/fuzz-artifacts/TARGET/ and belongs in tests/fuzz/corpus/TARGET/
# once the bug is fixed (the corpus is replayed by `meson test`).
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
gsm_ensure_deps

seconds=${1:-60}
[ $# -gt 0 ] && shift
targets=${*:-"json registry session-file tracker config etcd"}
builddir=${GSM_FUZZ_BUILDDIR:-_build-fuzz}

if [ ! -f "$builddir/build.ninja" ]; then
    CC=clang meson setup "$builddir" -Dfuzzing=true \
        -Db_sanitize=address,undefined -Db_lundef=false \
        -Dc_args="-fsanitize=fuzzer-no-link -fno-sanitize-recover=all"
fi
meson compile -C "$builddir"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export G_SLICE=always-malloc
export GSM_DURABLE=0
# The targets work in a private temporary directory: keep it in memory.
if [ -z "${TMPDIR:-}" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
    export TMPDIR=/dev/shm
fi

status=0
summary=""
for t in $targets; do
    exe="$builddir/tests/fuzz/fuzz-$t"
    work="$builddir/fuzz-corpus/$t"
    artifacts="$builddir/fuzz-artifacts/$t/"
    log="$builddir/fuzz-$t.log"
    mkdir -p "$work" "$artifacts"
    seeds="tests/fuzz/corpus/$t"
    [ "$t" = json ] && seeds="$seeds tests/fuzz/corpus/registry"

    echo "== fuzz-$t for ${seconds}s"
    start=$(date +%s)
    # shellcheck disable=SC2086
    if "$exe" "$work" $seeds -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 \
        -max_len=16384 -print_final_stats=1 -artifact_prefix="$artifacts" >"$log" 2>&1; then
        result=ok
    else
        result=FAILED
        status=1
        tail -n 60 "$log"
    fi
    elapsed=$(( $(date +%s) - start ))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
    secs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -n 1)
    line="fuzz-$t: $result, ${runs:-?} executions in ${elapsed}s (${secs:-?}/s), corpus $(ls "$work" | wc -l) files"
    echo "$line"
    summary="$summary$line
"
done

echo "== fuzz summary"
printf '%s' "$summary"
exit $status
