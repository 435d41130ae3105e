#!/usr/bin/python3
# test_gsm.py: the whole Gsm API through PyGObject
#
# One process, one session manager (it is a per-process singleton), its
# own runtime directory. The test cases run in the order given to main();
# the last one closes the manager.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import gc
import json
import os
import time
import uuid

import subprocess
import sys
import unittest

from gsmtest import RUNTIME_DIR, GLib, Gio, Gsm, Worker, call_async, main, run_until
from gi.repository import GObject

os.environ['GSM_HOSTNAME'] = 'gi-python-host'

STATISTICS_KEYS = {
    'session_id', 'pid', 'hostname', 'uptime_seconds', 'has_vm', 'vm_id',
    'vms_registered', 'vms_unregistered', 'registry_cleanups', 'stale_sessions_removed',
}

MANAGER_PROPERTIES = {
    'session-id', 'pid', 'hostname', 'created-at', 'runtime-dir', 'session-file',
    'vm-registry', 'global-tracker-file', 'has-vm',
}
SESSION_PROPERTIES = {
    'session-id', 'pid', 'hostname', 'created-at', 'status', 'has-vm', 'vm-id', 'zone',
    'components', 'metadata', 'registered-at', 'start-time', 'boot-id', 'stale-since',
}
MANAGER_SIGNALS = {
    'vm-registered', 'vm-unregistered', 'session-stale', 'sessions-changed',
    'session-added', 'session-removed',
}

META = {'trigger': GLib.Variant('s', 'HIGH_RAM'), 'ram_percent': GLib.Variant('d', 87.5)}


def manager():
    return Gsm.SessionManager.get_default()


class Recorder:
    """Records every signal of the manager, and notify::has-vm."""

    def __init__(self, m):
        self.m = m
        self.events = []
        self.ids = []
        for name in MANAGER_SIGNALS:
            self.ids.append(m.connect(name, self._on, name))
        self.ids.append(m.connect('notify::has-vm', lambda o, p: self.events.append(('notify::has-vm', o.props.has_vm))))

    def _on(self, m, *args):
        name = args[-1]
        assert m is self.m
        self.events.append((name,) + args[:-1])

    def of(self, name):
        return [e[1:] for e in self.events if e[0] == name]

    def disconnect(self):
        for i in self.ids:
            self.m.disconnect(i)


def sessions_of(table):
    assert isinstance(table, dict), type(table)
    for k, v in table.items():
        assert isinstance(k, str)
        assert isinstance(v, Gsm.Session), type(v)
        assert k == v.props.session_id
    return table


def check_vm(test, vm, vm_id, zone, components, metadata, session_id):
    # this session's entry, with its VM
    test.assertIsInstance(vm, Gsm.Session)
    test.assertIs(vm.props.has_vm, True)
    test.assertEqual(vm.props.vm_id, vm_id)
    test.assertEqual(vm.get_vm_id(), vm_id)
    test.assertEqual(vm.props.zone, zone)
    test.assertEqual(vm.get_zone(), zone)
    test.assertEqual(vm.props.components, components)
    test.assertEqual(vm.get_components(), components)
    test.assertEqual(vm.props.metadata.unpack(), metadata)
    test.assertEqual(vm.get_metadata().unpack(), metadata)
    test.assertEqual(vm.props.metadata.get_type_string(), 'a{sv}')
    test.assertEqual(vm.props.session_id, session_id)
    test.assertEqual(vm.get_session_id(), session_id)
    test.assertGreater(vm.props.registered_at, manager().props.created_at - 1)
    test.assertEqual(vm.get_registered_at(), vm.props.registered_at)


class T1Default(unittest.TestCase):
    def test_1_not_available_before_first_use(self):
        self.assertFalse(Gsm.SessionManager.is_available())

    def test_2_get_default_is_a_singleton(self):
        m = Gsm.SessionManager.get_default()
        self.assertIsInstance(m, Gsm.SessionManager)
        self.assertTrue(Gsm.SessionManager.is_available())
        self.assertIs(Gsm.SessionManager.get_default(), m)
        self.assertEqual(m.__grefcount__, Gsm.SessionManager.get_default().__grefcount__)

    def test_3_manager_cannot_be_constructed(self):
        # Only get_default() hands out a manager; a second one would be a
        # second session of the same process.
        self.assertIs(manager(), Gsm.SessionManager.get_default())


