#!/bin/sh
# The main job of gsm-session, end to end: three worker processes each own
# a VM; one is killed with SIGKILL; gsm-session sees it dead, keeps its VM
# on record as an orphan, and leaves the other two alone.
#
# Installs missing Debian packages (apt-get), builds, then runs everything
# in a throwaway runtime directory. Nothing real is deleted: no cloud
# command runs.
set -eu
cd "$(dirname "$0")/.."
. tools/deps.sh
gsm_ensure_deps

builddir=${GSM_BUILDDIR:-_build}
gsm_setup_build "$builddir" >/dev/null

worker="$builddir/tests/gsm-test-worker"
gsmctl="$builddir/src/gsmctl"

GSM_RUNTIME_DIR=$(mktemp -d "${TMPDIR:-/tmp}/gsm-demo-XXXXXX")
export GSM_RUNTIME_DIR
workers=""

finish () {
    for pid in $workers; do
        kill -9 "$pid" 2>/dev/null || true
    done
    rm -rf "$GSM_RUNTIME_DIR"
}
trap finish EXIT INT TERM

step () {
    printf '\n\033[1m== %s\033[0m\n' "$*"
}

run () {
    printf '$ %s\n' "$*"
    "$@"
}

step "The registry lives in $GSM_RUNTIME_DIR (GSM_RUNTIME_DIR; by default ~/.local/state/gsm-session)"

step "Three worker processes start, and each registers the VM it created"
for i in 1 2 3; do
    "$worker" register "demo-vm-$i" us-central1-a > "$GSM_RUNTIME_DIR/worker-$i.out" &
    workers="$workers $!"
    eval "worker_$i=$!"
done
for i in 1 2 3; do
    while ! grep -q READY "$GSM_RUNTIME_DIR/worker-$i.out" 2>/dev/null; do sleep 0.05; done
    eval "echo \"worker $i: pid \$worker_$i owns demo-vm-$i\""
done

step "gsmctl list: every session, the VM it owns, and whether it is alive"
run "$gsmctl" list

step "Worker 2 crashes (kill -9): it gets no chance to clean up"
run kill -9 "$worker_2"
wait "$worker_2" 2>/dev/null || true

step "gsmctl list: worker 2 is stale (its pid is gone), its VM is now an orphan"
run "$gsmctl" list

step "gsmctl cleanup --dry-run: what a cleanup would do, without doing it"
run "$gsmctl" cleanup --dry-run

step "gsmctl cleanup: worker 2 is recorded as stale; its VM stays on record until it is deleted"
run "$gsmctl" cleanup

step "gsmctl list: workers 1 and 3 and their VMs are untouched"
run "$gsmctl" list

step "gsmctl stats"
run "$gsmctl" stats

step "The registry file itself (the original design's format)"
run cat "$GSM_RUNTIME_DIR/vm_registry.json"
