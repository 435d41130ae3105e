#!/bin/sh
# Runs the tests that run something as another user (nobody) from a copy
# of this checkout in a directory only its owner can enter (mode 0700, as
# root's home or a `mktemp -d`), where that user cannot reach the build
# tree: each such test must stage what it runs where the user can reach it
# (tests/helpers/gsm-test-other-user.h) or skip saying why.
#
# The copy is configured -Detcd=disabled, so the same build shows that the
# library then links no libsoup and refuses an etcd registry clearly
# (tests/core/test-no-etcd.c). Root only (the tests need it to switch
# users); anyone else gets a message and exit status 0.
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh

if [ "$(id -u)" -ne 0 ]; then
    echo "SKIP: the tests that switch users need root"
    exit 0
fi
gsm_ensure_deps

private=$(mktemp -d "${TMPDIR:-/tmp}/gsm-private-XXXXXX")
trap 'rm -rf "$private"' EXIT
chmod 0700 "$private"
gsm_copy_checkout "$private/gsm-session"
cd "$private/gsm-session"

echo "in $PWD (mode 0700 above it)"
if ! { meson setup _build -Detcd=disabled -Ddocumentation=disabled &&
       meson compile -C _build; } >"$private/build.log" 2>&1; then
    tail -40 "$private/build.log"
    echo "FAIL: the build (log above)"
    exit 1
fi
# The unit suite has test-no-etcd; hardening and dbus have every test that
# runs a program as nobody.
meson test -C _build --no-rebuild --print-errorlogs --num-processes 2 \
    --suite unit --suite hardening --suite dbus
! readelf -d _build/src/libgsm-session-1.0.so | grep -q libsoup || {
    echo "FAIL: built with -Detcd=disabled, the library still links libsoup"
    exit 1
}