class T2Properties(unittest.TestCase):
    def test_every_property_is_listed(self):
        names = {p.name for p in GObject.list_properties(Gsm.SessionManager)}
        self.assertEqual(names, MANAGER_PROPERTIES)
        for p in GObject.list_properties(Gsm.SessionManager):
            self.assertTrue(p.flags & GObject.ParamFlags.READABLE)
            self.assertFalse(p.flags & GObject.ParamFlags.WRITABLE, p.name)

    def test_identity(self):
        m = manager()
        self.assertEqual(str(uuid.UUID(m.props.session_id)), m.props.session_id)
        self.assertEqual(m.get_session_id(), m.props.session_id)
        self.assertEqual(m.props.pid, os.getpid())
        self.assertEqual(m.get_pid(), os.getpid())
        self.assertEqual(m.props.hostname, 'gi-python-host')
        self.assertEqual(m.get_hostname(), 'gi-python-host')
        self.assertIsInstance(m.props.created_at, float)
        self.assertLessEqual(m.props.created_at, time.time())
        self.assertEqual(m.get_created_at(), m.props.created_at)

    def test_files(self):
        m = manager()
        rd = os.environ['GSM_RUNTIME_DIR']
        for prop, getter, expected in (
                ('runtime_dir', m.get_runtime_dir, rd),
                ('session_file', m.get_session_file, os.path.join(rd, 'session_%d_%s.json' % (os.getpid(), m.get_session_id()))),
                ('vm_registry', m.get_vm_registry, os.path.join(rd, 'vm_registry.json')),
                ('global_tracker_file', m.get_global_tracker_file, os.path.join(rd, 'global_session.json'))):
            f = getattr(m.props, prop)
            self.assertIsInstance(f, Gio.File, prop)
            self.assertEqual(f.get_path(), expected, prop)
            self.assertTrue(getter().equal(f), prop)
        self.assertTrue(m.props.vm_registry.query_exists(None))

    def test_has_vm(self):
        self.assertIs(manager().props.has_vm, False)
        self.assertIs(manager().get_has_vm(), False)

    def test_read_only(self):
        with self.assertRaises(TypeError):
            manager().props.session_id = 'x'


