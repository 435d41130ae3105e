#!/usr/bin/python3
# test_asyncio.py: the Python override (gi/overrides/Gsm.py) under a plain
# asyncio.run(), with no GLib main loop run by the program: the usage
# examples of the Python design gsm-session reimplements, ported to
# Gsm.get_session_manager(), and the argument checks of the override.
#
# One process, one session manager; the test cases run in the order given
# to main(), the last one closes the manager.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import asyncio
import os
import subprocess
import sys
import threading
import unittest

from gsmtest import WAIT_SECONDS, GLib, Gsm, call_async, main

os.environ['GSM_HOSTNAME'] = 'gi-asyncio-host'

# The dict the Python design's get_my_vm() returns (its session file).
SEED_VM_KEYS = {
    'session_id', 'pid', 'hostname', 'vm_id', 'zone', 'components', 'metadata',
    'created_at', 'registered_at', 'status',
}
SEED_STATISTICS_KEYS = {
    'session_id', 'pid', 'hostname', 'uptime_seconds', 'has_vm', 'vm_id',
    'vms_registered', 'vms_unregistered', 'registry_cleanups', 'stale_sessions_removed',
}


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, WAIT_SECONDS))


class BasicInitialization(unittest.TestCase):

    def test_get_session_manager(self):
        self.assertFalse(Gsm.is_session_manager_available())
        session_mgr = Gsm.get_session_manager()
        self.assertTrue(Gsm.is_session_manager_available())
        self.assertIs(Gsm.get_session_manager(), session_mgr)
        self.assertIs(session_mgr.manager, Gsm.SessionManager.get_default())
        self.assertEqual(len(session_mgr.session_id), 36)
        self.assertEqual(session_mgr.pid, os.getpid())
        self.assertEqual(session_mgr.hostname, 'gi-asyncio-host')
        self.assertTrue(session_mgr.session_file.endswith('.json'))
        stats = session_mgr.get_statistics()
        self.assertEqual(set(stats), SEED_STATISTICS_KEYS)
        self.assertIs(stats['has_vm'], False)


class Arguments(unittest.TestCase):
    """What C would misread is refused before anything is registered."""

    def setUp(self):
        self.m = Gsm.SessionManager.get_default()

    def tearDown(self):
        self.assertFalse(self.m.props.has_vm)

    def test_components_str(self):
        with self.assertRaisesRegex(TypeError, 'components must be a list of str'):
            self.m.register_vm_sync('vm', 'z', 'voice')
        with self.assertRaises(TypeError):
            self.m.register_vm('vm', 'z', 'voice', None, None, lambda *a: None, None)
        with self.assertRaises(TypeError):
            self.m.register_vm_sync('vm', 'z', ['voice', 3])
        with self.assertRaises(TypeError):
            run(Gsm.get_session_manager().register_vm('vm', 'z', 'voice'))

    def test_nul(self):
        for args in [('v\0m', 'z', None, None), ('vm', 'z\0', None, None),
                     ('vm', 'z', ['voice', 'vi\0sion'], None),
                     ('vm', 'z', None, {'trig\0ger': 'x'}),
                     ('vm', 'z', None, {'trigger': 'HIGH\0RAM'}),
                     ('vm', 'z', None, {'a': {'b': ['c\0']}})]:
            with self.subTest(args=args), self.assertRaisesRegex(ValueError, 'NUL'):
                self.m.register_vm_sync(*args)
        with self.assertRaises(ValueError):
            run(Gsm.get_session_manager().register_vm('v\0m', 'z'))

    def test_metadata_types(self):
        for bad in [{'x': None}, {'x': b'bytes'}, {'x': [1, 2]}, {'x': object()}, {1: 'x'}, ['x']]:
            with self.subTest(metadata=bad), self.assertRaisesRegex(TypeError, 'metadata'):
                self.m.register_vm_sync('vm', 'z', None, bad)


