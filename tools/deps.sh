# Sourced by the scripts in tools/: installs the Debian packages the build,
# the tests and the demo need, if any is missing.

GSM_DEBIAN_PACKAGES="meson ninja-build pkg-config gcc libglib2.0-dev libjson-glib-dev
gobject-introspection libgirepository1.0-dev gir1.2-glib-2.0 gir1.2-json-1.0 gjs python3-gi
python3-pytest gi-docgen dbus-daemon dbus-bin libsoup-3.0-dev etcd-server etcd-client valgrind
clang libclang-rt-14-dev util-linux procps openssl
git debhelper dh-python dpkg-dev gnome-desktop-testing lintian scdoc bash-completion"

gsm_ensure_deps () {
    missing=""
    for p in $GSM_DEBIAN_PACKAGES; do
        if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
            missing="$missing $p"
        fi
    done
    [ -z "$missing" ] && return 0
    echo "Installing missing Debian packages:$missing"
    if [ "$(id -u)" -ne 0 ]; then
        SUDO=sudo
    else
        SUDO=
    fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    # shellcheck disable=SC2086
    $SUDO apt-get install -y -q --no-install-recommends $missing
}

gsm_setup_build () {
    builddir=$1
    shift
    if [ ! -f "$builddir/build.ninja" ]; then
        meson setup "$builddir" "$@"
    fi
    meson compile -C "$builddir"
}

# Copies this checkout as it is (tracked files and new ones that are not
# ignored, with their changes; no build directory) into the new directory
# $1, as a fresh clone would be but for the uncommitted changes.
gsm_copy_checkout () {
    dest=$1
    mkdir -p "$dest"
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard |
            tar --null --files-from=- --ignore-failed-read -cf - 2>/dev/null |
            tar -xf - -C "$dest"
    else
        tar --exclude='./_build*' --exclude='./build*' --exclude='./obj-*' -cf - . |
            tar -xf - -C "$dest"
    fi
}