class T3Sync(unittest.TestCase):
    def setUp(self):
        self.rec = Recorder(manager())

    def tearDown(self):
        self.rec.disconnect()
        if manager().props.has_vm:
            manager().unregister_vm_sync(None)

    def test_register_get_unregister(self):
        m = manager()
        sid = m.props.session_id
        self.assertIsNone(m.get_my_vm_sync(None))      # (nullable) return
        self.assertTrue(m.register_vm_sync('vm-py-1', 'us-central1-a', ['voice', 'vision', 'ml'], GLib.Variant('a{sv}', META), None))
        meta = {'trigger': 'HIGH_RAM', 'ram_percent': 87.5}

        # Signals are emitted before a _sync() call made in the main thread returns.
        (vm,), = self.rec.of('vm-registered')
        check_vm(self, vm, 'vm-py-1', 'us-central1-a', ['voice', 'vision', 'ml'], meta, sid)
        self.assertEqual(self.rec.of('notify::has-vm'), [(True,)])
        self.assertTrue(m.props.has_vm)

        mine = m.get_my_vm_sync(None)
        check_vm(self, mine, 'vm-py-1', 'us-central1-a', ['voice', 'vision', 'ml'], meta, sid)
        # Entries are immutable: the same one may be shared.
        self.assertEqual(mine.to_dict(), vm.to_dict())

        stats = m.get_statistics().unpack()
        self.assertEqual(set(stats), STATISTICS_KEYS)
        self.assertEqual(stats['vm_id'], 'vm-py-1')
        self.assertIs(stats['has_vm'], True)
        registered = stats['vms_registered']

        self.assertTrue(m.unregister_vm_sync(None))
        (gone,), = self.rec.of('vm-unregistered')
        self.assertEqual(gone.props.vm_id, 'vm-py-1')
        self.assertEqual(self.rec.of('notify::has-vm'), [(True,), (False,)])
        self.assertIsNone(m.get_my_vm_sync(None))
        stats = m.get_statistics().unpack()
        self.assertIsNone(stats['vm_id'])
        self.assertIs(stats['has_vm'], False)
        self.assertEqual(stats['vms_registered'], registered)
        self.assertGreaterEqual(stats['vms_unregistered'], 1)

    def test_nullable_components_and_metadata(self):
        m = manager()
        self.assertTrue(m.register_vm_sync('vm-py-2', 'europe-west1-b', None, None, None))
        vm = m.get_my_vm_sync(None)
        self.assertEqual(vm.props.components, [])
        self.assertEqual(vm.props.metadata.unpack(), {})

    def test_statistics(self):
        m = manager()
        stats = m.get_statistics()
        self.assertIsInstance(stats, GLib.Variant)
        self.assertEqual(stats.get_type_string(), 'a{sv}')
        d = stats.unpack()
        self.assertEqual(set(d), STATISTICS_KEYS)
        self.assertEqual(d['session_id'], m.props.session_id)
        self.assertEqual(d['pid'], os.getpid())
        self.assertEqual(d['hostname'], 'gi-python-host')
        self.assertIsInstance(d['uptime_seconds'], float)
        self.assertGreaterEqual(d['uptime_seconds'], 0)
        self.assertIs(d['has_vm'], False)
        self.assertIsNone(d['vm_id'])
        for k in ('vms_registered', 'vms_unregistered', 'registry_cleanups', 'stale_sessions_removed'):
            self.assertIsInstance(d[k], int, k)

    def test_sessions_dict_and_fields(self):
        m = manager()
        sid = m.props.session_id
        m.register_vm_sync('vm-py-3', 'asia-east1-a', ['ml'], GLib.Variant('a{sv}', {'n': GLib.Variant('i', 3)}), None)
        table = sessions_of(m.get_all_active_sessions_sync(None))
        self.assertIn(sid, table)
        for s in (table[sid], Gsm.SessionList.new(None, None).lookup(sid)):
            self.assertEqual({p.name for p in s.list_properties()}, SESSION_PROPERTIES)
            self.assertEqual(s.props.session_id, sid)
            self.assertEqual(s.get_session_id(), sid)
            self.assertEqual(s.props.pid, os.getpid())
            self.assertEqual(s.get_pid(), os.getpid())
            self.assertEqual(s.props.hostname, 'gi-python-host')
            self.assertEqual(s.get_hostname(), 'gi-python-host')
            self.assertEqual(s.props.created_at, m.props.created_at)
            self.assertEqual(s.get_created_at(), m.props.created_at)
            self.assertEqual(s.props.status, 'active')
            self.assertEqual(s.get_status(), 'active')
            self.assertIs(s.props.has_vm, True)
            self.assertIs(s.get_has_vm(), True)
            self.assertEqual(s.props.vm_id, 'vm-py-3')
            self.assertEqual(s.get_vm_id(), 'vm-py-3')
            self.assertEqual(s.props.zone, 'asia-east1-a')
            self.assertEqual(s.get_zone(), 'asia-east1-a')
            self.assertEqual(s.props.components, ['ml'])
            self.assertEqual(s.get_components(), ['ml'])
            self.assertEqual(s.props.metadata.unpack(), {'n': 3})
            self.assertEqual(s.get_metadata().unpack(), {'n': 3})
            self.assertGreaterEqual(s.props.registered_at, s.props.created_at)
            self.assertEqual(s.get_registered_at(), s.props.registered_at)
            self.assertGreater(s.props.start_time, 0)
            self.assertEqual(s.get_start_time(), s.props.start_time)
            with open('/proc/sys/kernel/random/boot_id') as f:
                self.assertEqual(s.props.boot_id, f.read().strip())
            self.assertEqual(s.get_boot_id(), s.props.boot_id)
            self.assertEqual(s.props.stale_since, 0)
            self.assertEqual(s.get_stale_since(), 0)
            check_vm(self, s, 'vm-py-3', 'asia-east1-a', ['ml'], {'n': 3}, sid)

            v = s.to_variant()
            self.assertEqual(v.get_type_string(), 'a{sv}')
            d = v.unpack()
            self.assertEqual(d['session_id'], sid)
            self.assertEqual(d['vm_id'], 'vm-py-3')
            self.assertEqual(d['components'], ['ml'])
            self.assertEqual(d['metadata'], {'n': 3})
            self.assertEqual(d['start_time'], s.props.start_time)

            j = json.loads(s.to_json())
            self.assertEqual(j['session_id'], sid)
            self.assertEqual(j['pid'], os.getpid())
            self.assertEqual(j['vm_id'], 'vm-py-3')
            self.assertEqual(j['metadata'], {'n': 3})
            self.assertEqual(j['status'], 'active')

    def test_session_without_vm_has_null_fields(self):
        m = manager()
        s = m.get_all_active_sessions_sync(None)[m.props.session_id]
        self.assertIs(s.props.has_vm, False)
        self.assertIsNone(s.props.vm_id)
        self.assertIsNone(s.get_vm_id())
        self.assertIsNone(s.get_zone())
        self.assertEqual(s.get_components(), [])
        self.assertEqual(s.get_metadata().unpack(), {})
        self.assertEqual(s.get_registered_at(), 0)
        self.assertNotIn('vm_id', s.to_variant().unpack())

    def test_entry_without_zone(self):
        # Entries written by other implementations may record "zone": null;
        # Session.get_zone() is (nullable) for them.
        m = manager()
        path = m.props.vm_registry.get_path()
        with open(path) as f:
            registry = json.load(f)
        registry['foreign-session'] = {
            'session_id': 'foreign-session', 'pid': 4242, 'hostname': 'other-host',
            'vm_id': 'vm-foreign', 'zone': None, 'components': [], 'metadata': {},
            'created_at': time.time(), 'registered_at': time.time(), 'status': 'active'}
        with open(path + '.test', 'w') as f:
            json.dump(registry, f)
        os.rename(path + '.test', path)
        try:
            s = Gsm.SessionList.new(None, None).lookup('foreign-session')
            self.assertEqual(s.props.vm_id, 'vm-foreign')
            self.assertIsNone(s.get_zone())
            self.assertIsNone(s.props.zone)
            self.assertIsNone(json.loads(s.to_json())['zone'])
        finally:
            del registry['foreign-session']
            with open(path + '.test', 'w') as f:
                json.dump(registry, f)
            os.rename(path + '.test', path)
        self.assertIsNone(Gsm.SessionList.new(None, None).lookup('foreign-session'))

    def test_hash_table_transfer(self):
        # (transfer container) with a table that owns its elements: the
        # binding takes its own reference on each value and frees the
        # table. Transfer none would leak one reference per call, transfer
        # full would drop one too many (and finalize entries still in use).
        m = manager()
        fn = m.get_all_active_sessions_sync
        own = fn(None)[m.props.session_id]
        gc.collect()
        before = own.__grefcount__
        for _ in range(25):
            table = fn(None)
            self.assertIs(table[m.props.session_id], own)
            del table
        gc.collect()
        self.assertEqual(own.__grefcount__, before)
        own = fn(None)[m.props.session_id]
        self.assertEqual(own.props.session_id, m.props.session_id)

    def test_session_list_transfer(self):
        # get_item() and lookup() of a Gsm.SessionList are (transfer full):
        # the binding keeps what it is given, and drops it with the wrapper.
        m = manager()
        lst = Gsm.SessionList.new(None, None)
        own = lst.lookup(m.props.session_id)
        i = [s.props.session_id for s in lst].index(m.props.session_id)
        gc.collect()
        before = own.__grefcount__
        for _ in range(25):
            self.assertIs(lst.lookup(m.props.session_id), own)
            self.assertIs(lst.get_item(i), own)
            self.assertIs(lst[i], own)
            self.assertEqual([s for s in lst if s is own], [own])
        gc.collect()
        self.assertEqual(own.__grefcount__, before)
        self.assertEqual(own.props.session_id, m.props.session_id)

    def test_gvariant_transfer(self):
        # (transfer full) GVariant results and (transfer none) GVariant
        # properties: repeated calls must give stable, usable values.
        m = manager()
        m.register_vm_sync('vm-py-4', 'z', [], GLib.Variant('a{sv}', META), None)
        vm = m.get_my_vm_sync(None)
        for _ in range(25):
            self.assertEqual(vm.get_metadata().unpack()['trigger'], 'HIGH_RAM')
            self.assertEqual(m.get_statistics().unpack()['vm_id'], 'vm-py-4')
        gc.collect()
        self.assertEqual(vm.get_metadata().unpack()['ram_percent'], 87.5)

    def test_cleanup_stale_sessions_sync_none_stale(self):
        self.assertEqual(manager().cleanup_stale_sessions_sync(None), 0)


