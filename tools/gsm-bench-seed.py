#!/usr/bin/python3
# The Python asyncio design gsm-session replaces (GlobalSessionManager),
# reduced to what its register_vm() and unregister_vm() do to the file
# system, so that gsm-bench can measure the same cycle side by side:
# under an asyncio.Lock, write the session file, load the whole registry
# with json, change this session's entry, dump the registry back, and
# write the global tracker; unregistering removes the session file and the
# entry. Plain writes, no fsync, as in that design.
#
# Usage: gsm-bench-seed.py DIRECTORY ROUNDS
# DIRECTORY holds vm_registry.json (the other sessions). Prints the median
# cycle in microseconds.
import asyncio
import json
import os
import socket
import statistics
import sys
import time
import uuid


class SeedSessionManager:
    def __init__(self, directory):
        self.session_id = str(uuid.uuid4())
        self.pid = os.getpid()
        self.hostname = socket.gethostname()
        self.created_at = time.time()
        self.session_file = os.path.join(directory, f'jarvis_session_{self.pid}.json')
        self.vm_registry = os.path.join(directory, 'vm_registry.json')
        self.global_tracker_file = os.path.join(directory, 'jarvis_global_session.json')
        self._lock = asyncio.Lock()
        self._current_vm = None
        self.vms_registered = 0
        self.vms_unregistered = 0

    def _load_registry(self):
        try:
            with open(self.vm_registry) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _save_registry(self, registry):
        with open(self.vm_registry, 'w') as f:
            json.dump(registry, f, indent=2)

    def _write_tracker(self, vm):
        with open(self.global_tracker_file, 'w') as f:
            json.dump({'session_id': self.session_id, 'pid': self.pid,
                       'hostname': self.hostname, 'created_at': self.created_at,
                       'vm_id': vm and vm['vm_id'], 'zone': vm and vm['zone'],
                       'status': 'active' if vm else 'idle'}, f, indent=2)

    async def register_vm(self, vm_id, zone, components, metadata=None):
        async with self._lock:
            data = {'session_id': self.session_id, 'pid': self.pid,
                    'hostname': self.hostname, 'vm_id': vm_id, 'zone': zone,
                    'components': components, 'metadata': metadata or {},
                    'created_at': self.created_at,
                    'registered_at': time.time(), 'status': 'active'}
            with open(self.session_file, 'w') as f:
                json.dump(data, f, indent=2)
            registry = self._load_registry()
            registry[self.session_id] = {k: v for k, v in data.items() if k != 'metadata'}
            self._save_registry(registry)
            self._write_tracker(data)
            self._current_vm = data
            self.vms_registered += 1
            return True

    async def unregister_vm(self):
        async with self._lock:
            try:
                os.unlink(self.session_file)
            except FileNotFoundError:
                pass
            registry = self._load_registry()
            registry.pop(self.session_id, None)
            self._save_registry(registry)
            self._write_tracker(None)
            self._current_vm = None
            self.vms_unregistered += 1
            return True


async def main(directory, rounds):
    manager = SeedSessionManager(directory)
    samples = []
    for i in range(rounds):
        t0 = time.perf_counter()
        await manager.register_vm(f'bench-vm-{i}', 'us-central1-a', ['voice', 'vision', 'ml'])
        await manager.unregister_vm()
        samples.append((time.perf_counter() - t0) * 1e6)
    for path in (manager.session_file, manager.global_tracker_file):
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
    print(f'{statistics.median(samples):.1f}')


if __name__ == '__main__':
    asyncio.run(main(sys.argv[1], int(sys.argv[2])))