class VmRegistrationFlow(unittest.TestCase):

    def test_deploy_to_gcp(self):
        # The design's deploy_to_gcp(components), under asyncio.run().
        async def deploy_to_gcp(components):
            session_mgr = Gsm.get_session_manager()
            vm_id = 'jarvis-auto-12345'
            zone = 'us-central1-a'
            ok = await session_mgr.register_vm(
                vm_id=vm_id,
                zone=zone,
                components=components,
                metadata={
                    'trigger': 'HIGH_RAM',
                    'ram_percent': 87.5,
                },
            )
            return ok, await session_mgr.get_my_vm()

        ok, vm = run(deploy_to_gcp(['voice', 'vision', 'ml']))
        self.assertIs(ok, True)
        self.assertEqual(set(vm), SEED_VM_KEYS)
        session_mgr = Gsm.get_session_manager()
        self.assertEqual(vm['vm_id'], 'jarvis-auto-12345')
        self.assertEqual(vm['zone'], 'us-central1-a')
        self.assertEqual(vm['components'], ['voice', 'vision', 'ml'])
        self.assertEqual(vm['metadata'], {'trigger': 'HIGH_RAM', 'ram_percent': 87.5})
        self.assertEqual(vm['session_id'], session_mgr.session_id)
        self.assertEqual(vm['pid'], os.getpid())
        self.assertEqual(vm['hostname'], 'gi-asyncio-host')
        self.assertEqual(vm['status'], 'active')
        self.assertGreaterEqual(vm['registered_at'], vm['created_at'])
        self.assertEqual(session_mgr.get_my_vm_sync(), vm)
        raw = Gsm.SessionManager.get_default().get_my_vm_sync(None)
        self.assertEqual(raw.to_dict(), vm)
        self.assertIs(run(session_mgr.unregister_vm()), True)
        self.assertIsNone(run(session_mgr.get_my_vm()))

    def test_reserve_then_confirm(self):
        # The recommended flow: reserve the name, create, confirm; a
        # failed creation releases it.
        session_mgr = Gsm.get_session_manager()
        raw = Gsm.SessionManager.get_default()

        async def deploy(vm_id, create):
            await session_mgr.reserve_vm(vm_id, 'us-central1-a', ['voice'],
                                         {'trigger': 'HIGH_RAM'})
            try:
                create(vm_id)
            except RuntimeError:
                await session_mgr.unregister_vm()
                raise
            await session_mgr.confirm_vm()
            return await session_mgr.get_my_vm()

        def create_ok(vm_id):
            self.assertTrue(raw.get_has_vm())

        def create_fails(vm_id):
            raise RuntimeError('quota exceeded')

        vm = run(deploy('jarvis-reserved', create_ok))
        self.assertEqual(vm['vm_id'], 'jarvis-reserved')
        self.assertEqual(vm['metadata'], {'trigger': 'HIGH_RAM'})
        self.assertIs(run(session_mgr.unregister_vm()), True)

        with self.assertRaises(RuntimeError):
            run(deploy('jarvis-failed', create_fails))
        self.assertIsNone(run(session_mgr.get_my_vm()))

        with self.assertRaises(TypeError):
            raw.reserve_vm_sync('vm', 'z', 'voice')

    def test_metadata_round_trip(self):
        m = Gsm.SessionManager.get_default()
        metadata = {'trigger': 'HIGH_RAM', 'ram_percent': 87.5, 'spot': True, 'cpus': 8,
                    'big': 2**40, 'labels': ['a', 'b'], 'gcp': {'project': 'p', 'n': -1}}
        self.assertTrue(m.register_vm_sync('vm-meta', 'z', ('voice',), metadata))
        vm = m.get_my_vm_sync(None)
        self.assertEqual(vm.to_dict()['metadata'], metadata)
        self.assertEqual(vm.props.metadata.get_type_string(), 'a{sv}')
        self.assertEqual(vm.props.metadata.lookup_value('cpus', None).get_type_string(), 'x')
        self.assertEqual(vm.props.metadata.lookup_value('spot', None).get_type_string(), 'b')
        self.assertTrue(m.unregister_vm_sync(None))
        # The callback form converts the same way; a GLib.Variant still works.
        self.assertTrue(call_async(m, 'register_vm', 'vm-meta-async', 'z', ['voice'],
                                   {'trigger': 'HIGH_RAM'}, None))
        self.assertEqual(m.get_my_vm_sync(None).to_dict()['metadata'], {'trigger': 'HIGH_RAM'})
        self.assertTrue(m.unregister_vm_sync(None))
        self.assertTrue(m.register_vm_sync('vm-meta-variant', 'z', None,
                                           GLib.Variant('a{sv}', {'k': GLib.Variant('s', 'v')})))
        self.assertEqual(m.get_my_vm_sync(None).to_dict()['metadata'], {'k': 'v'})
        self.assertEqual(m.get_my_vm_sync(None).to_dict()['components'], [])
        self.assertTrue(m.unregister_vm_sync(None))