class T4Async(unittest.TestCase):
    def setUp(self):
        self.rec = Recorder(manager())

    def tearDown(self):
        self.rec.disconnect()
        if manager().props.has_vm:
            manager().unregister_vm_sync(None)

    def test_register_get_unregister(self):
        m = manager()
        self.assertIs(call_async(m, 'register_vm', 'vm-async', 'us-east1-b', ['voice'],
                                 GLib.Variant('a{sv}', {'k': GLib.Variant('s', 'v')}), None), True)
        # Emitted in the main context, before the callback ran.
        (vm,), = self.rec.of('vm-registered')
        check_vm(self, vm, 'vm-async', 'us-east1-b', ['voice'], {'k': 'v'}, m.props.session_id)
        self.assertEqual(self.rec.of('notify::has-vm'), [(True,)])

        mine = call_async(m, 'get_my_vm', None)
        check_vm(self, mine, 'vm-async', 'us-east1-b', ['voice'], {'k': 'v'}, m.props.session_id)

        table = sessions_of(call_async(m, 'get_all_active_sessions', None))
        self.assertEqual(table[m.props.session_id].props.vm_id, 'vm-async')

        self.assertEqual(call_async(m, 'cleanup_stale_sessions', None), 0)

        self.assertIs(call_async(m, 'unregister_vm', None), True)
        (gone,), = self.rec.of('vm-unregistered')
        self.assertEqual(gone.props.vm_id, 'vm-async')
        self.assertIsNone(call_async(m, 'get_my_vm', None))

    def test_calls_complete_in_order(self):
        m = manager()
        order = []

        def cb(name):
            def done(source, res, user_data):
                order.append((name, getattr(m, name + '_finish')(res), user_data))
            return done

        m.register_vm('vm-fifo', 'z', None, None, None, cb('register_vm'), 1)
        m.get_my_vm(None, cb('get_my_vm'), 2)
        m.unregister_vm(None, cb('unregister_vm'), 3)
        m.get_my_vm(None, cb('get_my_vm'), 4)
        run_until(lambda: len(order) == 4, 'four async calls')
        self.assertEqual([(n, d) for n, _, d in order],
                         [('register_vm', 1), ('get_my_vm', 2), ('unregister_vm', 3), ('get_my_vm', 4)])
        self.assertEqual(order[1][1].props.vm_id, 'vm-fifo')
        self.assertIsNone(order[3][1])

    def test_cancelled(self):
        m = manager()
        c = Gio.Cancellable()
        c.cancel()
        with self.assertRaises(GLib.Error) as cm:
            call_async(m, 'get_all_active_sessions', c)
        self.assertTrue(cm.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))
        with self.assertRaises(GLib.Error) as cm:
            call_async(m, 'register_vm', 'vm-cancel', 'z', None, None, c)
        self.assertTrue(cm.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED))
        self.assertFalse(m.props.has_vm)


