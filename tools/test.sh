#!/bin/sh
# Builds gsm-session and runs every test suite; exits non-zero on any
# failure. Installs missing Debian packages first (apt-get).
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
gsm_ensure_deps

builddir=${GSM_BUILDDIR:-_build}
gsm_setup_build "$builddir"

status=0
echo "== all suites"
meson test -C "$builddir" --print-errorlogs --num-processes 2 || status=1

echo "== C suites under valgrind (leaks and memory errors)"
meson test -C "$builddir" --setup=valgrind --print-errorlogs --num-processes 2 \
    --suite unit --suite multiprocess || status=1

exit $status
