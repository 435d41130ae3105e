#!/bin/sh
# The main job of gsm-session, end to end: three worker processes each own
# a VM; one is killed with SIGKILL; gsm-session sees it dead, keeps its VM
# on record as an orphan, leaves the other two alone, and then the reaper
# deletes the orphan VM (and only it) and writes the audit log. Then a
# worker creates its VM (labelled with its session) and crashes before it
# registers it: the registry never heard of that VM, and the
# reconciliation of the cloud's inventory finds it and deletes it.
#
# Installs missing Debian packages (apt-get), builds, then runs everything
# in a throwaway runtime directory. Nothing real is deleted: no cloud
# command runs; a fake provider (tests/reaper/fake-provider.sh) deletes
# files standing for VMs, and a fake gcloud (tests/reaper/fake-clouds/,
# python3) keeps its "cloud" in a JSON file.
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
daemons=""

finish () {
    for pid in $workers; do
        kill -9 "$pid" 2>/dev/null || true
    done
    for pid in $daemons; do
        kill "$pid" 2>/dev/null || true
    done
    # gsmd leaves the registry as it exits: let it finish first.
    wait 2>/dev/null || true
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

# wait_for FILE PATTERN: until FILE has a line matching PATTERN (10 s at most).
wait_for () {
    n=0
    while ! grep -q "$2" "$1" 2>/dev/null; do
        n=$((n + 1))
        if [ $n -gt 200 ]; then
            echo "demo: timed out waiting for '$2' in $1" >&2
            exit 1
        fi
        sleep 0.05
    done
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

step "gsmctl cleanup (a dry run by default): what a cleanup would do, without doing it"
run "$gsmctl" cleanup

step "gsmctl cleanup --yes: worker 2 is recorded as stale; its VM stays on record until it is deleted"
run "$gsmctl" cleanup --yes

step "gsmctl list: workers 1 and 3 and their VMs are untouched"
run "$gsmctl" list

step "gsmctl stats"
run "$gsmctl" stats

step "The registry file itself (the original design's format)"
run cat "$GSM_RUNTIME_DIR/vm_registry.json"

step "The cloud, simulated: one file per running VM (the provider deletes VMs by deleting files)"
FAKE_CLOUD_DIR="$GSM_RUNTIME_DIR/fake-cloud"
export FAKE_CLOUD_DIR
mkdir -p "$FAKE_CLOUD_DIR/vms"
for i in 1 2 3; do : > "$FAKE_CLOUD_DIR/vms/demo-vm-$i"; done
run ls "$FAKE_CLOUD_DIR/vms"

# The provider is a command template, run without a shell; by default it is
# gcloud compute instances delete {vm_id} --zone {zone} --quiet
GSM_PROVIDER_COMMAND="/bin/sh $(pwd)/tests/reaper/fake-provider.sh delete {vm_id} {zone} {session_id}"
GSM_PROVIDER_NOT_FOUND_PATTERN="was not found"
GSM_REAP_GRACE=2
export GSM_PROVIDER_COMMAND GSM_PROVIDER_NOT_FOUND_PATTERN GSM_REAP_GRACE
echo "provider: $GSM_PROVIDER_COMMAND"
echo "grace period: $GSM_REAP_GRACE s after a session is found dead (default 10)"

step "gsmctl reap (a dry run by default): worker 2 died less than the grace period ago"
run "$gsmctl" reap

sleep "$GSM_REAP_GRACE"
step "gsmctl reap, once the grace period is over: exactly the VMs --yes would delete"
run "$gsmctl" reap

step "gsmctl reap --yes: deletes that list (each VM claimed in the registry first)"
run "$gsmctl" reap --yes

step "The cloud: demo-vm-2 is gone, demo-vm-1 and demo-vm-3 still run"
run ls "$FAKE_CLOUD_DIR/vms"

step "gsmctl list: worker 2's entry is gone; workers 1 and 3 still own their VMs"
run "$gsmctl" list

step "gsmctl reap --yes again: live sessions' VMs are never touched"
run "$gsmctl" reap --yes

step "gsmctl history: the audit log of every deletion attempt"
run "$gsmctl" history

step "The audit log itself: JSON lines in the runtime directory, mode 0600"
run ls -l "$GSM_RUNTIME_DIR/reap_audit.log"
run cat "$GSM_RUNTIME_DIR/reap_audit.log"

step "A VM the registry never heard of: a fifth worker creates its VM with gcloud, then crashes before registering it"
# The gcloud on PATH is the tests' fake one; the provider is the gcloud preset.
PATH="$(pwd)/tests/reaper/fake-clouds:$PATH"
FAKE_CLOUD_STATE="$GSM_RUNTIME_DIR/fake-gcloud.json"
GSM_CONFIG_FILE="$GSM_RUNTIME_DIR/config.ini"
export PATH FAKE_CLOUD_STATE GSM_CONFIG_FILE
unset GSM_PROVIDER_COMMAND GSM_PROVIDER_NOT_FOUND_PATTERN
printf '[provider]\npreset=gcloud\n' > "$GSM_CONFIG_FILE"
echo "config ($GSM_CONFIG_FILE):"
sed 's/^/    /' "$GSM_CONFIG_FILE"
echo "The worker asks gsm_session_manager_get_vm_labels() for its labels and runs"
echo "  gcloud compute instances create demo-vm-5 --zone us-central1-a --labels=gsm-host=…,gsm-registry=…,gsm-session=…"
GSM_TEST_WORKER_CREATE=gcloud GSM_TEST_WORKER_SKIP_REGISTER=1 \
    "$worker" register demo-vm-5 us-central1-a > "$GSM_RUNTIME_DIR/worker-5.out" 2>/dev/null &
worker_5=$!
workers="$workers $worker_5"
wait_for "$GSM_RUNTIME_DIR/worker-5.out" READY
run kill -9 "$worker_5"
wait "$worker_5" 2>/dev/null || true

step "gsmctl list: no entry records demo-vm-5 (the process died before register_vm)"
run "$gsmctl" list

step "The cloud does: the VM carries the labels of the session that made it"
run gcloud compute instances list --format=json

step "gsmctl reconcile (a dry run): the cloud's inventory against the registry"
run "$gsmctl" reconcile

sleep "$GSM_REAP_GRACE"
step "gsmctl reconcile, once the VM is older than the grace period: an orphan (still a dry run)"
run "$gsmctl" reconcile

step "gsmctl reconcile --yes: recorded in the registry, claimed, deleted, audited"
run "$gsmctl" reconcile --yes

step "The cloud: demo-vm-5 is gone"
run gcloud compute instances list --format=json

step "gsmctl history: the deletion of demo-vm-5, owner the crashed session"
run "$gsmctl" history

step "gsmd: the registry on D-Bus, live (here on a private session bus started for the demo)"
bus_out=$(dbus-daemon --session --fork --print-address=1 --print-pid=1)
DBUS_SESSION_BUS_ADDRESS=$(echo "$bus_out" | sed -n 1p)
export DBUS_SESSION_BUS_ADDRESS
daemons="$daemons $(echo "$bus_out" | sed -n 2p)"
echo '$ gsmd &'
"$builddir/src/gsmd" 2> "$GSM_RUNTIME_DIR/gsmd.log" &
daemons="$! $daemons"
gdbus wait --session --timeout 10 org.gsm.SessionManager1
echo '$ gsmctl watch &                                          (live events, from gsmd)'
"$gsmctl" watch > "$GSM_RUNTIME_DIR/watch.out" &
daemons="$! $daemons"
echo '$ gdbus monitor --session --dest org.gsm.SessionManager1 &  (the raw D-Bus signals)'
gdbus monitor --session --dest org.gsm.SessionManager1 > "$GSM_RUNTIME_DIR/monitor.out" &
daemons="$! $daemons"
wait_for "$GSM_RUNTIME_DIR/watch.out" Watching
wait_for "$GSM_RUNTIME_DIR/monitor.out" "is owned by"

step "A fourth worker registers demo-vm-4, then crashes (kill -9); gsmd holds a pidfd on it"
"$worker" register demo-vm-4 us-central1-a > "$GSM_RUNTIME_DIR/worker-4.out" &
worker_4=$!
workers="$workers $worker_4"
wait_for "$GSM_RUNTIME_DIR/worker-4.out" READY
wait_for "$GSM_RUNTIME_DIR/watch.out" "vm-registered.*demo-vm-4"
run kill -9 "$worker_4"
wait "$worker_4" 2>/dev/null || true
wait_for "$GSM_RUNTIME_DIR/watch.out" "session-stale.*demo-vm-4"

step "What gsmctl watch printed (SessionStale comes within milliseconds of the kill)"
run cat "$GSM_RUNTIME_DIR/watch.out"

step "What gdbus monitor saw (PropertiesChanged, which carries every session, left out)"
grep -v PropertiesChanged "$GSM_RUNTIME_DIR/monitor.out"

step "gsmctl list --bus: the same registry, asked from gsmd (the session without a VM is gsmd's own)"
run "$gsmctl" list --bus

step "gsmctl stats --bus --json"
run "$gsmctl" stats --bus --json