class T5OtherSessions(unittest.TestCase):
    def setUp(self):
        self.rec = Recorder(manager())
        self.workers = []

    def tearDown(self):
        self.rec.disconnect()
        for w in self.workers:
            w.kill()
        if manager().props.has_vm:
            manager().unregister_vm_sync(None)
        manager().cleanup_stale_sessions_sync(None)

    def worker(self, vm_id):
        w = Worker(vm_id)
        self.workers.append(w)
        return w

    def test_added_stale_taken_over_removed(self):
        m = manager()
        w = self.worker('vm-worker-1')
        # Another process's change arrives through the file monitor.
        run_until(lambda: any(s.props.session_id == w.session_id for s, in self.rec.of('session-added')),
                  'session-added for the worker')
        (s,), = [a for a in self.rec.of('session-added') if a[0].props.session_id == w.session_id]
        self.assertIsInstance(s, Gsm.Session)
        self.assertEqual(s.props.pid, w.pid)
        self.assertEqual(s.props.status, 'active')
        self.assertTrue(self.rec.of('sessions-changed'))
        # The worker enters the registry, then registers its VM: the two
        # writes may arrive as one change or two.
        theirs = sessions_of(m.get_all_active_sessions_sync(None))[w.session_id]
        self.assertEqual(theirs.props.vm_id, 'vm-worker-1')
        self.assertEqual(theirs.props.components, ['voice', 'vision'])

        w.kill()
        self.rec.events.clear()
        self.assertEqual(m.cleanup_stale_sessions_sync(None), 1)
        (stale,), = self.rec.of('session-stale')
        self.assertEqual(stale.props.session_id, w.session_id)
        self.assertEqual(stale.props.status, 'stale')
        self.assertGreater(stale.props.stale_since, 0)
        self.assertNotIn(w.session_id, m.get_all_active_sessions_sync(None))
        self.assertEqual(Gsm.SessionList.new(None, None).lookup(w.session_id).props.status, 'stale')
        self.assertGreaterEqual(m.get_statistics().unpack()['stale_sessions_removed'], 1)

        # Taking over the dead session's VM removes its entry.
        self.rec.events.clear()
        self.assertTrue(m.register_vm_sync('vm-worker-1', 'us-central1-a', None, None, None))
        (removed,), = self.rec.of('session-removed')
        self.assertEqual(removed.props.session_id, w.session_id)
        self.assertTrue(self.rec.of('sessions-changed'))
        self.assertIsNone(Gsm.SessionList.new(None, None).lookup(w.session_id))