class SignalsOnTheLoop(unittest.TestCase):

    def test_handler_runs_on_the_loop_thread(self):
        # The operation runs in another thread; the library may emit there
        # (it takes the idle default main context): the handler must not.
        session_mgr = Gsm.get_session_manager()

        async def scenario():
            loop_thread = threading.get_ident()
            registered = asyncio.get_running_loop().create_future()
            unregistered = asyncio.Event()

            def on_registered(mgr, vm):
                self.assertIs(mgr, session_mgr)
                if not registered.done():
                    registered.set_result((threading.get_ident(), vm.to_dict()))

            async def on_unregistered(mgr, vm, tag):
                self.assertEqual(tag, 'tag')
                unregistered.thread = threading.get_ident()
                unregistered.set()

            ids = [session_mgr.connect('vm-registered', on_registered),
                   session_mgr.connect('vm-unregistered', on_unregistered, 'tag')]
            try:
                await asyncio.to_thread(session_mgr.manager.register_vm_sync, 'vm-thread', 'z',
                                        ['voice'], {'trigger': 'HIGH_RAM'})
                thread, vm = await registered
                self.assertEqual(thread, loop_thread)
                self.assertEqual(vm['vm_id'], 'vm-thread')
                self.assertEqual(vm['metadata'], {'trigger': 'HIGH_RAM'})
                await asyncio.to_thread(session_mgr.unregister_vm_sync)
                await unregistered.wait()
                self.assertEqual(unregistered.thread, loop_thread)
            finally:
                for i in ids:
                    session_mgr.disconnect(i)

        run(scenario())

    def test_library_emits_in_the_owner_context(self):
        # Connected to the GObject itself (not through the override): the
        # library emits in the manager's main context, on the thread that
        # runs it (here the loop's, through the override's pump), never in
        # the thread that made the _sync call.
        session_mgr = Gsm.get_session_manager()

        async def scenario():
            loop_thread = threading.get_ident()
            threads = []
            handler = session_mgr.manager.connect(
                'vm-registered', lambda mgr, vm: threads.append(threading.get_ident()))
            try:
                # The coroutine runs register_vm_sync() in an executor
                # thread.
                await session_mgr.register_vm('vm-owner', 'z')
                while not threads:
                    await asyncio.sleep(0.01)
                self.assertEqual(threads, [loop_thread])
            finally:
                session_mgr.manager.disconnect(handler)
                await session_mgr.unregister_vm()

        run(scenario())

    def test_cancel(self):
        # A cancelled coroutine leaves the loop usable for the next one.
        session_mgr = Gsm.get_session_manager()

        async def scenario():
            task = asyncio.ensure_future(session_mgr.get_all_active_sessions())
            task.cancel()
            with self.assertRaises(asyncio.CancelledError):
                await task
            return await session_mgr.get_all_active_sessions()

        self.assertIn(session_mgr.session_id, run(scenario()))


