#!/usr/bin/python3
# The reaper from Python through GObject Introspection: the annotations of
# GsmProvider, GsmReaper and cleanup_my_vm work in a binding, and so do
# the VM labels, the presets and a reconciliation against the fake gcloud.
#
# SPDX-License-Identifier: LGPL-2.1-or-later

import os
import signal
import subprocess
import sys
import tempfile
import unittest

import gi
gi.require_version('Gsm', '1.0')
from gi.repository import GLib, Gsm  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))


class ReaperGi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory(prefix='gsm-reaper-gi-')
        root = cls.tmp.name
        cls.cloud = os.path.join(root, 'cloud')
        os.makedirs(os.path.join(cls.cloud, 'vms'))
        os.makedirs(os.path.join(root, 'run'), mode=0o700)
        os.environ.update({
            'GSM_RUNTIME_DIR': os.path.join(root, 'run'),
            'FAKE_CLOUD_DIR': cls.cloud,
            'GSM_PROVIDER_COMMAND': '/bin/sh %s delete {vm_id} {zone} {session_id}'
                                    % os.path.join(HERE, 'fake-provider.sh'),
            'GSM_PROVIDER_NOT_FOUND_PATTERN': 'was not found',
            'GSM_REAP_GRACE': '0',
            'GSM_CONFIG_FILE': '/nonexistent/gsm-test-config.ini',
        })
        cls.manager = Gsm.SessionManager.get_default()

    @classmethod
    def tearDownClass(cls):
        cls.manager.close_sync(None)
        cls.tmp.cleanup()

    def vm(self, name):
        open(os.path.join(self.cloud, 'vms', name), 'w').close()

    def has_vm(self, name):
        return os.path.exists(os.path.join(self.cloud, 'vms', name))

    def test_provider(self):
        provider = Gsm.Provider.new_default()
        self.assertEqual(provider.props.timeout, 300)
        argv = provider.expand('vm-x', 'zone-a', 'sid')
        self.assertEqual(argv[-3:], ['vm-x', 'zone-a', 'sid'])
        self.vm('vm-x')
        ok, result = provider.delete_vm_sync('vm-x', 'zone-a', 'sid', None)
        self.assertTrue(ok)
        self.assertEqual(result.props.outcome, Gsm.ProviderOutcome.DELETED)
        self.assertIn('Deleted [vm-x]', result.props.stdout)
        with self.assertRaises(GLib.Error) as cm:
            provider.expand('--all', 'zone-a', 'sid')
        self.assertTrue(cm.exception.matches(Gsm.error_quark(), Gsm.Error.INVALID_ARGUMENT))

    def test_reap_a_killed_worker(self):
        self.vm('vm-py')
        worker = subprocess.Popen([os.environ['GSM_TEST_WORKER'], 'register', 'vm-py'],
                                  stdout=subprocess.PIPE, stdin=subprocess.PIPE)
        ready = worker.stdout.readline().decode().split()
        self.assertEqual(ready[0], 'READY')
        worker.send_signal(signal.SIGKILL)
        worker.wait()

        reaper = Gsm.Reaper.new(self.manager, None)
        reaped_vms = []
        reaper.connect('vm-reaped', lambda r, vm, result: reaped_vms.append(vm.props.vm_id))
        orphans = reaper.list_orphans_sync(None)
        self.assertEqual([s.props.vm_id for s in orphans], ['vm-py'])
        ok, reaped, failed = reaper.reap_sync(orphans, None)
        self.assertTrue(ok)
        self.assertEqual((reaped, failed), (1, 0))
        self.assertEqual(reaped_vms, ['vm-py'])
        self.assertFalse(self.has_vm('vm-py'))
        history = reaper.read_history_sync(None)
        self.assertTrue(any('"vm-py"' in line for line in history))

    def test_labels(self):
        labels = self.manager.get_vm_labels().unpack()
        self.assertEqual(sorted(labels), ['gsm-host', 'gsm-registry', 'gsm-session'])
        for value in labels.values():
            self.assertRegex(value, r'^[a-z][a-z0-9_-]{0,62}$')
        self.assertTrue(labels['gsm-session'].endswith(self.manager.props.session_id))

    def test_reconcile_with_fake_gcloud(self):
        state = os.path.join(self.tmp.name, 'gcloud.json')
        config = os.path.join(self.tmp.name, 'gcloud.ini')
        with open(config, 'w') as f:
            f.write('[provider]\npreset=gcloud\n')
        labels = self.manager.get_vm_labels().unpack()
        dead = dict(labels, **{'gsm-session': 'deadbeef'})
        env = dict(os.environ, FAKE_CLOUD_STATE=state,
                   PATH=os.path.join(HERE, 'fake-clouds') + ':' + os.environ['PATH'])
        subprocess.run(['gcloud', 'compute', 'instances', 'create', 'vm-orphan', '--zone', 'z',
                        '--labels=' + ','.join('%s=%s' % kv for kv in sorted(dead.items()))],
                       env=env, check=True, stderr=subprocess.DEVNULL)
        saved = {k: os.environ.get(k) for k in ('FAKE_CLOUD_STATE', 'PATH', 'GSM_CONFIG_FILE',
                                                'GSM_PROVIDER_COMMAND')}
        try:
            os.environ.update(FAKE_CLOUD_STATE=state, PATH=env['PATH'], GSM_CONFIG_FILE=config)
            del os.environ['GSM_PROVIDER_COMMAND']
            provider = Gsm.Provider.new_default()
            self.assertEqual(provider.get_preset(), 'gcloud')
            listed = provider.list_vms_sync(labels['gsm-registry'], None)
            self.assertEqual([i.get_vm_id() for i in listed], ['vm-orphan'])
            self.assertEqual(listed[0].get_labels().unpack()['gsm-session'], 'deadbeef')
            reaper = Gsm.Reaper.new(self.manager, provider)
            items = reaper.reconcile_sync(Gsm.ReconcileFlags.NONE, None)
            self.assertEqual([(i.props.vm_id, i.props.verdict) for i in items],
                             [('vm-orphan', Gsm.InventoryVerdict.ORPHAN)])
            self.assertEqual(items[0].get_session_id(), 'deadbeef')
            # A dry run: the VM is still there.
            self.assertIn('vm-orphan', open(state).read())
        finally:
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def test_cleanup_my_vm(self):
        self.vm('vm-own')
        self.assertTrue(self.manager.register_vm_sync('vm-own', 'zone-a', None, None, None))
        self.assertTrue(self.manager.cleanup_my_vm_sync(None, None))
        self.assertFalse(self.has_vm('vm-own'))
        self.assertIsNone(self.manager.get_my_vm_sync(None))


if __name__ == '__main__':
    from unittest import TextTestRunner
    result = TextTestRunner(stream=sys.stderr, verbosity=2).run(
        unittest.defaultTestLoader.loadTestsFromTestCase(ReaperGi))
    # TAP, as the other suites speak.
    n = result.testsRun
    print('1..%d' % n)
    bad = {t.id() for t, _ in result.failures + result.errors}
    for i, t in enumerate(sorted(unittest.defaultTestLoader.getTestCaseNames(ReaperGi)), 1):
        print('%s %d - %s' % ('not ok' if any(b.endswith(t) for b in bad) else 'ok', i, t))
    sys.exit(0 if result.wasSuccessful() else 1)
