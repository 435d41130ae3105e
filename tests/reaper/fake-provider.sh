#!/bin/sh
# A fake cloud for the reaper tests: deletes "running VMs" from a directory.
#
#   fake-provider.sh delete VM_ID ZONE [SESSION_ID]
#
# FAKE_CLOUD_DIR holds one file per running VM (named after it). Each call
# appends "call VM_ID ZONE SESSION PID" to $FAKE_CLOUD_DIR/calls.log, and
# "deleted VM_ID" once the VM file is gone. Behaviour, read at each call
# from files in FAKE_CLOUD_DIR:
#   mode       "ok" (default), "fail" (exit 1), "hang" (sleep 60)
#   hold       while this file exists, wait before deleting (at most 20 s)
# A VM that does not exist is reported as gcloud does ("was not found",
# exit 1).
set -u
dir=${FAKE_CLOUD_DIR:?FAKE_CLOUD_DIR is not set}
[ "$#" -ge 3 ] && [ "$1" = delete ] || { echo "usage: $0 delete VM ZONE [SESSION]" >&2; exit 2; }
vm=$2
zone=$3
session=${4:--}

echo "call $vm $zone $session $$" >> "$dir/calls.log"
echo "Deleting instance $vm in $zone"

mode=ok
[ -f "$dir/mode" ] && mode=$(cat "$dir/mode")

i=0
while [ -e "$dir/hold" ] && [ "$i" -lt 200 ]; do
    sleep 0.1
    i=$((i + 1))
done

case $mode in
    fail)
        echo "ERROR: (fake) quota exceeded while deleting $vm" >&2
        exit 1 ;;
    hang)
        sleep 60
        exit 0 ;;
esac

if rm "$dir/vms/$vm" 2>/dev/null; then
    echo "deleted $vm" >> "$dir/calls.log"
    echo "Deleted [$vm]."
    exit 0
fi
echo "ERROR: (fake) The resource 'zones/$zone/instances/$vm' was not found" >&2
exit 1
