#!/bin/sh
# A fake cloud for the reaper tests: deletes "running VMs" from a directory.
#
#   fake-provider.sh delete VM_ID ZONE [SESSION_ID]
#
# FAKE_CLOUD_DIR holds one file per running VM (named after it). Each call
# appends "call VM_ID ZONE SESSION PID" to $FAKE_CLOUD_DIR/calls.log when it
# starts, "deleted VM_ID" once the VM file is gone, and "end VM_ID PID" when
# it exits (a call killed before that has no "end"). Behaviour, read at
# each call from files in FAKE_CLOUD_DIR:
#   mode       "ok" (default), "fail" (exit 1), "hang" (sleep 60)
#   hold       while this file exists, wait before deleting (at most 20 s)
#   delay      seconds to wait before deleting, in a child process of the
#              call's process group, which appends "sleeping VM_ID PID"
#              when it starts and "slept VM_ID PID" when done: it outlives
#              a call killed meanwhile, as what a real provider started
#              would
# A VM that does not exist is reported as gcloud does ("was not found",
# exit 1).
set -u
dir=${FAKE_CLOUD_DIR:?FAKE_CLOUD_DIR is not set}
[ "$#" -ge 3 ] && [ "$1" = delete ] || { echo "usage: $0 delete VM ZONE [SESSION]" >&2; exit 2; }
vm=$2
zone=$3
session=${4:--}
pid=$$

finish () {
    echo "end $vm $pid" >> "$dir/calls.log"
    exit "$1"
}

echo "call $vm $zone $session $pid" >> "$dir/calls.log"
echo "Deleting instance $vm in $zone"

mode=ok
[ -f "$dir/mode" ] && mode=$(cat "$dir/mode")

i=0
while [ -e "$dir/hold" ] && [ "$i" -lt 200 ]; do
    sleep 0.1
    i=$((i + 1))
done

if [ -f "$dir/delay" ]; then
    delay=$(cat "$dir/delay")
    (echo "sleeping $vm $pid" >> "$dir/calls.log"; sleep "$delay"; echo "slept $vm $pid" >> "$dir/calls.log")
fi

case $mode in
    fail)
        echo "ERROR: (fake) quota exceeded while deleting $vm" >&2
        finish 1 ;;
    hang)
        sleep 60
        finish 0 ;;
esac

if rm "$dir/vms/$vm" 2>/dev/null; then
    echo "deleted $vm" >> "$dir/calls.log"
    echo "Deleted [$vm]."
    finish 0
fi
echo "ERROR: (fake) The resource 'zones/$zone/instances/$vm' was not found" >&2
finish 1
