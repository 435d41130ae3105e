#!/bin/sh
# Builds the Debian packages of debian/ from a clean copy of this checkout
# (dpkg-buildpackage -us -uc -b; DEB_BUILD_OPTIONS=nocheck, as the suites
# ran already), checks them with lintian (errors fail), installs them with
# apt-get, runs the installed tests with gnome-desktop-testing-runner in
# an empty environment (no GSM_*, LD_* or GI_* variable: the installed
# library, typelib and tools alone), then purges the packages again.
#
# Needs root or sudo to install. Refuses to touch a system where one of the
# packages is installed already (it would remove it).
#
#   GSM_PACKAGES_DIR   keep the packages there (default: a temporary directory)
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
gsm_ensure_deps

if [ "$(id -u)" -ne 0 ]; then
    SUDO=sudo
else
    SUDO=
fi
packages=$(sed -n 's/^Package: *//p' debian/control)
for p in $packages; do
    if dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
        echo "FAIL: $p is installed already; remove it first (this script would purge it)"
        exit 1
    fi
done

work=$(mktemp -d "${TMPDIR:-/tmp}/gsm-packages-XXXXXX")
installed=0
cleanup () {
    if [ "$installed" -eq 1 ]; then
        echo "== removing the packages"
        # shellcheck disable=SC2086
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get purge -y -q $packages >/dev/null
    fi
    rm -rf "$work"
}
trap cleanup EXIT

echo "== building the Debian packages"
gsm_copy_checkout "$work/gsm-session"
(cd "$work/gsm-session" &&
    DEB_BUILD_OPTIONS="nocheck parallel=$(nproc)" dpkg-buildpackage -us -uc -b >"$work/build.log" 2>&1) || {
    tail -50 "$work/build.log"
    echo "FAIL: dpkg-buildpackage (log above)"
    exit 1
}
debs=$(cd "$work" && ls ./*.deb | grep -v -- -dbgsym_)
echo "$debs" | sed 's|^\./|  |'
if [ -n "${GSM_PACKAGES_DIR:-}" ]; then
    mkdir -p "$GSM_PACKAGES_DIR"
    cp "$work"/*.deb "$work"/*.changes "$work"/*.buildinfo "$GSM_PACKAGES_DIR"
fi

echo "== lintian"
lintian --fail-on error "$work"/*.changes

echo "== installing them"
installed=1
# shellcheck disable=SC2086
(cd "$work" && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q $debs >/dev/null)

echo "== the tools' version, man pages and completion"
for f in /usr/share/man/man1/gsmctl.1.gz /usr/share/man/man8/gsmd.8.gz \
         /usr/share/bash-completion/completions/gsmctl; do
    [ -f "$f" ] || { echo "FAIL: $f is not installed"; exit 1; }
done
gsmctl --version && gsmd --version || { echo "FAIL: --version"; exit 1; }

echo "== installed tests (gnome-desktop-testing-runner gsm-session-1.0)"
(cd "$work" && env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin HOME="$HOME" LANG=C.UTF-8 \
    gnome-desktop-testing-runner --timeout=300 --report-directory="$work/failed" gsm-session-1.0) || {
    find "$work/failed" -type f -exec tail -40 {} + 2>/dev/null
    echo "FAIL: installed tests"
    exit 1
}

echo "== removing the packages"
# shellcheck disable=SC2086
DEBIAN_FRONTEND=noninteractive $SUDO apt-get purge -y -q $packages >/dev/null
installed=0
left=$(dpkg-query -W -f='${Package} ${Status}\n' $packages 2>/dev/null | grep -v "not-installed" || true)
if [ -n "$left" ] || [ -e /usr/libexec/installed-tests/gsm-session-1.0 ] ||
       ls /usr/lib/*/libgsm-session-1.0.so* >/dev/null 2>&1; then
    echo "FAIL: left behind after purge:"
    echo "$left"
    exit 1
fi
echo "packages built, installed, tested and removed"