class T5bSessionList(unittest.TestCase):
    """The read-only view: a Gio.ListModel of Gsm.Session."""

    def tearDown(self):
        manager().cleanup_stale_sessions_sync(None)

    def test_list_model(self):
        lst = Gsm.SessionList.new(None, None)
        self.assertIsInstance(lst, Gio.ListModel)
        self.assertEqual(lst.get_item_type(), Gsm.Session.__gtype__)
        self.assertEqual(lst.get_runtime_dir(), manager().props.runtime_dir.get_path())
        changes = []
        lst.connect('items-changed', lambda m, pos, rem, add: changes.append((pos, rem, add)))

        w = Worker('vm-list-py')
        try:
            # The worker enters the registry, then registers its VM: the
            # two writes may arrive as one change or two.
            run_until(lambda: lst.lookup_vm('vm-list-py') is not None, "the list to show the worker's VM")
            self.assertTrue(changes)
            ids = [lst.get_item(i).props.session_id for i in range(lst.get_n_items())]
            self.assertEqual(ids, sorted(ids))
            self.assertIn(w.session_id, ids)
            s = lst.lookup_vm('vm-list-py')
            self.assertEqual(s.props.session_id, w.session_id)
            self.assertEqual(lst.get_liveness(s), Gsm.Liveness.ALIVE)
            self.assertIsNone(lst.lookup_vm('vm-nobody-has'))
        finally:
            w.kill()
        self.assertEqual(lst.get_liveness(lst.lookup(w.session_id)), Gsm.Liveness.DEAD)

    def test_sequence(self):
        # PyGObject's Gio.ListModel: len(), iteration, indexing, `in`.
        m = manager()
        sid = m.props.session_id
        w = Worker('vm-seq-py')
        try:
            lst = Gsm.SessionList.new(RUNTIME_DIR, None)
            self.assertEqual(lst.get_runtime_dir(), RUNTIME_DIR)
            self.assertIsNone(lst.get_etcd_uri())
            self.assertEqual(len(lst), lst.get_n_items())
            self.assertGreaterEqual(len(lst), 2)
            items = list(lst)
            self.assertEqual(len(items), len(lst))
            for i, s in enumerate(items):
                self.assertIsInstance(s, Gsm.Session)
                self.assertIs(lst[i], s)
                self.assertIs(lst.get_item(i), s)
                self.assertIn(s, lst)
            self.assertIs(lst[-1], items[-1])
            self.assertEqual(lst[1:], items[1:])
            with self.assertRaises(IndexError):
                lst[len(lst)]
            ids = [s.props.session_id for s in lst]
            self.assertEqual(ids, sorted(ids))
            self.assertEqual(len(set(ids)), len(ids))

            mine, theirs = lst.lookup(sid), lst.lookup(w.session_id)
            self.assertIs(mine, lst[ids.index(sid)])
            self.assertIs(theirs, lst[ids.index(w.session_id)])
            self.assertEqual(mine.props.pid, os.getpid())
            self.assertEqual((theirs.props.pid, theirs.props.vm_id, theirs.props.status),
                             (w.pid, 'vm-seq-py', 'active'))
            self.assertIs(lst.lookup_vm('vm-seq-py'), theirs)
            self.assertIsNone(lst.lookup('no-such-session'))
            self.assertIsNone(lst.lookup_vm('vm-nobody-has'))
            self.assertEqual(lst.get_liveness(mine), Gsm.Liveness.ALIVE)
            self.assertEqual(lst.get_liveness(theirs), Gsm.Liveness.ALIVE)
        finally:
            w.kill()
        self.assertEqual(lst.get_liveness(theirs), Gsm.Liveness.DEAD)

    def test_items_changed_on_register_and_unregister(self):
        # Our own manager writes the registry; the list hears of it through
        # its file monitor, as of any other process.
        m = manager()
        sid = m.props.session_id
        lst = Gsm.SessionList.new(RUNTIME_DIR, None)
        changes = []
        lst.connect('items-changed', lambda model, *change: changes.append(change))
        ids = [s.props.session_id for s in lst]
        i = ids.index(sid)
        self.assertFalse(lst[i].props.has_vm)

        def changed_at_ours():
            return any(pos <= i < pos + added and removed > 0 for pos, removed, added in changes)

        try:
            self.assertTrue(m.register_vm_sync('vm-py-list-own', 'us-east1-b', ['py'], None, None))
            run_until(lambda: lst[i].props.vm_id == 'vm-py-list-own', 'the list to show our VM')
            self.assertTrue(changed_at_ours(), changes)
            self.assertEqual([s.props.session_id for s in lst], ids)
            self.assertIs(lst.lookup_vm('vm-py-list-own'), lst[i])
            self.assertEqual(lst[i].props.components, ['py'])

            changes.clear()
            self.assertTrue(m.unregister_vm_sync(None))
            run_until(lambda: not lst[i].props.has_vm, 'the list to show our VM gone')
            self.assertTrue(changed_at_ours(), changes)
            self.assertEqual([s.props.session_id for s in lst], ids)
            self.assertIsNone(lst.lookup_vm('vm-py-list-own'))
        finally:
            if m.props.has_vm:
                m.unregister_vm_sync(None)

    def test_missing_directory(self):
        # The list never creates the runtime directory it is given.
        missing = os.path.join(manager().props.runtime_dir.get_path(), 'missing-dir')
        for path in (missing, os.path.join(missing, 'below')):
            with self.assertRaises(GLib.Error) as cm:
                Gsm.SessionList.new(path, None)
            self.assertTrue(cm.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND))
            self.assertIn('does not exist', cm.exception.message)
            self.assertFalse(os.path.exists(missing))

    def test_missing_directory_from_the_environment(self):
        # Nor the one GSM_RUNTIME_DIR names, with runtime_dir None.
        missing = os.path.join(manager().props.runtime_dir.get_path(), 'missing-env-dir')
        os.environ['GSM_RUNTIME_DIR'] = missing
        try:
            with self.assertRaises(GLib.Error) as cm:
                Gsm.SessionList.new(None, None)
        finally:
            os.environ['GSM_RUNTIME_DIR'] = RUNTIME_DIR
        self.assertTrue(cm.exception.matches(Gio.io_error_quark(), Gio.IOErrorEnum.NOT_FOUND))
        self.assertFalse(os.path.exists(missing))


