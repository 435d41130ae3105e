#!/usr/bin/python3
# register+unregister cycles through GObject Introspection. Between the
# cycles, the floors, so that all see the file system in the same state:
# two raw writes of the registry's bytes into kept files (write over the
# spare, cut it, exchange it with the live one: what the library does),
# and two raw replaces with new files (write a new file, exchange the
# names, unlink the old one). Prints the three medians in microseconds.
# Run by gsm-bench.
import ctypes
import os
import sys
import time

import gi
gi.require_version('Gsm', '1.0')
from gi.repository import Gsm  # noqa: E402

AT_FDCWD = -100
RENAME_EXCHANGE = 2
libc = ctypes.CDLL(None, use_errno=True)


def raw_replace(directory, data):
    tmp = os.path.join(directory, 'floor.json.tmp').encode()
    path = os.path.join(directory, 'floor.json').encode()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    os.write(fd, data)
    os.close(fd)
    if libc.renameat2(AT_FDCWD, tmp, AT_FDCWD, path, RENAME_EXCHANGE) == 0:
        os.unlink(tmp)
    else:
        os.rename(tmp, path)


class KeptFiles:
    def __init__(self, directory, data):
        self.spare = os.path.join(directory, 'kept.json.spare').encode()
        self.live = os.path.join(directory, 'kept.json').encode()
        flags = os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
        self.fds = [os.open(self.spare, flags, 0o600), os.open(self.live, flags, 0o600)]
        os.write(self.fds[1], data)

    def rewrite(self, data):
        os.pwrite(self.fds[0], data, 0)
        os.ftruncate(self.fds[0], len(data))
        if libc.renameat2(AT_FDCWD, self.spare, AT_FDCWD, self.live, RENAME_EXCHANGE) != 0:
            raise OSError(ctypes.get_errno(), 'renameat2')
        self.fds.reverse()

    def close(self):
        for fd in self.fds:
            os.close(fd)
        os.unlink(self.spare)
        os.unlink(self.live)


rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
directory = os.environ['GSM_RUNTIME_DIR']
with open(os.path.join(directory, 'vm_registry.json'), 'rb') as f:
    data = f.read()

m = Gsm.SessionManager.get_default()
kept = KeptFiles(directory, data)
samples = []
floors = []
kept_floors = []
for i in range(rounds):
    t0 = time.perf_counter()
    m.register_vm_sync('py-bench-vm-%d' % i, 'us-central1-a', None, None, None)
    m.unregister_vm_sync(None)
    samples.append((time.perf_counter() - t0) * 1e6)
    t0 = time.perf_counter()
    raw_replace(directory, data)
    raw_replace(directory, data)
    floors.append((time.perf_counter() - t0) * 1e6)
    t0 = time.perf_counter()
    kept.rewrite(data)
    kept.rewrite(data)
    kept_floors.append((time.perf_counter() - t0) * 1e6)
m.close_sync(None)
kept.close()
os.unlink(os.path.join(directory, 'floor.json'))
samples.sort()
floors.sort()
kept_floors.sort()
print('%.1f %.1f %.1f' % (samples[len(samples) // 2], kept_floors[len(kept_floors) // 2],
                          floors[len(floors) // 2]))
