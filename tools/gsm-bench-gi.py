#!/usr/bin/python3
# register+unregister cycles through GObject Introspection. Between the
# cycles, the floor, so that both see the file system in the same state:
# two raw replaces with new files (write a new file, exchange the names,
# unlink the old one). Prints the two medians in microseconds.
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


rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
directory = os.environ['GSM_RUNTIME_DIR']
with open(os.path.join(directory, 'vm_registry.json'), 'rb') as f:
    data = f.read()

m = Gsm.SessionManager.get_default()
samples = []
floors = []
for i in range(rounds):
    t0 = time.perf_counter()
    m.register_vm_sync('py-bench-vm-%d' % i, 'us-central1-a', None, None, None)
    m.unregister_vm_sync(None)
    samples.append((time.perf_counter() - t0) * 1e6)
    t0 = time.perf_counter()
    raw_replace(directory, data)
    raw_replace(directory, data)
    floors.append((time.perf_counter() - t0) * 1e6)
m.close_sync(None)
os.unlink(os.path.join(directory, 'floor.json'))
samples.sort()
floors.sort()
print('%.1f %.1f' % (samples[len(samples) // 2], floors[len(floors) // 2]))