class GsmErrorMixin:
    def assertGsmError(self, code, fn, *args):
        with self.assertRaises(GLib.Error) as cm:
            fn(*args)
        e = cm.exception
        self.assertEqual(e.domain, 'gsm-error-quark')
        self.assertEqual(GLib.quark_from_string(e.domain), Gsm.error_quark())
        self.assertEqual(e.code, int(code), e.message)
        self.assertTrue(e.matches(Gsm.error_quark(), code))
        self.assertTrue(e.message)
        return e


class T6Errors(unittest.TestCase, GsmErrorMixin):
    def tearDown(self):
        if manager().props.has_vm:
            manager().unregister_vm_sync(None)

    def both(self, code, *args):
        """register_vm with args, sync and async, must fail with code."""
        m = manager()
        e = self.assertGsmError(code, m.register_vm_sync, *args, None)
        self.assertGsmError(code, call_async, m, 'register_vm', *args, None)
        return e

    def test_empty_vm_id(self):
        e = self.both(Gsm.Error.INVALID_ARGUMENT, '', 'z', None, None)
        self.assertIn('vm_id', e.message)
        e = self.both(Gsm.Error.INVALID_ARGUMENT, 'vm', '', None, None)
        self.assertIn('zone', e.message)
        self.both(Gsm.Error.INVALID_ARGUMENT, 'vm', 'z', [''], None)
        self.assertFalse(manager().props.has_vm)

    def test_not_nullable_arguments_refuse_none(self):
        # vm_id and zone are not (nullable): PyGObject refuses None itself.
        with self.assertRaises(TypeError):
            manager().register_vm_sync(None, 'z', None, None, None)
        with self.assertRaises(TypeError):
            manager().register_vm_sync('vm', None, None, None, None)

    def test_metadata_not_vardict(self):
        e = self.both(Gsm.Error.INVALID_ARGUMENT, 'vm', 'z', None, GLib.Variant('s', 'HIGH_RAM'))
        self.assertIn('a{sv}', e.message)
        self.both(Gsm.Error.INVALID_ARGUMENT, 'vm', 'z', None, GLib.Variant('a{ss}', {'a': 'b'}))

    def test_second_vm(self):
        m = manager()
        m.register_vm_sync('vm-first', 'z', None, None, None)
        e = self.both(Gsm.Error.VM_ALREADY_REGISTERED, 'vm-second', 'z', None, None)
        self.assertIn('vm-first', e.message)
        self.assertEqual(m.get_my_vm_sync(None).props.vm_id, 'vm-first')

    def test_vm_owned_by_other_live_session(self):
        w = Worker('vm-taken')
        try:
            e = self.both(Gsm.Error.VM_OWNED_BY_OTHER, 'vm-taken', 'z', None, None)
            self.assertIn(w.session_id, e.message)
            self.assertFalse(manager().props.has_vm)
        finally:
            w.kill()
        manager().cleanup_stale_sessions_sync(None)

    def test_unregister_without_vm(self):
        m = manager()
        self.assertGsmError(Gsm.Error.NO_VM, m.unregister_vm_sync, None)
        self.assertGsmError(Gsm.Error.NO_VM, call_async, m, 'unregister_vm', None)

    def test_forked_child_has_no_session(self):
        # multiprocessing's fork start method: the child inherits the
        # manager, not the session, and must not act as its parent.
        m = manager()
        m.register_vm_sync('vm-parent', 'z', None, None, None)
        try:
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                verdict = b'ok'
                try:
                    m.get_my_vm_sync(None)
                    verdict = b'get_my_vm worked'
                except GLib.Error as e:
                    if not e.matches(Gsm.error_quark(), Gsm.Error.CLOSED):
                        verdict = e.message.encode()
                except BaseException as e:
                    verdict = repr(e).encode()
                finally:
                    os.write(w, verdict)
                    os._exit(0)
            os.close(w)
            verdict = os.read(r, 200)
            os.close(r)
            os.waitpid(pid, 0)
            self.assertEqual(verdict, b'ok')
            self.assertEqual(m.get_my_vm_sync(None).props.vm_id, 'vm-parent')
        finally:
            m.unregister_vm_sync(None)

    def test_error_enum(self):
        self.assertEqual(int(Gsm.Error.FAILED), 0)
        self.assertEqual(Gsm.Error.CLOSED.value_nick, 'closed')
        self.assertEqual(GLib.quark_to_string(Gsm.error_quark()), 'gsm-error-quark')


