#!/bin/sh
# Builds gsm-session and runs every test suite; exits non-zero on any
# failure. Installs missing Debian packages first (apt-get).
#
#   GSM_FUZZ_SECONDS   time per fuzz target (default 60; 0 skips fuzzing)
#   GSM_PACKAGES       0 skips building, installing and testing the Debian
#                      packages (tools/test-packages.sh; default 1 as root)
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
gsm_ensure_deps

builddir=${GSM_BUILDDIR:-_build}
gsm_setup_build "$builddir"

status=0
echo "== all suites"
meson test -C "$builddir" --print-errorlogs --num-processes 2 || status=1

echo "== every C suite under valgrind (leaks and memory errors)"
meson test -C "$builddir" --setup=valgrind --print-errorlogs --num-processes 2 \
    --no-suite python --no-suite javascript --no-suite timing || status=1

echo "== every C suite under AddressSanitizer + UndefinedBehaviorSanitizer"
# (The Python and JavaScript suites load the library into an interpreter
# that is not built with ASan, which cannot work.)
asandir=${GSM_ASAN_BUILDDIR:-_build-asan}
gsm_setup_build "$asandir" -Db_sanitize=address,undefined -Db_lundef=false
meson test -C "$asandir" --setup=sanitize --print-errorlogs --num-processes 2 \
    --no-suite python --no-suite javascript || status=1

fuzz_seconds=${GSM_FUZZ_SECONDS:-60}
if [ "$fuzz_seconds" -gt 0 ]; then
    echo "== fuzz targets, ${fuzz_seconds}s each"
    tools/fuzz.sh "$fuzz_seconds" || status=1
fi

echo "== the tests that switch users, from a checkout in a 0700 directory (-Detcd=disabled)"
tools/test-private-checkout.sh || status=1

if [ "${GSM_PACKAGES:-1}" != 0 ]; then
    if [ "$(id -u)" -eq 0 ] || sudo -n true 2>/dev/null; then
        echo "== Debian packages: build, lintian, install, installed tests, purge"
        tools/test-packages.sh || status=1
    else
        echo "== Debian packages: SKIP (installing them needs root or sudo)"
    fi
fi

exit $status
