#!/usr/bin/python3
# cleanup_vms.py: the shutdown cleanup flow, in Python
#
# A process that starts a cloud VM reserves its name first and confirms it
# once created; when it shuts down it deletes the VM it owns, and only that
# one, then unregisters it.
#
#   cleanup_vms.py --register VM_ID [--zone ZONE]   simulate a deployment first
#   cleanup_vms.py --delete-command 'echo deleting {vm_id} in {zone}'
#
# The delete command defaults to
# `gcloud compute instances delete {vm_id} --zone {zone} --quiet`.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import argparse
import shlex
import subprocess
import sys

import gi

gi.require_version('GLib', '2.0')
gi.require_version('Gsm', '1.0')
from gi.repository import GLib, Gsm  # noqa: E402

DEFAULT_DELETE = 'gcloud compute instances delete {vm_id} --zone {zone} --quiet'


def cleanup_vms(delete_command):
    """Called during shutdown to delete this session's VM. Needs no main
    loop: it only uses the _sync() calls."""
    if not Gsm.SessionManager.is_available():
        print('Session manager not initialized yet; initializing now')
    manager = Gsm.SessionManager.get_default()

    my_vm = manager.get_my_vm_sync(None)
    if my_vm is None:
        print('No VM registered to this session')
        return True

    argv = [arg.format(vm_id=my_vm.props.vm_id, zone=my_vm.props.zone)
            for arg in shlex.split(delete_command)]
    result = subprocess.run(argv)
    if result.returncode != 0:
        # Keep the registration: the reaper of another process will see the
        # VM once this session is gone.
        print(f'Could not delete VM {my_vm.props.vm_id} (exit status {result.returncode})')
        return False

    manager.unregister_vm_sync(None)
    print(f'Deleted VM {my_vm.props.vm_id}')
    return True


def main():
    parser = argparse.ArgumentParser(description='Delete the VM this session owns.')
    parser.add_argument('--register', metavar='VM_ID', help='first register VM_ID, as a deployment would')
    parser.add_argument('--zone', default='us-central1-a')
    parser.add_argument('--component', action='append', default=[], help='what runs on the VM')
    parser.add_argument('--delete-command', default=DEFAULT_DELETE,
                        help='command deleting {vm_id} in {zone} (default: %(default)s)')
    args = parser.parse_args()

    manager = Gsm.SessionManager.get_default()
    try:
        if args.register:
            # The recommended flow: reserve the name before the cloud call
            # (a crash during it leaves an orphan for the reaper, not a VM
            # nobody knows of), create the VM, then confirm it.
            manager.reserve_vm_sync(args.register, args.zone, args.component or None,
                                    GLib.Variant('a{sv}', {'trigger': GLib.Variant('s', 'example')}),
                                    None)
            # ... the cloud call that creates args.register goes here ...
            manager.confirm_vm_sync(None)
            print(f'Registered VM {args.register} to session {manager.props.session_id[:8]}')
        ok = cleanup_vms(args.delete_command)
    except GLib.Error as e:
        print(f'gsm-session: {e.message}', file=sys.stderr)
        ok = False
    manager.close_sync(None)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