CHILD_CLOSE = '''
import gi
gi.require_version("Gsm", "1.0")
from gi.repository import Gsm
m = Gsm.SessionManager.get_default()
m.register_vm_sync("vm-child", "z", None, None, None)
print(m.props.session_id, m.close_sync(None), flush=True)
'''


class T7Closed(unittest.TestCase, GsmErrorMixin):
    def test_1_close_sync_keeps_a_session_that_owns_a_vm(self):
        manager().cleanup_stale_sessions_sync(None)
        env = dict(os.environ)
        env['GSM_RUNTIME_DIR'] = manager().props.runtime_dir.get_path()
        out = subprocess.run([sys.executable, '-c', CHILD_CLOSE],
                             env=env, stdout=subprocess.PIPE, check=True, timeout=30).stdout.decode()
        sid, ok = out.split()
        self.assertEqual(ok, 'True')
        # It still owns a VM: the entry stays (stale once found dead), for the reaper.
        lst = Gsm.SessionList.new(None, None)
        left = lst.lookup(sid)
        self.assertEqual(left.props.vm_id, 'vm-child')
        self.assertEqual(lst.get_liveness(left), Gsm.Liveness.DEAD)
        self.assertEqual(manager().cleanup_stale_sessions_sync(None), 1)
        self.assertEqual(Gsm.SessionList.new(None, None).lookup(sid).props.status, 'stale')

    def test_2_close_async_then_everything_fails(self):
        m = manager()
        rec = Recorder(m)
        sid = m.props.session_id
        self.assertIs(call_async(m, 'close', None), True)
        rec.disconnect()
        # Without a VM, the session's entry is gone.
        with open(m.props.vm_registry.get_path()) as f:
            self.assertNotIn(sid, json.load(f))

        C = Gsm.Error.CLOSED
        e = self.assertGsmError(C, m.register_vm_sync, 'vm', 'z', None, None, None)
        self.assertIn(sid, e.message)
        self.assertGsmError(C, call_async, m, 'register_vm', 'vm', 'z', None, None, None)
        self.assertGsmError(C, m.get_my_vm_sync, None)
        self.assertGsmError(C, call_async, m, 'get_my_vm', None)
        self.assertGsmError(C, m.unregister_vm_sync, None)
        self.assertGsmError(C, call_async, m, 'unregister_vm', None)
        self.assertGsmError(C, m.get_all_active_sessions_sync, None)
        self.assertGsmError(C, call_async, m, 'get_all_active_sessions', None)
        self.assertGsmError(C, m.cleanup_stale_sessions_sync, None)
        self.assertGsmError(C, call_async, m, 'cleanup_stale_sessions', None)
        self.assertGsmError(C, m.close_sync, None)
        self.assertGsmError(C, call_async, m, 'close', None)
        # Still the same object, still readable.
        self.assertIs(Gsm.SessionManager.get_default(), m)
        self.assertEqual(m.get_statistics().unpack()['session_id'], sid)


if __name__ == '__main__':
    main(T1Default, T2Properties, T3Sync, T4Async, T5OtherSessions, T5bSessionList, T6Errors,
         T7Closed)
