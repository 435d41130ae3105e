#!/usr/bin/python3
# register+unregister cycles through GObject Introspection; prints the
# median in microseconds. Run by gsm-bench.
import sys
import time

import gi
gi.require_version('Gsm', '1.0')
from gi.repository import Gsm  # noqa: E402

rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
m = Gsm.SessionManager.get_default()
samples = []
for i in range(rounds):
    t0 = time.perf_counter()
    m.register_vm_sync('py-bench-vm-%d' % i, 'us-central1-a', None, None, None)
    m.unregister_vm_sync(None)
    samples.append((time.perf_counter() - t0) * 1e6)
m.close_sync(None)
samples.sort()
print('%.1f' % samples[len(samples) // 2])