class MultiSessionMonitoring(unittest.TestCase):

    def test_monitor_sessions(self):
        # Another process registers a VM while this one waits, under
        # asyncio.run(), for the manager's signals; then the design's
        # monitor_sessions() lists both.
        session_mgr = Gsm.get_session_manager()
        lines = []

        async def monitor_sessions():
            sessions = await session_mgr.get_all_active_sessions()
            lines.append('Active Ironcliw Sessions: %d' % len(sessions))
            for sid, data in sessions.items():
                is_me = '* ' if sid == session_mgr.session_id else '  '
                vm_status = data.get('vm_id', 'no VM')
                lines.append(f"{is_me}Session {sid[:8]}: PID {data['pid']}, {vm_status}")
            return sessions

        async def scenario():
            loop_thread = threading.get_ident()
            added, removed = [], []
            changed = asyncio.Event()

            def on_added(mgr, session):
                added.append((threading.get_ident(), session.to_dict()))
                changed.set()

            def on_removed(mgr, session):
                removed.append(session.props.session_id)
                changed.set()

            async def until(predicate):
                while not predicate():
                    changed.clear()
                    await changed.wait()

            ids = [session_mgr.connect('session-added', on_added),
                   session_mgr.connect('session-removed', on_removed)]
            proc = await asyncio.create_subprocess_exec(
                os.environ['GSM_TEST_WORKER'], 'register-close', 'vm-other-process', 'europe-west1-b',
                stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
            try:
                words = (await proc.stdout.readline()).decode().split()
                self.assertEqual(words[:1], ['READY'])
                sid, pid = words[1], int(words[2])
                await until(lambda: any(s['session_id'] == sid for _, s in added))
                self.assertEqual({t for t, _ in added}, {loop_thread})
                sessions = await monitor_sessions()
                self.assertEqual(sessions[sid]['pid'], pid)
                self.assertEqual(sessions[sid]['vm_id'], 'vm-other-process')
                self.assertEqual(sessions[sid]['zone'], 'europe-west1-b')
                self.assertNotIn('vm_id', sessions[session_mgr.session_id])
                # It unregisters and closes when its stdin closes.
                proc.stdin.close()
                self.assertEqual((await proc.stdout.readline()).decode().strip(), 'CLOSED')
                self.assertEqual(await proc.wait(), 0)
                await until(lambda: sid in removed)
                self.assertNotIn(sid, await session_mgr.get_all_active_sessions())
                self.assertIsInstance(await session_mgr.cleanup_stale_sessions(), int)
            finally:
                for i in ids:
                    session_mgr.disconnect(i)
                if proc.returncode is None:
                    proc.kill()
                    await proc.wait()

        run(scenario())
        self.assertEqual(lines[0], 'Active Ironcliw Sessions: 2')
        self.assertTrue(any(line.endswith(', vm-other-process') for line in lines[1:]))
        self.assertTrue(any(line.startswith('* ') and line.endswith(', no VM') for line in lines[1:]))


class CleanupIntegration(unittest.TestCase):

    def test_cleanup_gcp_vms(self):
        # The design's cleanup_gcp_vms(), synchronous, at shutdown; a
        # command that succeeds stands for gcloud.
        self.assertTrue(Gsm.SessionManager.get_default().register_vm_sync(
            'jarvis-auto-67890', 'us-central1-a', ['voice'], {'trigger': 'HIGH_RAM'}))
        out = []

        def cleanup_gcp_vms():
            if Gsm.is_session_manager_available():
                session_mgr = Gsm.get_session_manager()
                my_vm = session_mgr.get_my_vm_sync()
                if my_vm:
                    vm_id = my_vm['vm_id']
                    zone = my_vm['zone']
                    delete_result = subprocess.run([
                        sys.executable, '-c', 'import sys; sys.exit(0)',
                        'compute', 'instances', 'delete', vm_id, '--zone', zone, '--quiet'])
                    if delete_result.returncode == 0:
                        session_mgr.unregister_vm_sync()
                        out.append(f'Deleted VM {vm_id}')
                else:
                    out.append('No VM registered to this session')

        cleanup_gcp_vms()
        cleanup_gcp_vms()
        self.assertEqual(out, ['Deleted VM jarvis-auto-67890', 'No VM registered to this session'])
        stats = Gsm.get_session_manager().get_statistics()
        self.assertEqual(stats['vms_registered'], stats['vms_unregistered'])

    def test_cleanup_my_vm(self):
        # The library's own shutdown flow, awaited: the provider's command
        # deletes the VM, then it is unregistered.
        session_mgr = Gsm.get_session_manager()
        deleted = os.path.join(os.environ['GSM_RUNTIME_DIR'], 'deleted')
        provider = Gsm.Provider.new('test', [
            sys.executable, '-c', 'import sys; open(sys.argv[1], "w").write(sys.argv[2])',
            deleted, '{vm_id}'])

        async def scenario():
            await session_mgr.register_vm('vm-cleanup', 'us-central1-a', ['voice'])
            ok = await session_mgr.cleanup_my_vm(provider)
            return ok, await session_mgr.get_my_vm()

        self.assertEqual(run(scenario()), (True, None))
        with open(deleted) as f:
            self.assertEqual(f.read(), 'vm-cleanup')


class Close(unittest.TestCase):

    def test_close(self):
        session_mgr = Gsm.get_session_manager()
        self.assertIs(run(session_mgr.close()), True)
        with self.assertRaises(GLib.Error) as e:
            run(session_mgr.get_my_vm())
        self.assertTrue(e.exception.matches(Gsm.error_quark(), Gsm.Error.CLOSED))


if __name__ == '__main__':
    main(BasicInitialization, Arguments, VmRegistrationFlow, SignalsOnTheLoop,
         MultiSessionMonitoring, CleanupIntegration, Close)
