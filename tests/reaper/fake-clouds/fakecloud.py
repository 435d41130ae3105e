# fakecloud.py: the state shared by the fake gcloud, aws and az CLIs
#
# The "cloud" is a JSON file, $FAKE_CLOUD_STATE:
#
#   {"vms": [{"id": "...", "name": "...", "zone": "...", "labels": {...},
#             "created": SECONDS, "state": "running"}],
#    "mode": "ok"}
#
# "id" is what the CLI deletes by (the instance name on gcloud and az, the
# instance ID on aws); "zone" is the zone (gcloud), availability zone (aws)
# or resource group (az). "mode" makes calls fail the way the real CLI
# does: "auth" (not logged in: every call), "denied" (no permission to
# create or delete), "list-fails" (list calls fail), "garbage" (list
# prints what is not its JSON).
#
# Every call appends one line to $FAKE_CLOUD_LOG (default: the state file
# and ".log"): "CLI VERB ID ZONE" for create and delete (ZONE "-" when not
# given), "CLI list FILTER" for lists. Calls hold an exclusive lock on the
# state file's ".lock" while they read and write it, so concurrent calls
# (a reaper runs several deletions at once) see each other's changes.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import fcntl
import json
import os
import sys
import time


class Cloud:
    def __init__(self):
        self.path = os.environ.get('FAKE_CLOUD_STATE')
        if not self.path:
            sys.stderr.write('fake cloud: FAKE_CLOUD_STATE is not set\n')
            sys.exit(2)
        self.log_path = os.environ.get('FAKE_CLOUD_LOG', self.path + '.log')
        self.lock = open(self.path + '.lock', 'a')
        fcntl.flock(self.lock, fcntl.LOCK_EX)
        try:
            with open(self.path) as f:
                self.state = json.load(f)
        except FileNotFoundError:
            self.state = {'vms': []}
        self.state.setdefault('vms', [])

    @property
    def mode(self):
        return self.state.get('mode', 'ok')

    def log(self, *words):
        with open(self.log_path, 'a') as f:
            f.write(' '.join(w if w else '-' for w in words) + '\n')

    def find(self, vm_id, zone=None):
        for vm in self.state['vms']:
            if vm['id'] == vm_id and (zone is None or vm.get('zone') == zone):
                return vm
        return None

    def add(self, vm_id, zone, labels, name=None, state='running'):
        vm = {'id': vm_id, 'name': name or vm_id, 'zone': zone, 'labels': labels,
              'created': time.time(), 'state': state}
        self.state['vms'].append(vm)
        return vm

    def remove(self, vm):
        self.state['vms'].remove(vm)

    def save(self):
        tmp = self.path + '.tmp'
        with open(tmp, 'w') as f:
            json.dump(self.state, f, indent=1)
        os.replace(tmp, self.path)


def iso(seconds, offset_hours=0, fraction_digits=3):
    """RFC 3339 with the given offset and fraction digits."""
    t = time.gmtime(seconds + offset_hours * 3600)
    frac = ('%.*f' % (fraction_digits, seconds % 1))[1:] if fraction_digits else ''
    sign = '-' if offset_hours < 0 else '+'
    return '%s%s%s%02d:00' % (time.strftime('%Y-%m-%dT%H:%M:%S', t), frac, sign, abs(offset_hours))


def options(args, takes_value):
    """Splits ARGS into positionals and {option: [values]}; --opt=value and
    --opt value both work for the options in TAKES_VALUE (a dict of name to
    how many values: 1, or '+' for all up to the next option)."""
    positional = []
    opts = {}
    i = 0
    while i < len(args):
        a = args[i]
        if a.startswith('-') and len(a) > 1:
            name, eq, value = a.partition('=')
            n = takes_value.get(name)
            if n is None:
                opts.setdefault(name, []).append(None)
            elif eq:
                opts.setdefault(name, []).append(value)
            elif n == '+':
                i += 1
                while i < len(args) and not args[i].startswith('--'):
                    opts.setdefault(name, []).append(args[i])
                    i += 1
                continue
            else:
                if i + 1 >= len(args):
                    return positional, opts, name
                opts.setdefault(name, []).append(args[i + 1])
                i += 1
        else:
            positional.append(a)
        i += 1
    return positional, opts, None
