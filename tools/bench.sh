#!/bin/sh
# Builds gsm-session (optimised) and runs gsm-bench. Arguments go to
# gsm-bench (--json, --quick).
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
gsm_ensure_deps
builddir=${GSM_BENCH_BUILDDIR:-_build-bench}
gsm_setup_build "$builddir" --buildtype=release
GI_TYPELIB_PATH="$PWD/$builddir/introspection" \
LD_LIBRARY_PATH="$PWD/$builddir/src" \
GSM_BENCH_SRCDIR="$PWD/tools" \
GSM_PROVIDER_EXEC="$PWD/$builddir/src/gsm-provider-exec" \
    "$builddir/tools/gsm-bench" "$@"
